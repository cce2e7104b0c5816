// Command tetherctl is the customer operator's CLI.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/tetherhq/tether/internal/ctl"
)

func main() {
	if err := ctl.Run(context.Background(), os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
