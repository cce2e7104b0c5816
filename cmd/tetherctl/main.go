// Command tetherctl is the customer operator's CLI.
package main

import (
	"context"
	"os"
	"time"

	"github.com/tetherhq/tether/internal/cli"
	"github.com/tetherhq/tether/internal/ctl"
)

// main is not interruptible as a whole: Ctrl-C at a confirmation prompt
// ends tetherctl; only 'tetherctl dev', which runs until stopped, asks for
// cli.Interruptible.
func main() {
	cli.Main("", false, func(ctx context.Context, args []string) error {
		return ctl.RunEnv(ctx, args, ctl.Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv, Now: time.Now})
	}, ctl.IsUsage)
}
