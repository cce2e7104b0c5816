package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"testing"
)

var errUsage = errors.New("usage")

func isUsage(err error) bool { return errors.Is(err, errUsage) }

func TestStatus(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err    error
		prefix string
		want   int
		stderr string
	}{
		{nil, "tether-agent", 0, ""},
		{fmt.Errorf("%w: no command given", errUsage), "tether-agent", 2, "tether-agent: usage: no command given\n"},
		{errors.New("license does not verify"), "", 1, "license does not verify\n"},
	} {
		var stderr bytes.Buffer
		if got := Status(&stderr, tc.prefix, tc.err, isUsage); got != tc.want || stderr.String() != tc.stderr {
			t.Errorf("Status(%v) = %d, stderr %q; want %d, %q", tc.err, got, stderr.String(), tc.want, tc.stderr)
		}
	}
}

// A SIGTERM cancels the context a command runs under instead of killing
// the process, so it can shut down cleanly.
func TestInterruptible(t *testing.T) {
	ctx, stop := Interruptible(context.Background())
	defer stop()
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-ctx.Done()
	if !errors.Is(ctx.Err(), context.Canceled) {
		t.Fatalf("context ended with %v", ctx.Err())
	}
}
