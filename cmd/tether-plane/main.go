// Command tether-plane is the vendor's coordination plane (serve) and the
// vendor's admin commands; see `tether-plane --help` and docs/plane.md.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/tetherhq/tether/internal/plane/planecmd"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := planecmd.Run(ctx, os.Args[1:], planecmd.Env{Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv})
	stop()
	if err == nil {
		return
	}
	fmt.Fprintln(os.Stderr, "tether-plane:", err)
	if planecmd.IsUsage(err) {
		os.Exit(2)
	}
	os.Exit(1)
}
