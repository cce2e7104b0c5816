package agent

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// logBuffer collects the agent's JSON log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// records returns the log records with message msg.
func (l *logBuffer) records(msg string) []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(l.buf.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

// A failed heartbeat is logged, and shown on the status page, with why it
// failed: a revoked install, a refused payload, a broken ledger, a plane
// that fails and one that cannot be reached each read differently, and
// none quotes the heartbeat.
func TestHeartbeatFailureSaysWhy(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		breakIt   func(t *testing.T, b *bundle, r *running)
		wantClass string
		wantText  string
	}{
		{"plane fails", func(t *testing.T, b *bundle, r *running) { b.gate.setDown(true) }, failPlane, "plane answered 503"},
		{"payload refused", func(t *testing.T, b *bundle, r *running) {
			b.gate.answer(http.StatusBadRequest, `{"error":"wire: invalid payload: components: too many"}`)
		}, failRejected, "plane answered 400 (wire: invalid payload: components: too many)"},
		{"install revoked", func(t *testing.T, b *bundle, r *running) {
			if status, out := b.plane.Admin(t, "POST", "/v1/admin/installs/"+r.Snapshot().InstallID+"/revoke", nil); status != http.StatusOK {
				t.Fatalf("revoke: %d %s", status, out)
			}
		}, failRevoked, "revoked"},
		{"signature refused", func(t *testing.T, b *bundle, r *running) {
			b.gate.answer(http.StatusUnauthorized, `{"error":"bad_signature"}`)
		}, failUnauthorized, "plane answered 401 (bad_signature)"},
		{"broken ledger", func(t *testing.T, b *bundle, r *running) {
			// Cut entries off the end, as a bad restore would.
			if err := os.Truncate(filepath.Join(b.cfg.DataDir, "egress.ledger"), 0); err != nil {
				t.Fatal(err)
			}
		}, failLedger, "ledger shrank"},
		{"plane unreachable", func(t *testing.T, b *bundle, r *running) { b.gate.srv.Close() }, failUnreachable, "connection refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := setup(t)
			logs := &logBuffer{}
			b.opts.Logger = slog.New(slog.NewJSONHandler(logs, nil))
			r := b.start()
			b.waitHeartbeats(1)
			tc.breakIt(t, b, r)
			waitFor(t, "a failed heartbeat to be logged", func() bool { return len(logs.records("heartbeat failed; will retry")) > 0 })
			rec := logs.records("heartbeat failed; will retry")[0]
			msg, _ := rec["err"].(string)
			if rec["class"] != tc.wantClass || !strings.Contains(msg, tc.wantText) {
				t.Fatalf("logged class %v, err %q; want %s and %q", rec["class"], msg, tc.wantClass, tc.wantText)
			}
			for _, payload := range []string{`"components"`, `"sent_at"`, `"versions"`, "{"} {
				if strings.Contains(msg, payload) {
					t.Errorf("the logged error quotes the heartbeat (%q): %s", payload, msg)
				}
			}
			st := r.Snapshot()
			if st.LastHeartbeatErrorClass != tc.wantClass || !strings.Contains(st.LastHeartbeatError, tc.wantText) {
				t.Fatalf("status: class %q, error %q", st.LastHeartbeatErrorClass, st.LastHeartbeatError)
			}
			var page bytes.Buffer
			if err := statusPage.Execute(&page, st); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(page.String(), `<span id="heartbeat-error-class">`+tc.wantClass+`</span>`) {
				t.Errorf("status page does not show the class %s", tc.wantClass)
			}
		})
	}
}

// FuzzStatusError: the plane's answer to a failed request is outside input
// that ends up in the agent's log and status page. Whatever it holds, the
// error has a class and its text is short, printable and one line.
func FuzzStatusError(f *testing.F) {
	f.Add(401, []byte(`{"error":"revoked"}`))
	f.Add(400, []byte(`{"error":"wire: invalid payload: queue.depth: negative"}`))
	f.Add(503, []byte("plane unavailable\n"))
	f.Add(418, []byte(`{"error":"\u001b[31mred\u0000"}`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		err := statusError(status, body)
		if failureClass(err) == "" || failureClass(err) == "error" {
			t.Fatalf("statusError(%d) has no class", status)
		}
		msg := err.Error()
		if len(msg) > 300 || strings.IndexFunc(msg, func(r rune) bool { return r < ' ' || r > '~' }) >= 0 {
			t.Fatalf("statusError(%d, %q) = %q", status, body, msg)
		}
	})
}
