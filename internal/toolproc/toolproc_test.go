package toolproc_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tetherhq/tether/internal/toolproc"
)

func TestMissingToolSaysHowToInstallIt(t *testing.T) {
	_, err := toolproc.Start(toolproc.Spec{Name: "nothing", Bin: filepath.Join("tools", "no-such-tool"), Health: "/"})
	if err == nil || !strings.Contains(err.Error(), "run scripts/test-deps.sh") {
		t.Fatalf("err = %v, want a pointer to scripts/test-deps.sh", err)
	}
	t.Setenv("TETHER_TOOLPROC_TEST_BIN", filepath.Join(t.TempDir(), "gone"))
	if _, err := toolproc.FindBinary("tools/x", "TETHER_TOOLPROC_TEST_BIN"); err == nil || !strings.Contains(err.Error(), "TETHER_TOOLPROC_TEST_BIN=") {
		t.Fatalf("override to a missing file: err = %v", err)
	}
}

// A server that exits before it answers is reported with its output, after
// the retries, instead of hanging the test.
func TestExitBeforeHealthyIsAnError(t *testing.T) {
	script := filepath.Join(t.TempDir(), "fails")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho cannot bind port $1 >&2\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TETHER_TOOLPROC_TEST_BIN", script)
	_, err := toolproc.Start(toolproc.Spec{Name: "fails", EnvOverride: "TETHER_TOOLPROC_TEST_BIN", Health: "/",
		Args: func(port int) []string { return []string{"x"} }})
	if err == nil || !strings.Contains(err.Error(), "exited before answering") || !strings.Contains(err.Error(), "cannot bind port x") {
		t.Fatalf("err = %v", err)
	}
}

// Stop ends the server: its port stops answering.
func TestStop(t *testing.T) {
	script := filepath.Join(t.TempDir(), "serve")
	// python3's http.server is on every machine the tests run on (the Python
	// tools need it).
	if err := os.WriteFile(script, []byte("#!/bin/sh\nexec python3 -m http.server --bind 127.0.0.1 \"$1\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TETHER_TOOLPROC_TEST_BIN", script)
	p, err := toolproc.Start(toolproc.Spec{Name: "http.server", EnvOverride: "TETHER_TOOLPROC_TEST_BIN", Health: "/",
		Args: func(port int) []string { return []string{strconv.Itoa(port)} }})
	if err != nil {
		t.Fatal(err)
	}
	p.Stop()
	if resp, err := http.Get(p.Endpoint + "/"); err == nil {
		resp.Body.Close()
		t.Fatalf("%s still answers after Stop", p.Endpoint)
	}
}
