package main

import (
	"fmt"
	"io/fs"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tetherhq/tether/internal/maintest"
)

// The test binary is tether-agent itself when this is set, so the tests
// run the real main (exit codes included) without building another binary.
const asMain = "TETHER_AGENT_TEST_AS_MAIN"

func TestMain(m *testing.M) { maintest.Hook(m, asMain, main) }

// run runs tether-agent with args and env (see maintest.Run).
func run(t *testing.T, env []string, args ...string) maintest.Result {
	t.Helper()
	return maintest.Run(t, asMain, env, args...)
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
	if top.Code != 0 || !strings.Contains(top.Stdout, "usage:") {
		t.Fatalf("tether-agent --help: exit %d, stdout %q", top.Code, top.Stdout)
	}
	cmds := maintest.Commands(top.Stdout, "tether-agent", 0)
	for _, want := range []string{"run", "version"} {
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
			if r.Code != 0 {
				t.Fatalf("exit %d, stderr %q", r.Code, r.Stderr)
			}
			name := strings.Join(slices.DeleteFunc(slices.Clone(args), func(a string) bool { return a == "help" || strings.HasPrefix(a, "-") }), " ")
			if !strings.Contains(strings.ToLower(r.Stdout), "usage") || !strings.Contains(r.Stdout, strings.TrimSpace("tether-agent "+name)) {
				t.Fatalf("stdout is not the help of %q:\n%s", name, r.Stdout)
			}
			if r.Stderr != "" {
				t.Errorf("help wrote to stderr: %q", r.Stderr)
			}
			if strings.Contains(r.Stdout, token) {
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
			if r := run(t, nil, tc.args...); r.Code != tc.want {
				t.Fatalf("exit %d, want %d; stderr %q", r.Code, tc.want, r.Stderr)
			}
		})
	}
}
