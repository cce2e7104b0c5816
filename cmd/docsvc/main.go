// Command docsvc is the document service: api, worker and migrate roles.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/tetherhq/tether/internal/docsvc"
)

func main() {
	if err := docsvc.Run(context.Background(), os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
