package main

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/tetherhq/tether/internal/boundary"
)

// TestMain lets the tests run this binary's main as tetherctl itself.
func TestMain(m *testing.M) {
	if os.Getenv("TETHERCTL_TEST_MAIN") == "1" {
		os.Args = append([]string{"tetherctl"}, strings.Fields(os.Getenv("TETHERCTL_TEST_ARGS"))...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// Exit status: 0 success (and --help), 2 usage or deployment.yaml
// mistakes, 1 other failures.
func TestExitStatus(t *testing.T) {
	for _, tc := range []struct {
		args string
		want int
	}{
		{"--help", 0},
		{"secrets --help", 0},
		{"preflight --help", 0},
		{"egress show --help", 0},
		{"diag list --help", 0},
		{"airgap import --help", 0},
		{"dev --help", 0},
		{"images push --help", 0},
		{"migrate --help", 0},
		{"tokens create --help", 0},
		{"", 2},
		{"nosuch", 2},
		{"secrets frob", 2},
		{"secrets list --config /nonexistent/deployment.yaml", 2},
		{"preflight --timeout 5m", 2},
		{"images pull", 2},
		{"migrate --digest latest", 2},
		{"tokens revoke not-an-id", 2},
		{"egress verify --data-dir /nonexistent/dir", 1},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "TETHERCTL_TEST_MAIN=1", "TETHERCTL_TEST_ARGS="+tc.args)
		err := cmd.Run()
		code := 0
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			code = exit.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != tc.want {
			t.Errorf("tetherctl %s: exit %d, want %d", tc.args, code, tc.want)
		}
	}
}

// tetherctl runs on the customer's workstation: it must not link the
// packages that read documents, their storage or their queue
// (boundary.DocumentReaders, as for the agent), nor the agent itself (internal/agent and
// everything under it). The diagnostics commands read and write the
// agent's requests through internal/diagspool, which imports neither, and
// the exchange bucket through internal/exchange, S3's one gateway.
func TestNoDocumentPackages(t *testing.T) {
	forbidden := append(boundary.DocumentReaders(), boundary.AgentPackage)
	for _, v := range boundary.MustDeps(t, ".").Violations(forbidden) {
		t.Errorf("tetherctl: %s, which is the agent or could read documents (S3 only through %s)", v, boundary.ExchangePackage)
	}
}
