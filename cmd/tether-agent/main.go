// Command tether-agent is the customer-side coordination agent; see
// internal/agent and docs/agent.md.
package main

import (
	"context"
	"errors"
	"os"

	"github.com/tetherhq/tether/internal/agent"
	"github.com/tetherhq/tether/internal/cli"
)

func main() {
	cli.Main("tether-agent", true, func(ctx context.Context, args []string) error {
		return agent.Main(ctx, args, os.Getenv, os.Stdout, os.Stderr)
	}, func(err error) bool { return errors.Is(err, agent.ErrUsage) })
}
