package apidoc_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tetherhq/tether/internal/docsvc"
	"github.com/tetherhq/tether/internal/plane/planetest"
	"github.com/tetherhq/tether/internal/testtime"
)

// schemathesis returns the fuzzer scripts/test-deps.sh installs in
// tools/venv-api. Without it the test is skipped, except under CI, where
// it must run.
func schemathesis(t *testing.T) string {
	t.Helper()
	bin, err := filepath.Abs("../../tools/venv-api/bin/schemathesis")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is missing and CI=true: run scripts/test-deps.sh (make test-deps) first", bin)
		}
		t.Skipf("%s is missing: run scripts/test-deps.sh to install it", bin)
	}
	return bin
}

// freeAddr returns a loopback address nothing listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startDocsvc runs `docsvc api`, and the roles named in more (`worker`),
// in this process on its embedded defaults (SQLite, a file blob store, the
// database queue), after `docsvc migrate`, and returns the API's base URL
// and an API token `docsvc tokens create` made.
func startDocsvc(t *testing.T, more ...string) (url, token string) {
	t.Helper()
	dir := t.TempDir()
	addr := freeAddr(t)
	env := map[string]string{
		"DOCSVC_DATABASE_URL": "sqlite://" + filepath.Join(dir, "docsvc.db"),
		"DOCSVC_BLOB_URL":     "file://" + filepath.Join(dir, "blobs"),
		"DOCSVC_QUEUE_URL":    "db://jobs",
		"DOCSVC_ADDR":         addr,
		"DOCSVC_LOG_LEVEL":    "error",
	}
	run := func(ctx context.Context, args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := docsvc.Run(ctx, args, func(k string) string { return env[k] }, &out, &errOut)
		if err != nil {
			err = fmt.Errorf("docsvc %s: %w\n%s", strings.Join(args, " "), err, errOut.String())
		}
		return out.String(), err
	}
	ctx := context.Background()
	if _, err := run(ctx, "migrate"); err != nil {
		t.Fatal(err)
	}
	out, err := run(ctx, "tokens", "create", "--name", "schemathesis")
	if err != nil {
		t.Fatal(err)
	}
	token = strings.TrimSpace(out)
	ctx, cancel := context.WithCancel(ctx)
	roles := append([]string{"api"}, more...)
	done := make(chan error, len(roles))
	for _, role := range roles {
		go func() { _, err := run(ctx, role); done <- err }()
	}
	t.Cleanup(func() {
		cancel()
		for range roles {
			if err := <-done; err != nil {
				t.Errorf("%v", err)
			}
		}
	})
	url = "http://" + addr
	waitReady(t, url+"/healthz", done)
	return url, token
}

func waitReady(t *testing.T, url string, done <-chan error) {
	t.Helper()
	testtime.Until(t, 30*time.Second, url+" to answer 200", func() bool {
		select {
		case err := <-done:
			t.Fatalf("the service stopped before it answered %s: %v", url, err)
		default:
		}
		res, err := http.Get(url)
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	})
}

// runSchemathesis fuzzes the service at base with the document it serves
// at /openapi.json, sending header with every request, by
// schemathesis.toml's settings: every check, a bounded number of examples.
// Any server error, any answer the document does not describe, any crash
// fails the test with schemathesis's report.
func runSchemathesis(t *testing.T, bin, base, header string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	config, err := filepath.Abs("schemathesis.toml")
	if err != nil {
		t.Fatal(err)
	}
	report := t.TempDir()
	cmd := exec.CommandContext(ctx, bin, "--config-file", config, "run", base+"/openapi.json",
		"--url", base, "--header", header, "--report", "junit", "--report-dir", report)
	cmd.Dir = report // whatever it writes stays out of the tree
	cmd.Env = append(os.Environ(), "NO_COLOR=1", "SCHEMATHESIS_HOOKS=")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		t.Errorf("schemathesis against %s failed (exit %d):\n%s", base, exit.ExitCode(), tail(out.Bytes(), 12000))
	case err != nil:
		t.Fatalf("schemathesis: %v\n%s", err, out.String())
	default:
		t.Logf("schemathesis against %s:\n%s", base, tail(out.Bytes(), 1500))
	}
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// TestSchemathesis runs the fuzzer against a live docsvc (with an API
// token) and a live plane (with its admin token).
func TestSchemathesis(t *testing.T) {
	bin := schemathesis(t)
	t.Run("docsvc", func(t *testing.T) {
		url, token := startDocsvc(t)
		runSchemathesis(t, bin, url, "Authorization: Bearer "+token)
	})
	t.Run("plane-admin", func(t *testing.T) {
		p := planetest.Start(t)
		runSchemathesis(t, bin, p.URL, "Authorization: Bearer "+p.AdminToken)
	})
}
