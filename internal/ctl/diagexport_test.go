package ctl_test

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tetherhq/tether/internal/ctl"
)

// diag export's refusals; the export itself, from a running agent, is in
// the end-to-end boundary test (internal/boundary TestCanary), which scans
// the exported zip for the documents' content, names and IDs.
func TestDiagExportRefusals(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	existing := filepath.Join(dir, "old.zip")
	if err := os.WriteFile(existing, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	// An address nothing listens on: a listener opened and closed.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	run := func(args ...string) error {
		var out bytes.Buffer
		return ctl.RunEnv(context.Background(), append([]string{"diag", "export"}, args...), ctl.Env{Stdout: &out, Stderr: &out, Getenv: func(string) string { return "" }})
	}
	for _, bad := range [][]string{
		{},
		{"--out", filepath.Join(dir, "a.zip"), "extra"},
		{"--out", filepath.Join(dir, "a.zip"), "--agent-status-addr", "8.8.8.8:8091"},
		{"--out", filepath.Join(dir, "a.zip"), "--agent-status-addr", "no-port"},
		{"--out", filepath.Join(dir, "a.zip"), "--output", "yaml"},
	} {
		if err := run(bad...); !ctl.IsUsage(err) {
			t.Errorf("diag export %s = %v, want a usage error", strings.Join(bad, " "), err)
		}
	}
	if err := run("--out", existing, "--agent-status-addr", closed, "--yes"); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("export over an existing file = %v", err)
	}
	if b, _ := os.ReadFile(existing); string(b) != "keep" {
		t.Error("the existing file was changed")
	}
	if err := run("--out", filepath.Join(dir, "new.zip"), "--agent-status-addr", closed, "--yes"); err == nil || !strings.Contains(err.Error(), "does not answer") {
		t.Errorf("export with no agent = %v, want it to say the agent does not answer", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "new.zip")); err == nil {
		t.Error("a failed export wrote its file")
	}
}
