// Command tether-plane is the vendor's coordination plane (serve) and the
// vendor's admin commands; see `tether-plane --help` and docs/plane.md.
package main

import (
	"context"
	"os"

	"github.com/tetherhq/tether/internal/cli"
	"github.com/tetherhq/tether/internal/plane/planecmd"
)

func main() {
	cli.Main("tether-plane", true, func(ctx context.Context, args []string) error {
		return planecmd.Run(ctx, args, planecmd.Env{Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv})
	}, planecmd.IsUsage)
}
