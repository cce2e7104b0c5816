// Command docsvc is the document service: api, worker and migrate roles.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/tetherhq/tether/internal/docsvc"
)

// main exits 0 on success (help included), 2 for a command-line mistake
// and 1 for any other failure.
func main() {
	err := docsvc.Run(context.Background(), os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	if err == nil {
		return
	}
	fmt.Fprintln(os.Stderr, err)
	if errors.Is(err, docsvc.ErrUsage) {
		os.Exit(2)
	}
	os.Exit(1)
}
