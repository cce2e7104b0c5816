package agent

import (
	"context"
	"fmt"
	"io"

	"github.com/tetherhq/tether/internal/updater"
)

const usage = `usage:
  tether-agent run [flags]          run the agent (tether-agent run -h lists flags)
  tether-agent tuf-client [flags]   the TUF conformance client (see internal/updater)
  tether-agent version`

// Main is the tether-agent command: cmd/tether-agent only sets up signals
// and exits with its result.
func Main(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: %s", ErrUsage, usage)
	}
	switch args[0] {
	case "run":
		cfg, err := ParseConfig(args[1:], getenv, stderr)
		if err != nil {
			return err
		}
		a, err := New(ctx, cfg, Options{Stderr: stderr})
		if err != nil {
			return err
		}
		defer a.Close()
		return a.Run(ctx)
	case "tuf-client":
		if code := updater.RunTUFClient(ctx, args[1:], stdout, stderr); code != 0 {
			return fmt.Errorf("tuf-client failed (exit %d)", code)
		}
		return nil
	case "version":
		fmt.Fprintln(stdout, Version)
		return nil
	}
	return fmt.Errorf("%w: unknown command %q\n%s", ErrUsage, args[0], usage)
}
