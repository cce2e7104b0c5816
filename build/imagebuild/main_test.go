package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tetherhq/tether/internal/imagebuild"
)

func runCmd(t *testing.T, env map[string]string, args ...string) (string, string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), args, func(k string) string { return env[k] }, &stdout, &stderr)
	return stdout.String(), stderr.String(), err
}

func TestUsageMistakes(t *testing.T) {
	t.Chdir("../..")
	out := filepath.Join(t.TempDir(), "layout")
	for _, tc := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{nil, []string{"--out", out}, "--version and --out are required"},
		{nil, []string{"--version", "1.0.0"}, "--version and --out are required"},
		{nil, []string{"--version", "1.0.0", "--out", out, "extra"}, `unexpected argument "extra"`},
		{nil, []string{"--version", "1.0.0", "--out", out, "--images", "docsvc,shell"}, `no image "shell"`},
		{map[string]string{"SOURCE_DATE_EPOCH": "yesterday"}, []string{"--version", "1.0.0", "--out", out}, `SOURCE_DATE_EPOCH="yesterday"`},
		{nil, []string{"--bogus"}, "bogus"},
		{nil, []string{"--version", "1.0.0", "--out", out, "--images", "docsvc", "--plane-keys", "."}, "--plane-keys is for the plane image"},
	} {
		_, _, err := runCmd(t, tc.env, tc.args...)
		if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want a usage error with %q", tc.args, err, tc.want)
		}
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused command wrote %s: %v", out, err)
	}
	if _, stderr, err := runCmd(t, nil, "--help"); err == nil || !strings.Contains(stderr, "podman run --rm oci:DIR:docsvc") {
		t.Errorf("--help: %v\n%s", err, stderr)
	}
}

// TestBuild: the command writes the layout and prints the digests the
// layout holds.
func TestBuild(t *testing.T) {
	t.Chdir("../..")
	out := filepath.Join(t.TempDir(), "layout")
	stdout, stderr, err := runCmd(t, map[string]string{"SOURCE_DATE_EPOCH": "1772366400"}, "--version", "1.2.3", "--out", out, "--images", "plane,agent")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	named, err := imagebuild.ReadLayout(out)
	if err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	for _, n := range named {
		d, err := n.Image.Digest()
		if err != nil {
			t.Fatal(err)
		}
		want.WriteString(n.Name + " " + d.String() + "\n")
	}
	if len(named) != 2 || stdout != want.String() || !strings.HasPrefix(stdout, "plane sha256:") {
		t.Errorf("printed %q; the layout holds %q (want plane then agent)", stdout, want.String())
	}
	if _, _, err := runCmd(t, nil, "--version", "1.2.3", "--out", out, "--images", "plane"); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("a second build into the same directory: %v, want a refusal", err)
	}
}
