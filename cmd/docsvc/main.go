// Command docsvc is the document service: api, worker and migrate roles.
package main

import (
	"context"
	"errors"
	"os"

	"github.com/tetherhq/tether/internal/cli"
	"github.com/tetherhq/tether/internal/docsvc"
)

// main exits 0 on success (help included), 2 for a command-line mistake
// and 1 for any other failure; SIGINT or SIGTERM stops a role cleanly.
func main() {
	cli.Main("", true, func(ctx context.Context, args []string) error {
		return docsvc.Run(ctx, args, os.Getenv, os.Stdout, os.Stderr)
	}, func(err error) bool { return errors.Is(err, docsvc.ErrUsage) })
}
