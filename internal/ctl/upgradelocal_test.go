package ctl

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tetherhq/tether/internal/devstack"
	"github.com/tetherhq/tether/internal/releasestate"
)

func TestCount5xx(t *testing.T) {
	m := `# HELP docsvc_http_requests_total HTTP requests by route and status code.
# TYPE docsvc_http_requests_total counter
docsvc_http_requests_total{code="200",route="GET /v1/documents/{id}"} 41
docsvc_http_requests_total{code="500",route="POST /v1/documents"} 2
docsvc_http_requests_total{code="503",route="GET /readyz"} 1
docsvc_http_requests_total{code="404",route="unmatched"} 5
go_goroutines 12
`
	n, err := count5xx([]byte(m))
	if err != nil || n != 3 {
		t.Fatalf("count5xx = %v, %v; want 3", n, err)
	}
	if _, err := count5xx([]byte(`docsvc_http_requests_total{code="500",route="x"} many`)); err == nil || !strings.Contains(err.Error(), `"many"`) {
		t.Fatalf("a bad value: %v, want an error naming it", err)
	}
}

func FuzzCount5xx(f *testing.F) {
	f.Add([]byte("docsvc_http_requests_total{code=\"500\"} 1\n"))
	f.Add([]byte("docsvc_http_requests_total{code=\"500\"}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := count5xx(b)
		if err == nil && n < 0 {
			t.Fatalf("negative count %v", n)
		}
	})
}

func TestParseLocalHistory(t *testing.T) {
	good := `[{"action":"upgrade","from":"1.0.0","to":"1.1.0","outcome":"succeeded","at":"2026-01-02T03:04:05Z",
		"from_binaries":{"version":"1.0.0","docsvc":"/d/releases/1.0.0/docsvc","tether_agent":"/d/releases/1.0.0/tether-agent"},
		"to_binaries":{"version":"1.1.0","docsvc":"/d/releases/1.1.0/docsvc","tether_agent":"/d/releases/1.1.0/tether-agent"}}]`
	h, err := parseLocalHistory("history.json", []byte(good))
	if err != nil || len(h) != 1 {
		t.Fatalf("parse: %v, %v", h, err)
	}
	prev, ok := previousLocal(h, devstack.Running{Version: "1.1.0", Docsvc: "/d/releases/1.1.0/docsvc", Agent: "/d/releases/1.1.0/tether-agent"})
	if !ok || prev.FromBinaries.Version != "1.0.0" {
		t.Fatalf("previous of 1.1.0 = %+v, %v; want 1.0.0", prev, ok)
	}
	if _, ok := previousLocal(h, devstack.Running{Version: "1.2.0"}); ok {
		t.Fatal("a stack running something no record installed has a previous release")
	}
	for _, bad := range []struct{ in, want string }{
		{`{}`, "not tetherctl's release history"},
		{`[{"action":"upgrade","outcome":"maybe"}]`, `"maybe"`},
		{`[{"action":"delete","outcome":"succeeded"}]`, `"delete"`},
		{`[{"action":"upgrade","outcome":"succeeded","extra":1}]`, "not tetherctl's release history"},
	} {
		if _, err := parseLocalHistory("history.json", []byte(bad.in)); err == nil || !strings.Contains(err.Error(), bad.want) || !strings.Contains(err.Error(), "history.json") {
			t.Errorf("%s: %v, want an error naming the file and %s", bad.in, err, bad.want)
		}
	}
}

func FuzzParseLocalHistory(f *testing.F) {
	f.Add([]byte(`[{"action":"upgrade","outcome":"succeeded"}]`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := parseLocalHistory("h", b)
		if err != nil {
			return
		}
		if len(h) > maxLocalHistory {
			t.Fatalf("%d entries accepted", len(h))
		}
		for _, o := range h {
			if !localOutcomes[o.Outcome] {
				t.Fatalf("outcome %q accepted", o.Outcome)
			}
		}
	})
}

