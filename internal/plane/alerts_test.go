package plane_test

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetherhq/tether/internal/plane"
	"github.com/tetherhq/tether/internal/plane/planestore"
	"github.com/tetherhq/tether/internal/sqldb/sqldbtest"
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

// A license is alerted on once per threshold it crosses (30, 7 and 1 days
// before it expires), whichever replica sweeps; the webhook gets its expiry.
func TestLicenseExpiryAlertsOncePerThreshold(t *testing.T) {
	hook := &webhook{}
	hs := httptest.NewServer(hook)
	defer hs.Close()
	b := setup(t, func(o *setupOpts) { o.webhook = hs.URL })
	a := b.activate(t, b.license(t, "lic_a", "stable")) // expires in 90 days
	license := func() []string {
		var out []string
		for _, k := range hook.received() {
			if strings.HasPrefix(k, "license:") {
				out = append(out, k)
			}
		}
		return out
	}
	b.clock.Advance(59 * 24 * time.Hour) // 31 days left
	b.server.Sweep(b.ctx)
	if got := license(); len(got) != 0 {
		t.Fatalf("31 days before expiry: %v", got)
	}
	b.clock.Advance(2 * 24 * time.Hour) // 29 days left
	for range 3 {
		b.server.Sweep(b.ctx)
	}
	if got := fmt.Sprint(license()); got != "[license:30d]" {
		t.Fatalf("29 days before expiry, three sweeps: %s", got)
	}
	b.clock.Advance(23 * 24 * time.Hour) // 6 days left
	b.server.Sweep(b.ctx)
	b.server.Sweep(b.ctx)
	if got := fmt.Sprint(license()); got != "[license:30d license:7d]" {
		t.Fatalf("6 days before expiry: %s", got)
	}
	hook.mu.Lock()
	last := hook.got[len(hook.got)-1]
	hook.mu.Unlock()
	if last.InstallID != a.id || last.LicenseID != "lic_a" || last.LicenseExpires == nil ||
		!last.LicenseExpires.Equal(newClock().Now().Add(90*24*time.Hour)) || !strings.Contains(last.Text, "(6 days left)") {
		t.Fatalf("license alert = %+v", last)
	}
	// The install's page lists them with their delivery.
	if code, body := b.staff(t, planestore.RoleViewer).get(t, "/installs/"+a.id); code != 200 ||
		!strings.Contains(body, "<td>license</td><td>7d</td><td>sent, 1 attempt</td>") ||
		!strings.Contains(body, "<td>license</td><td>30d</td><td>sent, 1 attempt</td>") {
		t.Fatalf("install page alerts: %d %s", code, body)
	}
}

// Replicas sweeping at the same moment queue one alert per license and
// threshold; a license first seen 5 days out is alerted at 7 only.
func TestQueueLicenseAlertsOnceAcrossReplicas(t *testing.T) {
	for name, db := range sqldbtest.Empty(t) {
		t.Run(name, func(t *testing.T) {
			c := newClock()
			ctx := context.Background()
			var stores []*planestore.Store
			for range 2 {
				st, err := planestore.Open(ctx, db, c.Now)
				if err != nil {
					t.Fatal(err)
				}
				stores = append(stores, st)
			}
			for i, days := range []int{20, 5, 60} {
				id := fmt.Sprintf("lic_%d", i)
				if err := stores[0].AddLicense(ctx, planestore.LicenseRecord{ID: id, Customer: "C", IssuedAt: c.Now(),
					ExpiresAt: c.Now().Add(time.Duration(days) * 24 * time.Hour), Channels: []string{"stable"},
					TokenHash: fmt.Sprintf("%064x", i+1)}); err != nil {
					t.Fatal(err)
				}
				pub, _, _ := ed25519.GenerateKey(nil)
				if _, err := stores[0].Activate(ctx, fmt.Sprintf("%064x", i+1), pub, "1.3.0", time.Minute); err != nil {
					t.Fatal(err)
				}
			}
			var wg sync.WaitGroup
			counts := make([]int, 4)
			for i := range counts {
				wg.Add(1)
				go func() {
					defer wg.Done()
					n, err := stores[i%2].QueueLicenseAlerts(ctx, []int{30, 7, 1})
					if err != nil {
						t.Error(err)
					}
					counts[i] = n
				}()
			}
			wg.Wait()
			due, err := stores[0].DueAlerts(ctx, 10)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, a := range due {
				got = append(got, a.Kind+":"+a.Value)
			}
			slices.Sort(got)
			if fmt.Sprint(got) != "[license:30d license:7d]" || counts[0]+counts[1]+counts[2]+counts[3] != 2 {
				t.Fatalf("queued %v (counts %v), want one 30d and one 7d alert", got, counts)
			}
		})
	}
}
