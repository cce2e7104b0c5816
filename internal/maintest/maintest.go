// Package maintest runs a command's real main inside its own test binary,
// so a test sees what an operator would (the exit code, stdout and stderr,
// and whether the command returned at all) without building another
// binary; and it reads the commands a top-level help names, so a test can
// walk every one.
package maintest

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// Hook is TestMain's body: when the variable env is "1", the test binary is
// the command and runs main; otherwise it runs the tests.
func Hook(m *testing.M, env string, main func()) {
	if os.Getenv(env) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// Result is what one run of the command did.
type Result struct {
	Code           int
	Stdout, Stderr string
}

// Run runs the command (this test binary with env set) with args and the
// extra environment. The one-minute deadline only bounds a hang, a command
// that started something and did not return; it is not a performance
// assertion.
func Run(t testing.TB, env string, extra []string, args ...string) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(append(os.Environ(), env+"=1"), extra...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s did not exit by itself: it started something", strings.Join(args, " "))
	}
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return Result{code, stdout.String(), stderr.String()}
}

// Commands lists every command path the help names: the leading lower-case
// words after binary in each synopsis line (the synopsis ends where two
// spaces start the description), and each of their prefixes, at most depth
// words long (0: no limit).
func Commands(help, binary string, depth int) [][]string {
	word := regexp.MustCompile(`^[a-z][a-z-]*$`)
	var out [][]string
	for _, line := range strings.Split(help, "\n") {
		synopsis, _, _ := strings.Cut(strings.TrimSpace(line), "  ")
		fields := strings.Fields(synopsis)
		if len(fields) < 2 || fields[0] != binary {
			continue
		}
		var path []string
		for _, f := range fields[1:] {
			if !word.MatchString(f) || (depth > 0 && len(path) == depth) {
				break
			}
			path = append(path, f)
			if !slices.ContainsFunc(out, func(p []string) bool { return slices.Equal(p, path) }) {
				out = append(out, slices.Clone(path))
			}
		}
	}
	return out
}
