package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// The test binary is tether-agent itself when this is set, so the tests
// run the real main (exit codes included) without building another binary.
const asMain = "TETHER_AGENT_TEST_AS_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(asMain) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

type result struct {
	code           int
	stdout, stderr string
}

// run runs tether-agent with args and env. The deadline only bounds a hang
// (an agent that started); it is not a performance assertion.
func run(t *testing.T, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(append(os.Environ(), asMain+"=1"), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("tether-agent %s did not exit by itself: it started something", strings.Join(args, " "))
	}
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{code, stdout.String(), stderr.String()}
}

// commands lists every command the top-level help names: the lower-case
// words after "tether-agent" in each synopsis.
func commands(help string) [][]string {
	word := regexp.MustCompile(`^[a-z][a-z-]*$`)
	var out [][]string
	for _, line := range strings.Split(help, "\n") {
		synopsis, _, _ := strings.Cut(strings.TrimSpace(line), "  ")
		fields := strings.Fields(synopsis)
		if len(fields) < 2 || fields[0] != "tether-agent" {
			continue
		}
		var path []string
		for _, f := range fields[1:] {
			if !word.MatchString(f) {
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

// Every command answers --help and -h (and 'tether-agent help COMMAND')
// with its help on stdout and exit 0, and does nothing else: no data
// directory, no status page listener, not even with a configuration that
// would let 'run' start. The help never shows a value from the
// environment (the license holds a one-time activation token).
func TestEveryCommandAnswersHelp(t *testing.T) {
	dir := t.TempDir()
	status := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().String()
	}()
	const token = "ACTIVATION-TOKEN-NEVER-SHOWN"
	env := []string{
		"TETHER_DATA_DIR=" + filepath.Join(dir, "data"),
		"TETHER_PLANE_URL=http://127.0.0.1:1",
		"TETHER_LICENSE=" + `{"activation_token":"` + token + `"}`,
		"TETHER_LICENSE_PUBLIC_KEY=" + filepath.Join(dir, "license.pub"),
		"TETHER_TRUSTED_ROOT=" + filepath.Join(dir, "root.json"),
		"TETHER_STATUS_ADDR=" + status,
	}
	top := run(t, env, "--help")
	if top.code != 0 || !strings.Contains(top.stdout, "usage:") {
		t.Fatalf("tether-agent --help: exit %d, stdout %q", top.code, top.stdout)
	}
	cmds := commands(top.stdout)
	for _, want := range []string{"run", "tuf-client", "version"} {
		if !slices.ContainsFunc(cmds, func(p []string) bool { return strings.Join(p, " ") == want }) {
			t.Fatalf("the help lists no %q (found %v)", want, cmds)
		}
	}
	invocations := [][]string{{"-h"}, {"help"}}
	for _, path := range cmds {
		invocations = append(invocations,
			append(slices.Clone(path), "--help"), append(slices.Clone(path), "-h"), append([]string{"help"}, path...))
	}
	for _, args := range invocations {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			r := run(t, env, args...)
			if r.code != 0 {
				t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
			}
			name := strings.Join(slices.DeleteFunc(slices.Clone(args), func(a string) bool { return a == "help" || strings.HasPrefix(a, "-") }), " ")
			if !strings.Contains(strings.ToLower(r.stdout), "usage") || !strings.Contains(r.stdout, strings.TrimSpace("tether-agent "+name)) {
				t.Fatalf("stdout is not the help of %q:\n%s", name, r.stdout)
			}
			if r.stderr != "" {
				t.Errorf("help wrote to stderr: %q", r.stderr)
			}
			if strings.Contains(r.stdout, token) {
				t.Errorf("the help shows the license from the environment")
			}
			if c, err := net.Dial("tcp", status); err == nil {
				c.Close()
				t.Fatalf("something listens on %s", status)
			}
			var files []string
			filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
				if err == nil && path != dir {
					files = append(files, path)
				}
				return nil
			})
			if len(files) > 0 {
				t.Fatalf("help created %v", files)
			}
		})
	}
}

// Command-line and configuration mistakes exit 2, other failures 1.
func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want int
	}{
		{nil, 2},
		{[]string{"nope"}, 2},
		{[]string{"run", "--bogus"}, 2},
		{[]string{"run", "--data-dir", dir}, 2}, // the plane URL and license are missing
		{[]string{"version", "extra"}, 2},
		{[]string{"version"}, 0},
		{[]string{"run", "--data-dir", dir, "--plane-url", "https://plane.example", "--license", filepath.Join(dir, "none.json"),
			"--license-public-key", filepath.Join(dir, "none.pub"), "--trusted-root", filepath.Join(dir, "none.json")}, 1},
	} {
		t.Run(fmt.Sprint(tc.args), func(t *testing.T) {
			if r := run(t, nil, tc.args...); r.code != tc.want {
				t.Fatalf("exit %d, want %d; stderr %q", r.code, tc.want, r.stderr)
			}
		})
	}
}
