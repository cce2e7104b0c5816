// Package cli is what the main functions of docsvc, tether-agent,
// tether-plane and tetherctl share, so the four behave alike: how a signal
// stops a command, and how its result becomes the exit status (0 success,
// 2 a usage mistake, 1 any other failure).
package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Interruptible returns ctx cancelled by the first SIGINT or SIGTERM, so
// the command can shut down cleanly; after that signal the default action
// is back, and a second one ends the process at once.
func Interruptible(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop()
	}()
	return ctx, stop
}

// Status is the exit status of a command that returned err, which it
// prints on stderr after prefix.
func Status(stderr io.Writer, prefix string, err error, isUsage func(error) bool) int {
	switch {
	case err == nil:
		return 0
	case prefix != "":
		fmt.Fprintln(stderr, prefix+":", err)
	default:
		fmt.Fprintln(stderr, err)
	}
	if isUsage(err) {
		return 2
	}
	return 1
}

// Main runs a command on the process's arguments and exits with its
// Status. With interruptible it runs under Interruptible; a command that
// reads answers from a terminal (tetherctl) passes false, so Ctrl-C at a
// prompt still ends it, and asks for Interruptible around what it runs
// until stopped.
func Main(prefix string, interruptible bool, run func(ctx context.Context, args []string) error, isUsage func(error) bool) {
	ctx, stop := context.Background(), context.CancelFunc(func() {})
	if interruptible {
		ctx, stop = Interruptible(ctx)
	}
	err := run(ctx, os.Args[1:])
	stop()
	os.Exit(Status(os.Stderr, prefix, err, isUsage))
}

// WantsHelp reports whether an argument before "--" is -h, -help, --help or help.
func WantsHelp(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if a == "-h" || a == "-help" || a == "--help" || a == "help" {
			return true
		}
	}
	return false
}
