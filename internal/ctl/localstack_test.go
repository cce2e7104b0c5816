package ctl_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/tetherhq/tether/internal/ctl"
	"github.com/tetherhq/tether/internal/devstack"
)

// TestMain removes the docsvc build the tests share: it outlives any one
// test, so it cannot live in a t.TempDir.
func TestMain(m *testing.M) {
	code := m.Run()
	if docsvcBuild.dir != "" {
		os.RemoveAll(docsvcBuild.dir)
	}
	os.Exit(code)
}

var docsvcBuild struct {
	once sync.Once
	dir  string
	err  error
	out  []byte
}

// localDataDir makes a local runtime's data directory as tetherctl dev
// leaves it: docsvc built into bin/ and its database migrated. docsvc is
// built once per test binary.
func localDataDir(t *testing.T) string {
	t.Helper()
	docsvcBuild.once.Do(func() {
		docsvcBuild.dir, docsvcBuild.err = os.MkdirTemp("", "ctl-docsvc-")
		if docsvcBuild.err == nil {
			cmd := exec.Command("go", "build", "-o", filepath.Join(docsvcBuild.dir, "docsvc"), "../../cmd/docsvc")
			docsvcBuild.out, docsvcBuild.err = cmd.CombinedOutput()
		}
	})
	if docsvcBuild.err != nil {
		t.Fatalf("build docsvc: %v\n%s", docsvcBuild.err, docsvcBuild.out)
	}
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(docsvcBuild.dir, "docsvc"), filepath.Join(dir, "bin", "docsvc")); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(context.Background(), filepath.Join(dir, "bin", "docsvc"), "migrate")
	cmd.Env = devstack.DocsvcStorageEnv(dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docsvc migrate: %v\n%s", err, out)
	}
	return dir
}

// inDataDir runs tetherctl commands on the data dir dir, with stdin as
// standard input; it returns their standard output and error.
func inDataDir(dir string) func(stdin string, args ...string) (string, string, error) {
	return func(stdin string, args ...string) (string, string, error) {
		var out, errOut bytes.Buffer
		err := ctl.RunEnv(context.Background(), append(args, "--data-dir", dir), ctl.Env{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errOut, Getenv: func(string) string { return "" }})
		return out.String(), errOut.String(), err
	}
}
