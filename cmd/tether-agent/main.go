// Command tether-agent is the customer-side coordination agent; see
// internal/agent and docs/agent.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/tetherhq/tether/internal/agent"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := agent.Main(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err == nil {
		return
	}
	fmt.Fprintln(os.Stderr, "tether-agent:", err)
	if errors.Is(err, agent.ErrUsage) {
		os.Exit(2)
	}
	os.Exit(1)
}
