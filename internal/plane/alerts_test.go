package plane_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetherhq/tether/internal/plane"
)

// webhook is an httptest receiver that fails its first failFirst posts.
type webhook struct {
	mu        sync.Mutex
	failFirst int
	calls     int
	got       []plane.AlertPayload
}

func (h *webhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls++
	if h.calls <= h.failFirst {
		http.Error(w, "try later", http.StatusServiceUnavailable)
		return
	}
	body, _ := io.ReadAll(r.Body)
	var p plane.AlertPayload
	if err := json.Unmarshal(body, &p); err != nil || r.Header.Get("Tether-Alert-Id") != p.ID {
		http.Error(w, "bad alert", http.StatusBadRequest)
		return
	}
	h.got = append(h.got, p)
}

func (h *webhook) callCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.calls
}

func (h *webhook) received() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, p := range h.got {
		out = append(out, p.Kind+":"+p.Value)
	}
	return out
}

func TestAlertsOncePerTransitionWithRetries(t *testing.T) {
	hook := &webhook{failFirst: 2}
	hs := httptest.NewServer(hook)
	defer hs.Close()
	b := setup(t, func(o *setupOpts) { o.webhook = hs.URL + "/hooks/secret-path" })
	b.server.Alerter().BaseBackoff = time.Second
	a := b.activate(t, b.license(t, "lic_a", "stable"))

	sweepFor := func(d time.Duration) {
		// sweep once per simulated second, so backoffs elapse
		for range int(d / time.Second) {
			b.clock.Advance(time.Second)
			b.server.Sweep(b.ctx)
		}
	}
	a.heartbeat(t, "ok")
	a.heartbeat(t, "degraded")
	a.heartbeat(t, "degraded") // same state: no second alert
	sweepFor(10 * time.Second)
	if got := fmt.Sprint(hook.received()); got != "[health:degraded]" {
		t.Fatalf("after degraded: %s", got)
	}
	if n := hook.callCount(); n != 3 {
		t.Fatalf("webhook called %d times, want 3 (two failures, one success)", n)
	}
	a.heartbeat(t, "down")
	a.heartbeat(t, "ok")
	sweepFor(2 * time.Second)
	// silence for more than three intervals makes the install stale, once
	sweepFor(4 * time.Minute)
	want := "[health:degraded health:down stale:stale]"
	if got := fmt.Sprint(hook.received()); got != want {
		t.Fatalf("alerts %s, want %s", got, want)
	}
	hook.mu.Lock()
	last := hook.got[len(hook.got)-1]
	hook.mu.Unlock()
	if last.InstallID != a.id || last.Customer != "Customer lic_a" || !strings.Contains(last.Text, "stale") {
		t.Fatalf("stale alert = %+v", last)
	}
}

func TestAlertsGiveUpAndDoNotLeakWebhookURL(t *testing.T) {
	hook := &webhook{failFirst: 1 << 30}
	hs := httptest.NewServer(hook)
	defer hs.Close()
	b := setup(t, func(o *setupOpts) { o.webhook = hs.URL })
	al := b.server.Alerter()
	al.BaseBackoff, al.MaxAttempts = time.Second, 3
	a := b.activate(t, b.license(t, "lic_a", "stable"))
	a.heartbeat(t, "down")
	for range 30 {
		b.clock.Advance(time.Second)
		b.server.Sweep(b.ctx)
	}
	if n := hook.callCount(); n != 3 {
		t.Fatalf("webhook called %d times, want MaxAttempts=3", n)
	}
	due, err := b.store.DueAlerts(b.ctx, 10)
	if err != nil || len(due) != 0 {
		t.Fatalf("alert still queued after giving up: %+v %v", due, err)
	}

	// an unreachable webhook's error must not carry the URL (it is a secret)
	hs.Close()
	al.WebhookURL = hs.URL + "/T000/B000/secret-token"
	a.heartbeat(t, "ok")
	a.heartbeat(t, "degraded")
	b.server.Sweep(b.ctx)
	var lastErr string
	if err := b.store.DB().QueryRowContext(b.ctx, `SELECT last_error FROM plane_alerts WHERE value = 'degraded'`).Scan(&lastErr); err != nil {
		t.Fatal(err)
	}
	if lastErr == "" || strings.Contains(lastErr, "secret-token") {
		t.Fatalf("last_error = %q", lastErr)
	}
}
