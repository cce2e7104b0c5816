package ctl_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tetherhq/tether/internal/ctl"
	"github.com/tetherhq/tether/internal/ledger"
)

func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := ctl.Run(context.Background(), args, func(string) string { return "" }, &out, io.Discard)
	return out.String(), err
}

func TestEgressShowAndVerify(t *testing.T) {
	dev := t.TempDir()
	agentDir := filepath.Join(dev, "agent")
	os.Mkdir(agentDir, 0o700)
	path := filepath.Join(agentDir, "egress.ledger")
	l, err := ledger.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	l.Append(ledger.KindHeartbeat, "POST http://127.0.0.1:8090/v1/heartbeat", []byte(`{"channel":"stable"}`), now.Add(-48*time.Hour))
	l.Append(ledger.KindHeartbeat, "POST http://127.0.0.1:8090/v1/heartbeat", []byte(`{"channel":"beta"}`), now)
	l.Append(ledger.KindDiagnostics, "POST http://127.0.0.1:8090/v1/diagnostics/d1/bundle", []byte("PK\x03\x04zipbytes"), now)
	l.Close()

	// The dev data dir and the agent's own dir both work.
	for _, dir := range []string{dev, agentDir} {
		out, err := run(t, "egress", "verify", "--data-dir", dir)
		if err != nil || !strings.Contains(out, "3 entries") {
			t.Fatalf("verify %s: %q, %v", dir, out, err)
		}
	}
	out, err := run(t, "egress", "show", "--data-dir", dev, "--since", "24h")
	if err != nil || strings.Contains(out, `"stable"`) || !strings.Contains(out, `{"channel":"beta"}`) || !strings.Contains(out, "binary payload") {
		t.Fatalf("show --since 24h:\n%s\n%v", out, err)
	}
	out, err = run(t, "egress", "show", "--data-dir", dev, "--output", "json")
	var entries []ledger.Entry
	if err != nil || json.Unmarshal([]byte(out), &entries) != nil || len(entries) != 3 {
		t.Fatalf("show json: %v\n%s", err, out)
	}
	if b, _ := entries[2].Bytes(); string(b) != "PK\x03\x04zipbytes" {
		t.Fatalf("json output lost the exact bytes of a binary payload: %q", b)
	}
	if _, err := run(t, "egress", "show", "--data-dir", dev, "--since", "yesterday"); err == nil || !strings.Contains(err.Error(), "RFC 3339") {
		t.Fatalf("bad --since: %v", err)
	}

	// A torn final line (a crash mid-append) is cut off by repair, and only it.
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"seq":4,"time":"2026-`)
	f.Close()
	if _, err := run(t, "egress", "verify", "--data-dir", dev); err == nil {
		t.Fatal("verify accepted a torn last line")
	}
	out, err = run(t, "egress", "repair", "--data-dir", dev)
	if err != nil || !strings.Contains(out, "removed an incomplete last line") || !strings.Contains(out, "3 entries") {
		t.Fatalf("repair: %q, %v", out, err)
	}

	// Any edit is caught, and verify fails.
	data, _ := os.ReadFile(path)
	os.WriteFile(path, bytes.Replace(data, []byte(`"beta"`), []byte(`"BETA"`), 1), 0o600)
	if _, err := run(t, "egress", "verify", "--data-dir", dev); err == nil || !strings.Contains(err.Error(), "tamper") {
		t.Fatalf("verify after an edit: %v, want a tampering error", err)
	}
	if _, err := run(t, "egress", "verify", "--data-dir", t.TempDir()); err == nil || !strings.Contains(err.Error(), "no ledger") {
		t.Fatalf("verify without a ledger: %v", err)
	}
}
