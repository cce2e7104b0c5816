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

// The test binary is docsvc itself when this is set, so the tests run the
// real main (exit codes included) without building another binary.
const asMain = "DOCSVC_TEST_AS_MAIN"

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

// run runs docsvc with args and env. The deadline only bounds a hang (a
// server that started); it is not a performance assertion.
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
		t.Fatalf("docsvc %s did not exit by itself: it started something", strings.Join(args, " "))
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

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
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

// commands lists every command and subcommand the top-level help names:
// the leading lower-case words of each "docsvc ..." synopsis, and their
// prefixes.
func commands(help string) [][]string {
	word := regexp.MustCompile(`^[a-z][a-z-]*$`)
	var out [][]string
	for _, line := range strings.Split(help, "\n") {
		// The synopsis ends where the description column starts.
		synopsis, _, _ := strings.Cut(strings.TrimSpace(line), "  ")
		fields := strings.Fields(synopsis)
		if len(fields) < 2 || fields[0] != "docsvc" {
			continue
		}
		var path []string
		for _, f := range fields[1:] {
			if !word.MatchString(f) || len(path) == 2 {
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

// Every command and subcommand answers --help and -h (and 'docsvc help
// COMMAND') with its help on stdout and exit 0, and does nothing else: no
// listener, no file, not even with a migrated database that would let
// 'docsvc api' serve.
func TestEveryCommandAnswersHelp(t *testing.T) {
	dir := t.TempDir()
	addrs := []string{freeAddr(t), freeAddr(t)}
	env := []string{
		"DOCSVC_DATABASE_URL=sqlite://" + filepath.Join(dir, "docsvc.db"),
		"DOCSVC_BLOB_URL=file://" + filepath.Join(dir, "blobs"),
		"DOCSVC_QUEUE_URL=db://jobs",
		"DOCSVC_ADDR=" + addrs[0], "DOCSVC_INTERNAL_ADDR=" + addrs[1],
	}
	if r := run(t, env, "migrate"); r.code != 0 {
		t.Fatalf("migrate: exit %d\n%s", r.code, r.stderr)
	}
	before := snapshot(t, dir)

	top := run(t, env, "--help")
	if top.code != 0 || !strings.Contains(top.stdout, "Usage:") {
		t.Fatalf("docsvc --help: exit %d, stdout %q", top.code, top.stdout)
	}
	cmds := commands(top.stdout)
	for _, want := range []string{"api", "worker", "migrate", "token", "token create", "token list", "token revoke", "config", "config check", "version"} {
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
			if !strings.Contains(strings.ToLower(r.stdout), "usage") || !strings.Contains(r.stdout, strings.TrimSpace("docsvc "+name)) {
				t.Fatalf("stdout is not the help of %q:\n%s", name, r.stdout)
			}
			if r.stderr != "" {
				t.Errorf("help wrote to stderr: %q", r.stderr)
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
		{[]string{"api", "--bogus"}, env, 2},
		{[]string{"api", "extra"}, env, 2},
		{[]string{"token"}, env, 2},
		{[]string{"token", "create"}, env, 2},
		{[]string{"token", "revoke"}, env, 2},
		{[]string{"token", "frobnicate"}, env, 2},
		{[]string{"config"}, env, 2},
		{[]string{"config", "check", "--output", "xml"}, env, 2},
		{[]string{"version"}, env, 0},
		{[]string{"config", "check"}, env, 0},
		{[]string{"config", "check"}, env[:2], 1}, // DOCSVC_QUEUE_URL missing
		{[]string{"migrate"}, env[1:], 1},         // DOCSVC_DATABASE_URL missing
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			env := append([]string{"DOCSVC_DATABASE_URL=", "DOCSVC_BLOB_URL=", "DOCSVC_QUEUE_URL="}, tc.env...)
			if r := run(t, env, tc.args...); r.code != tc.want {
				t.Fatalf("exit %d, want %d; stderr %q", r.code, tc.want, r.stderr)
			}
		})
	}
}