// On the local runtime an export is verified before the supervisor is
// asked anything: unsigned, wrong-key and expired exports are refused with
// the reason, and nothing of them is kept in the data dir.
func TestLocalUpgradeRefusals(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	v := newVendorRepo(t, now)
	v.publish(now, "1.0.0", "", "a", "b")
	good := v.export()
	for _, c := range refusedExports(t, now, v, good) {
		t.Run(c.name, func(t *testing.T) {
			dataDir := t.TempDir()
			rootFile := filepath.Join(dataDir, "plane", "keys", "root.json")
			os.MkdirAll(filepath.Dir(rootFile), 0o700)
			os.WriteFile(rootFile, []byte(c.root), 0o600)
			var stderr bytes.Buffer
			err := RunEnv(context.Background(), []string{"upgrade", "--local", dataDir, "--bundle", c.bundle, "--yes"}, Env{Stderr: &stderr})
			if err == nil || !strings.Contains(err.Error(), "refused, nothing was changed") || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want a refusal saying %q", err, c.want)
			}
			if entries, _ := os.ReadDir(filepath.Join(dataDir, "releases", "tuf")); len(entries) != 1 {
				t.Fatalf("a refused export changed the trusted metadata: %v", entries)
			}
		})
	}
	t.Run("no supervisor", func(t *testing.T) {
		dataDir := t.TempDir()
		rootFile := filepath.Join(t.TempDir(), "root.json")
		os.WriteFile(rootFile, []byte(v.root), 0o600)
		err := RunEnv(context.Background(), []string{"upgrade", "--local", dataDir, "--bundle", good, "--trusted-root", rootFile, "--yes"}, Env{})
		if err == nil || !strings.Contains(err.Error(), "is tetherctl dev running with this --data-dir?") {
			t.Fatalf("without a running stack: %v", err)
		}
	})
}

// The agent's release record gets each outcome, newest first, with a fixed
// reason code; its free-text reason (which the agent never sends) names no
// path of this machine. The history keeps the newest first.
func TestLocalOutcomeRecorded(t *testing.T) {
	dataDir := t.TempDir()
	l := &localRuntime{dataDir: dataDir, now: time.Now}
	from := devstack.Running{Version: "1.0.0", Docsvc: filepath.Join(dataDir, "bin", "docsvc"), Agent: filepath.Join(dataDir, "bin", "tether-agent")}
	to := devstack.Running{Version: "1.1.0", Docsvc: filepath.Join(dataDir, "releases", "1.1.0", "docsvc"), Agent: filepath.Join(dataDir, "releases", "1.1.0", "tether-agent")}
	if err := l.finish(&localPlan{Action: "upgrade", From: from, To: to}, "succeeded", "", nil); err != nil {
		t.Fatal(err)
	}
	cause := fmt.Errorf("release 1.2.0's migration failed, restore %s", filepath.Join(dataDir, "backups", "x"))
	p := &localPlan{Action: "upgrade", From: to, To: devstack.Running{Version: "1.2.0"}}
	if err := l.finish(p, "failed", "migration-failed", cause); err != cause {
		t.Fatalf("finish returned %v, want the cause", err)
	}
	path := filepath.Join(dataDir, AgentRecordFile)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := releasestate.Parse(path, b)
	if err != nil || len(rec) != 2 {
		t.Fatalf("the agent's record %s: %v", b, err)
	}
	if last := rec[0]; last.Outcome != "failed" || last.Code != "migration-failed" || last.To != "1.2.0" || last.From != "1.1.0" || rec[1].Outcome != "succeeded" {
		t.Fatalf("the agent's record %s", b)
	}
	if strings.Contains(string(b), dataDir) || !strings.Contains(rec[0].Reason, "DATA_DIR/backups/x") {
		t.Fatalf("the agent's record names this machine's path: %s", b)
	}
	if _, got := releasestate.Report(rec); got.Version != "1.2.0" || got.Outcome != "failed" || got.Reason != "migration-failed" {
		t.Fatalf("the agent would report %+v", got)
	}
	h, err := l.history()
	if err != nil || len(h) != 2 || h[0].To != "1.2.0" || h[1].Outcome != "succeeded" {
		t.Fatalf("history %+v, %v", h, err)
	}
	if prev, ok := previousLocal(h, to); !ok || prev.FromBinaries != from {
		t.Fatalf("previous of 1.1.0 after a failed 1.2.0: %+v %v", prev, ok)
	}
}
