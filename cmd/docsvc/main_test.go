package main

import (
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tetherhq/tether/internal/maintest"
	"github.com/tetherhq/tether/internal/toolproc"
)

// The test binary is docsvc itself when this is set, so the tests run the
// real main (exit codes included) without building another binary.
const asMain = "DOCSVC_TEST_AS_MAIN"

func TestMain(m *testing.M) { maintest.Hook(m, asMain, main) }

// run runs docsvc with args and env (see maintest.Run).
func run(t *testing.T, env []string, args ...string) maintest.Result {
	t.Helper()
	return maintest.Run(t, asMain, env, args...)
}

// snapshot records every file under dir with its size and time.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		out[path] = fmt.Sprint(fi.Mode(), fi.ModTime(), fi.Size())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Every command and subcommand answers --help and -h (and 'docsvc help
// COMMAND') with its help on stdout and exit 0, and does nothing else: no
// listener, no file, not even with a migrated database that would let
// 'docsvc api' serve.
func TestEveryCommandAnswersHelp(t *testing.T) {
	dir := t.TempDir()
	addrs := []string{toolproc.FreeAddr(t), toolproc.FreeAddr(t)}
	env := []string{
		"DOCSVC_DATABASE_URL=sqlite://" + filepath.Join(dir, "docsvc.db"),
		"DOCSVC_BLOB_URL=file://" + filepath.Join(dir, "blobs"),
		"DOCSVC_QUEUE_URL=db://jobs",
		"DOCSVC_ADDR=" + addrs[0], "DOCSVC_INTERNAL_ADDR=" + addrs[1],
	}
	if r := run(t, env, "migrate"); r.Code != 0 {
		t.Fatalf("migrate: exit %d\n%s", r.Code, r.Stderr)
	}
	before := snapshot(t, dir)

	top := run(t, env, "--help")
	if top.Code != 0 || !strings.Contains(top.Stdout, "Usage:") {
		t.Fatalf("docsvc --help: exit %d, stdout %q", top.Code, top.Stdout)
	}
	cmds := maintest.Commands(top.Stdout, "docsvc", 2)
	for _, want := range []string{"api", "worker", "migrate", "tokens", "tokens create", "tokens add", "tokens list", "tokens revoke", "config", "config check", "version"} {
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
			if !strings.Contains(strings.ToLower(r.Stdout), "usage") || !strings.Contains(r.Stdout, strings.TrimSpace("docsvc "+name)) {
				t.Fatalf("stdout is not the help of %q:\n%s", name, r.Stdout)
			}
			if r.Stderr != "" {
				t.Errorf("help wrote to stderr: %q", r.Stderr)
			}
			for _, addr := range addrs {
				if c, err := net.Dial("tcp", addr); err == nil {
					c.Close()
					t.Fatalf("something listens on %s", addr)
				}
			}
			if after := snapshot(t, dir); !mapsEqual(before, after) {
				t.Fatalf("files changed:\nbefore %v\nafter  %v", before, after)
			}
		})
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// Command-line mistakes exit 2, other failures 1.
func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	env := []string{
		"DOCSVC_DATABASE_URL=sqlite://" + filepath.Join(dir, "docsvc.db"),
		"DOCSVC_BLOB_URL=file://" + filepath.Join(dir, "blobs"),
		"DOCSVC_QUEUE_URL=db://jobs",
	}
	for _, tc := range []struct {
		args []string
		env  []string
		want int
	}{
		{nil, env, 2},
		{[]string{"nope"}, env, 2},
		// Rejected before the configuration is read: with none at all it
		// is still a usage mistake, not a configuration failure (1).
		{[]string{"nope"}, nil, 2},
		{[]string{"api", "--bogus"}, nil, 2},
		{[]string{"api", "--bogus"}, env, 2},
		{[]string{"api", "extra"}, env, 2},
		{[]string{"token"}, env, 2},
		{[]string{"token", "create"}, env, 2},
		{[]string{"token", "revoke"}, env, 2},
		{[]string{"token", "frobnicate"}, env, 2},
		{[]string{"tokens", "add", "--name", "ci"}, env, 2},
		{[]string{"tokens", "add", "--name", "ci", "--hash", "0123456789abcdef:" + strings.Repeat("0", 64), "--expires", "yesterday"}, env, 2},
		{[]string{"tokens", "create", "--name", "ci", "--expires", "-5h"}, env, 2},
		{[]string{"config"}, env, 2},
		{[]string{"config", "check", "--output", "xml"}, env, 2},
		{[]string{"version"}, env, 0},
		{[]string{"config", "check"}, env, 0},
		{[]string{"config", "check"}, env[:2], 1}, // DOCSVC_QUEUE_URL missing
		{[]string{"migrate"}, env[1:], 1},         // DOCSVC_DATABASE_URL missing
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			env := append([]string{"DOCSVC_DATABASE_URL=", "DOCSVC_BLOB_URL=", "DOCSVC_QUEUE_URL="}, tc.env...)
			if r := run(t, env, tc.args...); r.Code != tc.want {
				t.Fatalf("exit %d, want %d; stderr %q", r.Code, tc.want, r.Stderr)
			}
			// A usage mistake opens no database (nor creates its file).
			if _, err := os.Stat(filepath.Join(dir, "docsvc.db")); tc.want == 2 && err == nil {
				t.Fatalf("docsvc %s created the database", strings.Join(tc.args, " "))
			}
		})
	}
}
