package agent

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherhq/tether/internal/awstest"
	"github.com/tetherhq/tether/internal/diagspool"
	"github.com/tetherhq/tether/internal/diagspool/diagreview"
	"github.com/tetherhq/tether/internal/ledger"
	"github.com/tetherhq/tether/internal/ledger/ledgerread"
	"github.com/tetherhq/tether/internal/license"
	"github.com/tetherhq/tether/internal/plane"
	"github.com/tetherhq/tether/internal/plane/planestore"
	"github.com/tetherhq/tether/internal/plane/planetest"
	"github.com/tetherhq/tether/internal/release/publish"
	"github.com/tetherhq/tether/internal/testtime"
	"github.com/tetherhq/tether/internal/wire"
)

// clock is shared by the plane and the agent: real time plus an offset a
// test can move forward (signatures are checked against the plane's clock,
// so the two must agree).
type clock struct{ offset atomic.Int64 }

func (c *clock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

// fakeDocsvc serves /metrics/summary the way docsvc does (internal/api's
// tests decode docsvc's own with collect.Decode).
type fakeDocsvc struct {
	srv *httptest.Server

	mu        sync.Mutex
	down      bool
	succeeded int64
	failed    int64
	pages     int64
	requests  int64
	errors5xx int64
	version   string
}

func newFakeDocsvc(t *testing.T) *fakeDocsvc {
	f := &fakeDocsvc{version: "1.0.0"}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.down {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		if r.URL.Path != "/metrics/summary" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintf(w, `{"version":%q,"schema_version":4,"status":"ok",`+
			`"checks":{"database":"ok","blob":"ok","queue":"ok","ai_provider":"ok","worker":"ok"},"ai_provider":"anthropic",`+
			`"queue":{"visible":3,"in_flight":1,"dead_letter":0,"oldest_age_seconds":12},"requests":%d,"server_errors":%d,`+
			`"totals":{"queued":0,"processing":0,"succeeded":%d,"failed":%d,"stored_bytes":2500000000,"result_pages":%d}}`,
			f.version, f.requests, f.errors5xx, f.succeeded, f.failed, f.pages)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeDocsvc) set(fn func(f *fakeDocsvc)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

// gate sits between the agent and the plane: it can refuse everything (the
// plane is down) and it checks, for every payload, that the agent's ledger
// already holds exactly those bytes when they arrive.
type gate struct {
	srv        *httptest.Server
	ledgerPath string

	mu         sync.Mutex
	down       bool
	refused    int
	unledgered []string
	// answerCode, when not 0, is answered to every request with answerBody
	// instead of passing it on.
	answerCode int
	answerBody string
}

func newGate(t *testing.T, planeURL, ledgerPath string) *gate {
	g := &gate{ledgerPath: ledgerPath}
	target, _ := url.Parse(planeURL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	// Requests cut off by a stopping agent are expected; keep them quiet.
	proxy.ErrorLog = log.New(io.Discard, "", 0)
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		down, code, answer := g.down, g.answerCode, g.answerBody
		if down || code != 0 {
			g.refused++
		}
		g.mu.Unlock()
		if down {
			http.Error(w, "plane unavailable", http.StatusServiceUnavailable)
			return
		}
		if code != 0 {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(code)
			io.WriteString(w, answer)
			return
		}
		body, _ := io.ReadAll(r.Body)
		if len(body) > 0 && !inLedger(g.ledgerPath, body) {
			g.mu.Lock()
			g.unledgered = append(g.unledgered, r.Method+" "+r.URL.Path)
			g.mu.Unlock()
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(g.srv.Close)
	return g
}

func inLedger(path string, body []byte) bool {
	entries, err := ledgerread.Read(path, time.Time{})
	if err != nil {
		return false
	}
	for _, e := range entries {
		if b, err := e.Bytes(); err == nil && bytes.Equal(b, body) {
			return true
		}
	}
	return false
}

func (g *gate) answer(code int, body string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.answerCode, g.answerBody = code, body
}

func (g *gate) setDown(down bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.down = down
}

type bundle struct {
	t      *testing.T
	clock  *clock
	plane  *planetest.Plane
	docsvc *fakeDocsvc
	gate   *gate
	cfg    Config
	opts   Options
	token  string
}

type setupOpts struct {
	license license.License
}

func setup(t *testing.T, mods ...func(*setupOpts)) *bundle {
	t.Helper()
	so := setupOpts{license: license.License{ID: "lic_test", Customer: "Test Co", GraceSeconds: 86400, Channels: []string{"stable"}}}
	for _, m := range mods {
		m(&so)
	}
	clk := &clock{}
	p := planetest.StartWith(t, planetest.Options{Now: clk.Now})
	file, token := p.IssueLicense(t, so.license)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	write := func(name string, b []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	der, err := x509.MarshalPKIXPublicKey(p.LicensePublicKey())
	if err != nil {
		t.Fatal(err)
	}
	b := &bundle{t: t, clock: clk, plane: p, docsvc: newFakeDocsvc(t), token: token}
	b.gate = newGate(t, p.URL, filepath.Join(data, "egress.ledger"))
	b.cfg = Config{
		DataDir:          data,
		PlaneURL:         b.gate.srv.URL,
		LicenseFile:      write("license.json", file),
		LicensePublicKey: write("license.pub", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})),
		TrustedRoot:      write("root.json", p.RootJSON),
		Channel:          "stable",
		DocsvcURL:        b.docsvc.srv.URL,
		Heartbeat:        50 * time.Millisecond,
	}
	b.opts = Options{Now: clk.Now, Stderr: io.Discard, RetryBase: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond,
		UpdateEvery: time.Hour, Rand: func() float64 { return 0.5 }}
	return b
}

// running is one started agent.
type running struct {
	*Agent
	cancel context.CancelFunc
	done   chan error
}

func (b *bundle) start() *running {
	b.t.Helper()
	a, err := New(context.Background(), b.cfg, b.opts)
	if err != nil {
		b.t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{Agent: a, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- a.Run(ctx) }()
	b.t.Cleanup(func() { r.stop(b.t) })
	return r
}

func (r *running) stop(t *testing.T) {
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Errorf("Run did not return after cancel")
	}
	r.Close()
}

// waitFor polls cond until it holds; the deadline only bounds a broken
// test, it is not a performance assertion.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testtime.Until(t, 20*time.Second, what, cond)
}

func (b *bundle) received(method, pathPrefix string) []planetest.Request {
	var out []planetest.Request
	for _, r := range b.plane.Received.Requests() {
		if r.Method == method && strings.HasPrefix(r.Path, pathPrefix) {
			out = append(out, r)
		}
	}
	return out
}

func (b *bundle) heartbeats() []wire.Heartbeat {
	b.t.Helper()
	var out []wire.Heartbeat
	for _, r := range b.received("POST", "/v1/heartbeat") {
		hb, err := wire.Decode[wire.Heartbeat](r.Body)
		if err != nil {
			b.t.Fatalf("plane got an invalid heartbeat: %v", err)
		}
		out = append(out, hb)
	}
	return out
}

func (b *bundle) waitHeartbeats(n int) []wire.Heartbeat {
	b.t.Helper()
	waitFor(b.t, fmt.Sprintf("%d heartbeats", n), func() bool { return len(b.heartbeats()) >= n })
	return b.heartbeats()
}

func TestActivatesOnceAndReusesIdentity(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.start()
	b.waitHeartbeats(2)
	first := r.Snapshot().InstallID
	r.stop(t)

	fi, err := os.Stat(filepath.Join(b.cfg.DataDir, "identity.key"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("identity.key: %v mode %v, want 0600", err, fi.Mode().Perm())
	}
	before := len(b.heartbeats())
	r2 := b.start()
	b.waitHeartbeats(before + 2)
	if got := r2.Snapshot().InstallID; got != first || first == "" {
		t.Fatalf("install after restart = %q, want %q", got, first)
	}
	if n := len(b.received("POST", "/v1/activate")); n != 1 {
		t.Fatalf("activation requests = %d, want exactly 1", n)
	}
	// Heartbeats after the restart are signed by the same install.
	hbs := b.received("POST", "/v1/heartbeat")
	if got := hbs[len(hbs)-1].Header.Get("Tether-Install"); got != first {
		t.Fatalf("last heartbeat signed as %q, want %q", got, first)
	}
}

func TestKeyMismatchRefusesToStart(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.start()
	b.waitHeartbeats(1)
	r.stop(t)
	// Replacing the key cannot be fixed by activating again: tokens are single-use.
	if err := os.Remove(filepath.Join(b.cfg.DataDir, "identity.key")); err != nil {
		t.Fatal(err)
	}
	if _, err := New(context.Background(), b.cfg, b.opts); !errors.Is(err, ErrKeyMismatch) {
		t.Fatalf("New with a new key = %v, want ErrKeyMismatch", err)
	}
}

func TestUsedTokenIsRefused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.start()
	b.waitHeartbeats(1)
	r.stop(t)
	// A second data dir with the same license: the plane refuses, the agent stops.
	b.cfg.DataDir = t.TempDir()
	a, err := New(context.Background(), b.cfg, b.opts)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.Run(context.Background()); !errors.Is(err, ErrActivationRefused) {
		t.Fatalf("Run = %v, want ErrActivationRefused", err)
	}
}

// An activation request wire refuses (here a token that is not base64url)
// is neither ledgered nor sent, and the agent stops rather than retry it.
func TestInvalidActivationRequestIsFinal(t *testing.T) {
	t.Parallel()
	b := setup(t)
	raw, err := os.ReadFile(b.cfg.LicenseFile)
	if err != nil {
		t.Fatal(err)
	}
	var f license.File
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	f.ActivationToken = "not a token!"
	if raw, err = json.Marshal(f); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(b.cfg.LicenseFile, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := New(context.Background(), b.cfg, b.opts)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	err = a.Run(context.Background())
	var fe *wire.FieldError
	if !errors.As(err, &fe) || fe.Field != "activation_token" || failureClass(err) != failInvalid {
		t.Fatalf("Run = %v, want the invalid activation_token", err)
	}
	if got := b.received("POST", "/v1/activate"); len(got) != 0 {
		t.Errorf("the plane got %d activation requests", len(got))
	}
	if n := a.plane.ledgerEntries(); n != 0 {
		t.Errorf("ledger holds %d entries, want none", n)
	}
}

func TestHeartbeatsAreLedgeredBeforeSending(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.start()
	hbs := b.waitHeartbeats(3)
	b.gate.mu.Lock()
	unledgered := append([]string(nil), b.gate.unledgered...)
	b.gate.mu.Unlock()
	if len(unledgered) > 0 {
		t.Fatalf("payloads reached the plane before the ledger held them: %v", unledgered)
	}
	if _, err := ledgerread.Verify(b.cfg.DataDir + "/egress.ledger"); err != nil {
		t.Fatalf("ledger does not verify: %v", err)
	}
	hb := hbs[0]
	if hb.Channel != "stable" || hb.Versions.Docsvc != "1.0.0" || hb.Versions.Schema != 4 || hb.Versions.Agent != Version {
		t.Errorf("versions/channel: %+v", hb)
	}
	if hb.Queue != (wire.QueueStats{Depth: 3, InFlight: 1, OldestAgeSeconds: 12}) {
		t.Errorf("queue: %+v", hb.Queue)
	}
	if hb.AIProvider != (wire.ProviderHealth{Kind: "anthropic", Status: "ok"}) {
		t.Errorf("ai provider: %+v", hb.AIProvider)
	}
	if hb.Storage != (wire.StorageTotals{ObjectsBucket: "0", BytesBucket: "1-10GB"}) {
		t.Errorf("storage: %+v", hb.Storage)
	}
	if hb.License.State != "valid" {
		t.Errorf("license: %+v", hb.License)
	}
	// The plane recorded the heartbeats against the install.
	status, out := b.plane.Admin(t, "GET", "/v1/admin/installs", nil)
	var installs []struct {
		Health string `json:"health"`
	}
	if err := json.Unmarshal(out, &installs); status != 200 || err != nil || len(installs) != 1 || installs[0].Health != "ok" {
		t.Errorf("plane installs: %d %s", status, out)
	}
}

func TestErrorRateAndDocsvcDown(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.start()
	b.waitHeartbeats(1)
	b.docsvc.set(func(f *fakeDocsvc) { f.requests, f.errors5xx = 100, 25 })
	waitFor(t, "a heartbeat with the 5xx share", func() bool {
		hbs := b.heartbeats()
		return hbs[len(hbs)-1].ErrorRate == 0.25
	})
	// No new requests: the rate over the next interval is zero again.
	waitFor(t, "error rate back to 0", func() bool {
		hbs := b.heartbeats()
		return hbs[len(hbs)-1].ErrorRate == 0
	})

	b.docsvc.set(func(f *fakeDocsvc) { f.down = true })
	waitFor(t, "a heartbeat reporting docsvc down", func() bool {
		hbs := b.heartbeats()
		c := hbs[len(hbs)-1].Components
		return len(c) == 6 && c[0] == (wire.ComponentHealth{Name: "api", Status: "down"})
	})
	hbs := b.heartbeats()
	last := hbs[len(hbs)-1]
	if last.Versions.Docsvc != "1.0.0" || last.AIProvider.Kind != "anthropic" {
		t.Errorf("last known versions and provider should carry over: %+v", last)
	}
	if st := r.Snapshot(); !st.LastHeartbeatOK {
		t.Errorf("docsvc down must not fail the heartbeat: %+v", st)
	}
}

func TestPlaneDownBacksOffAndRecovers(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.start()
	b.waitHeartbeats(1)
	b.gate.setDown(true)
	waitFor(t, "several failed attempts", func() bool { return r.Snapshot().ConsecutiveFails >= 4 })
	st := r.Snapshot()
	if st.PlaneReachable || st.LastHeartbeatOK || !strings.Contains(st.LastHeartbeatError, "503") {
		t.Fatalf("status while the plane is down: %+v", st)
	}
	before := len(b.heartbeats())
	b.gate.setDown(false)
	b.waitHeartbeats(before + 1)
	waitFor(t, "status to recover", func() bool {
		st := r.Snapshot()
		return st.PlaneReachable && st.ConsecutiveFails == 0
	})
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	half := func() float64 { return 0.5 }
	tests := []struct {
		n    int
		want time.Duration
	}{
		{1, 750 * time.Millisecond}, // 1s: 0.5s fixed + 0.5 of 0.5s
		{2, 1500 * time.Millisecond},
		{3, 3 * time.Second},
		{9, 192 * time.Second},
		{30, 225 * time.Second}, // capped at 5m
	}
	for _, tt := range tests {
		if got := backoff(tt.n, time.Second, 5*time.Minute, half); got != tt.want {
			t.Errorf("backoff(%d) = %v, want %v", tt.n, got, tt.want)
		}
	}
	for n := 1; n < 40; n++ {
		if d := backoff(n, time.Second, 5*time.Minute, func() float64 { return 0.999 }); d > 5*time.Minute {
			t.Fatalf("backoff(%d) = %v exceeds the cap", n, d)
		}
	}
}

func TestLicenseStatesReported(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name      string
		expiresIn time.Duration
		grace     int64
		want      string
	}{
		{"valid", 30 * 24 * time.Hour, 86400, "valid"},
		{"grace", -time.Hour, 86400, "grace"},
		{"expired", -48 * time.Hour, 86400, "expired"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			now := time.Now().UTC().Truncate(time.Second)
			b := setup(t, func(o *setupOpts) {
				o.license.IssuedAt = now.Add(-90 * 24 * time.Hour)
				o.license.ExpiresAt = now.Add(tt.expiresIn)
				o.license.GraceSeconds = tt.grace
			})
			r := b.start()
			hb := b.waitHeartbeats(1)[0]
			if hb.License.State != tt.want || !hb.License.ExpiresAt.Equal(now.Add(tt.expiresIn)) {
				t.Fatalf("heartbeat license = %+v, want %s", hb.License, tt.want)
			}
			if st := r.Snapshot(); st.LicenseState != tt.want {
				t.Fatalf("status license = %s", st.LicenseState)
			}
		})
	}
}

func TestBadLicenseSignatureStops(t *testing.T) {
	t.Parallel()
	b := setup(t)
	file, err := os.ReadFile(b.cfg.LicenseFile)
	if err != nil {
		t.Fatal(err)
	}
	tampered := bytes.Replace(file, []byte(`"Test Co"`), []byte(`"Evil Co"`), 1)
	if err := os.WriteFile(b.cfg.LicenseFile, tampered, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(context.Background(), b.cfg, b.opts); !errors.Is(err, ErrBadLicense) || !errors.Is(err, license.ErrBadSignature) {
		t.Fatalf("New = %v, want ErrBadLicense wrapping license.ErrBadSignature", err)
	}

	// A license replaced with a forged one while running stops the agent at
	// the next daily check.
	if err := os.WriteFile(b.cfg.LicenseFile, file, 0o600); err != nil {
		t.Fatal(err)
	}
	b.opts.LicenseEvery = 100 * time.Millisecond
	a, err := New(context.Background(), b.cfg, b.opts)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	done := make(chan error, 1)
	go func() { done <- a.Run(context.Background()) }()
	b.waitHeartbeats(1)
	if err := os.WriteFile(b.cfg.LicenseFile, tampered, 0o600); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, ErrBadLicense) {
			t.Fatalf("Run = %v, want ErrBadLicense", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("agent kept running on a forged license")
	}
}

func TestTelemetryOffSendsNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.start()
	b.waitHeartbeats(2)
	b.clock.Advance(25 * time.Hour) // a day boundary passes
	n := len(b.heartbeats())
	b.waitHeartbeats(n + 3)
	if got := b.received("POST", "/v1/telemetry"); len(got) != 0 {
		t.Fatalf("telemetry off, but the plane received %d telemetry requests", len(got))
	}
	for _, e := range mustRead(t, b.cfg.DataDir+"/egress.ledger") {
		if e.Kind == ledger.KindTelemetry {
			t.Fatal("telemetry off, but the ledger has a telemetry entry")
		}
	}
	if _, err := os.Stat(filepath.Join(b.cfg.DataDir, "telemetry.json")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("telemetry off, but telemetry.json exists: %v", err)
	}
}

func mustRead(t *testing.T, path string) []ledger.Entry {
	t.Helper()
	es, err := ledgerread.Read(path, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	return es
}

func TestTelemetryOnSendsDailyAggregates(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.cfg.Telemetry = true
	b.docsvc.set(func(f *fakeDocsvc) { f.succeeded, f.failed, f.pages = 10, 1, 40 })
	b.start()
	b.waitHeartbeats(2)
	b.docsvc.set(func(f *fakeDocsvc) { f.succeeded, f.failed, f.pages = 15, 3, 67 })
	n := len(b.heartbeats())
	b.waitHeartbeats(n + 2)
	day := b.clock.Now().UTC().Format(time.DateOnly)
	b.clock.Advance(24 * time.Hour)
	waitFor(t, "a telemetry report", func() bool { return len(b.received("POST", "/v1/telemetry")) > 0 })
	n = len(b.heartbeats())
	b.waitHeartbeats(n + 3)
	got := b.received("POST", "/v1/telemetry")
	if len(got) != 1 {
		t.Fatalf("telemetry requests = %d, want exactly 1 per day", len(got))
	}
	tel, err := wire.Decode[wire.Telemetry](got[0].Body)
	if err != nil {
		t.Fatal(err)
	}
	want := wire.Telemetry{Day: day, DocumentsProcessed: 5, DocumentsFailed: 2, Pages: 27, BytesBucket: "1-10GB"}
	if tel != want {
		t.Fatalf("telemetry = %+v, want %+v", tel, want)
	}
	if !inLedger(b.cfg.DataDir+"/egress.ledger", got[0].Body) {
		t.Fatal("telemetry sent but not in the ledger")
	}
}

func TestDiagnosticsApproveThenUpload(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// A log line that should never have been written, holding a fake
	// token, an email address and an AWS key: the bundle must redact it.
	logs := filepath.Join(b.cfg.DataDir, "logs")
	if err := os.MkdirAll(logs, 0o700); err != nil {
		t.Fatal(err)
	}
	seeded := `{"level":"WARN","msg":"oops","token":"tt_FAKE1234567890abcdef","contact":"ops.person@customer.example",` +
		`"aws":"AKIAIOSFODNN7EXAMPLE","auth":"Bearer abc.def.ghi"}` + "\n"
	if err := os.WriteFile(filepath.Join(logs, "agent.log"), []byte(seeded), 0o600); err != nil {
		t.Fatal(err)
	}
	r := b.start()
	b.waitHeartbeats(1)
	install := r.Snapshot().InstallID
	status, out := b.plane.Admin(t, "POST", "/v1/admin/diagnostics", plane.DiagnosticRequestBody{InstallID: install, Reason: "queue stuck since Tuesday"})
	if status != http.StatusCreated {
		t.Fatalf("request diagnostics: %d %s", status, out)
	}
	var d planestore.Diagnostic
	if err := json.Unmarshal(out, &d); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the request to reach the agent", func() bool {
		ds, _ := diagspool.List(b.cfg.DataDir)
		return len(ds) == 1
	})
	ds, err := diagspool.List(b.cfg.DataDir)
	if err != nil || ds[0].ID != d.ID || ds[0].State != diagspool.StatePending || ds[0].Reason != "queue stuck since Tuesday" ||
		ds[0].RequestedBy != "break-glass admin token" || ds[0].RequestedByKind != "break-glass" {
		t.Fatalf("ListDiagnostics = %+v, %v", ds, err)
	}
	if st := r.Snapshot(); st.PendingDiagnostics != 1 {
		t.Errorf("status pending diagnostics = %d", st.PendingDiagnostics)
	}
	files, err := diagreview.Preview(b.cfg.DataDir, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]string{}
	for _, f := range files {
		byName[f.Name] = string(f.Content)
		if f.Size != int64(len(f.Content)) {
			t.Errorf("%s: size %d for %d bytes", f.Name, f.Size, len(f.Content))
		}
	}
	for _, name := range []string{"versions.json", "config.json", "health-history.json", "docsvc.json", "agent-log.txt", "request.json"} {
		if _, ok := byName[name]; !ok {
			t.Errorf("bundle lacks %s (has %v)", name, keys(byName))
		}
	}
	// The request answered travels in the bundle, so the ledger entry of
	// the upload names who asked and why.
	if req := byName["request.json"]; !strings.Contains(req, `"requested_by": "break-glass admin token"`) || !strings.Contains(req, `"reason": `) {
		t.Errorf("request.json in the bundle: %s", req)
	}
	if len(byName) != 6 {
		t.Errorf("bundle has unexpected files: %v", keys(byName))
	}
	log := byName["agent-log.txt"]
	for _, secret := range []string{"tt_FAKE1234567890abcdef", "ops.person@customer.example", "AKIAIOSFODNN7EXAMPLE", "abc.def.ghi"} {
		if strings.Contains(log, secret) {
			t.Errorf("preview log still holds %q", secret)
		}
	}
	if !strings.Contains(log, "[REDACTED-EMAIL]") || !strings.Contains(log, "[REDACTED-AWS-KEY]") || !strings.Contains(log, `"msg":"oops"`) {
		t.Errorf("preview log not redacted as expected:\n%s", log)
	}
	if !strings.Contains(byName["docsvc.json"], `"schema_version": 4`) || !strings.Contains(byName["versions.json"], `"docsvc": "1.0.0"`) {
		t.Errorf("docsvc/versions collectors: %s %s", byName["docsvc.json"], byName["versions.json"])
	}

	// Files that turn up in the bundle directory after the preview (an
	// editor's swap file, a copy an operator made) are not part of it.
	bundleDir := filepath.Join(b.cfg.DataDir, "diagnostics", d.ID, "bundle")
	strays := map[string]string{
		".config.json.swp": `{"token":"tt_STRAYSWAPFILE0123456789"}`,
		"notes.txt":        "customer notes, never collected",
	}
	for name, content := range strays {
		if err := os.WriteFile(filepath.Join(bundleDir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	// Nothing leaves before approval.
	n := len(b.heartbeats())
	b.waitHeartbeats(n + 3)
	if got := b.received("POST", "/v1/diagnostics/"); len(got) != 0 {
		t.Fatalf("bundle uploaded before approval")
	}
	if err := diagreview.Approve(b.cfg.DataDir, d.ID, b.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if err := diagreview.Decline(b.cfg.DataDir, d.ID, b.clock.Now()); !errors.Is(err, diagspool.ErrNotPending) {
		t.Fatalf("decline after approve = %v, want diagspool.ErrNotPending", err)
	}
	waitFor(t, "the upload", func() bool {
		ds, _ := diagspool.List(b.cfg.DataDir)
		return ds[0].State == diagspool.StateUploaded
	})
	status, zipped := b.plane.Admin(t, "GET", "/v1/admin/diagnostics/"+d.ID+"/bundle", nil)
	if status != 200 {
		t.Fatalf("download bundle: %d %s", status, zipped)
	}
	// Exactly the previewed files, byte for byte, and nothing else.
	uploaded := unzipped(t, zipped)
	for name, content := range uploaded {
		if want, ok := byName[name]; !ok {
			t.Errorf("uploaded %s, which the preview did not show", name)
		} else if content != want {
			t.Errorf("uploaded %s differs from its preview", name)
		}
	}
	for name := range byName {
		if _, ok := uploaded[name]; !ok {
			t.Errorf("previewed %s was not uploaded", name)
		}
	}
	for _, content := range strays {
		if bytes.Contains(zipped, []byte(content)) {
			t.Errorf("the stray file %q was sent", content)
		}
	}
	if !inLedger(b.cfg.DataDir+"/egress.ledger", zipped) {
		t.Error("the uploaded bundle is not in the ledger")
	}
}

// unzipped is an uploaded bundle's files by name.
func unzipped(t *testing.T, zipped []byte) map[string]string {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(zipped), int64(len(zipped)))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(rc)
		rc.Close()
		files[f.Name] = string(got)
	}
	return files
}

// requestDiagnostic asks for diagnostics through the plane and waits until
// the agent has recorded the request.
func (b *bundle) requestDiagnostic(r *running, reason string) string {
	b.t.Helper()
	status, out := b.plane.Admin(b.t, "POST", "/v1/admin/diagnostics", plane.DiagnosticRequestBody{InstallID: r.Snapshot().InstallID, Reason: reason})
	if status != http.StatusCreated {
		b.t.Fatalf("request diagnostics: %d %s", status, out)
	}
	var d planestore.Diagnostic
	if err := json.Unmarshal(out, &d); err != nil {
		b.t.Fatal(err)
	}
	waitFor(b.t, "the request to reach the agent", func() bool {
		_, err := diagspool.Read(b.cfg.DataDir, d.ID)
		return err == nil
	})
	return d.ID
}

// A collected file changed after the preview is not sent: the approval was
// for other bytes, so the request goes back to pending.
func TestDiagnosticsChangedBundleIsNotSent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.start()
	b.waitHeartbeats(1)
	id := b.requestDiagnostic(r, "check the config")
	if _, err := diagreview.Preview(b.cfg.DataDir, id); err != nil {
		t.Fatal(err)
	}
	changed := filepath.Join(b.cfg.DataDir, "diagnostics", id, "bundle", "config.json")
	if err := os.WriteFile(changed, []byte(`{"license":"pasted by mistake"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := diagreview.Preview(b.cfg.DataDir, id); !errors.Is(err, diagspool.ErrBundleChanged) || !strings.Contains(err.Error(), "config.json") {
		t.Fatalf("preview of a changed bundle = %v, want diagspool.ErrBundleChanged naming config.json", err)
	}
	if err := diagreview.Approve(b.cfg.DataDir, id, b.clock.Now()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the request to go back to pending", func() bool {
		d, err := diagspool.Read(b.cfg.DataDir, id)
		return err == nil && d.State == diagspool.StatePending
	})
	if got := b.received("POST", "/v1/diagnostics/"); len(got) != 0 {
		t.Fatalf("a changed bundle was uploaded")
	}
	if err := diagreview.Decline(b.cfg.DataDir, id, b.clock.Now()); err != nil {
		t.Fatalf("decline after the refusal: %v", err)
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestDiagnosticsAutoApproveAndDecline(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.cfg.AutoApprove = true
	r := b.start()
	b.waitHeartbeats(1)
	install := r.Snapshot().InstallID
	status, out := b.plane.Admin(t, "POST", "/v1/admin/diagnostics", plane.DiagnosticRequestBody{InstallID: install, Reason: "routine"})
	if status != http.StatusCreated {
		t.Fatalf("%d %s", status, out)
	}
	waitFor(t, "auto-approved upload", func() bool {
		ds, _ := diagspool.List(b.cfg.DataDir)
		return len(ds) == 1 && ds[0].State == diagspool.StateUploaded
	})
	r.stop(t)

	// Without auto-approval a declined request is never sent, across restarts.
	b.cfg.AutoApprove = false
	r = b.start()
	status, out = b.plane.Admin(t, "POST", "/v1/admin/diagnostics", plane.DiagnosticRequestBody{InstallID: install, Reason: "second"})
	if status != http.StatusCreated {
		t.Fatalf("%d %s", status, out)
	}
	var d planestore.Diagnostic
	json.Unmarshal(out, &d)
	waitFor(t, "the second request", func() bool {
		ds, _ := diagspool.List(b.cfg.DataDir)
		return len(ds) == 2
	})
	if err := diagreview.Decline(b.cfg.DataDir, d.ID, b.clock.Now()); err != nil {
		t.Fatal(err)
	}
	r.stop(t)
	b.start()
	n := len(b.heartbeats())
	b.waitHeartbeats(n + 3)
	if got := b.received("POST", "/v1/diagnostics/"); len(got) != 1 {
		for _, g := range got {
			t.Log(g.Path)
		}
		t.Fatalf("uploads = %d, want only the auto-approved one", len(got))
	}
	if err := diagreview.Approve(b.cfg.DataDir, "../../etc", b.clock.Now()); !errors.Is(err, diagspool.ErrUnknownDiagnostic) {
		t.Fatalf("approve with a path = %v", err)
	}
}

// The vendor may not fill the customer's disk by asking: beyond
// maxWaitingDiagnostics unanswered requests, new ones wait on the plane.
func TestDiagnosticsWaitingAreCapped(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.start()
	b.waitHeartbeats(1)
	install := r.Snapshot().InstallID
	for i := 0; i < maxWaitingDiagnostics+3; i++ {
		if status, out := b.plane.Admin(t, "POST", "/v1/admin/diagnostics", plane.DiagnosticRequestBody{InstallID: install, Reason: "ask"}); status != http.StatusCreated {
			t.Fatalf("%d %s", status, out)
		}
	}
	b.waitHeartbeats(len(b.heartbeats()) + 3)
	ds, _ := diagspool.List(b.cfg.DataDir)
	if len(ds) != maxWaitingDiagnostics {
		t.Fatalf("recorded %d requests, want the cap of %d", len(ds), maxWaitingDiagnostics)
	}
	// Declining one makes room for the next.
	if err := diagreview.Decline(b.cfg.DataDir, ds[0].ID, b.clock.Now()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "one more request to be taken", func() bool {
		ds, _ := diagspool.List(b.cfg.DataDir)
		return len(ds) == maxWaitingDiagnostics+1
	})
}

func TestUpdaterSeesPublishedRelease(t *testing.T) {
	t.Parallel()
	b := setup(t)
	image := map[string]string{"api": "registry.example/docsvc@sha256:" + strings.Repeat("ab", 32)}
	// 1.1.0 upgrades only from docsvc 1.0.0 on, so the first check must
	// use the version the first scrape reported, not the agent's own.
	b.plane.Publish(t, publish.PublishOptions{Version: "1.1.0", Channel: "stable", MinFrom: "1.0.0", Images: image})
	// docsvc is not up yet when the agent starts: the check waits for it
	// (for up to ten rounds, two seconds at this interval).
	b.cfg.Heartbeat = 200 * time.Millisecond
	b.docsvc.set(func(f *fakeDocsvc) { f.down = true })
	r := b.start()
	b.waitHeartbeats(1)
	b.docsvc.set(func(f *fakeDocsvc) { f.down = false })
	waitFor(t, "the first release check", func() bool { return !r.Snapshot().ReleaseCheckedAt.IsZero() })
	if st := r.Snapshot(); st.AvailableRelease != "1.1.0" || st.ReleaseCheckError != "" {
		t.Fatalf("first check: available %q, error %q; want 1.1.0", st.AvailableRelease, st.ReleaseCheckError)
	}
	r.stop(t)

	// A release published while the agent runs is seen at the next refresh.
	b.opts.UpdateEvery = 100 * time.Millisecond
	r = b.start()
	b.plane.Publish(t, publish.PublishOptions{Version: "1.2.0", Channel: "stable", MinFrom: "1.0.0", Images: image})
	waitFor(t, "the new release to be seen", func() bool { return r.Snapshot().AvailableRelease == "1.2.0" })
	var checks int
	for _, e := range mustRead(t, b.cfg.DataDir+"/egress.ledger") {
		if e.Kind == ledger.KindReleaseCheck {
			checks++
			if !strings.HasPrefix(e.Destination, "GET "+b.cfg.PlaneURL+"/v1/tuf/stable/") || e.Payload != nil || e.PayloadBase64 != "" {
				t.Errorf("release-check entry: %+v", e)
			}
		}
	}
	if checks == 0 {
		t.Fatal("no release-check entries in the ledger")
	}
	for _, req := range b.received("GET", "/v1/tuf/") {
		if req.Header.Get("Tether-Signature") == "" {
			t.Fatalf("unsigned TUF request %s", req.Path)
		}
	}
}

// withIdentitySecret gives the agent an empty identity secret on the
// emulator, as the data stack creates it.
func (b *bundle) withIdentitySecret() (*awstest.Server, string) {
	b.t.Helper()
	emu := awstest.Start(b.t)
	arn := emu.CreateSecret(b.t, "tether/test/agent-identity", "")
	cfg := emu.AWSConfig()
	b.cfg.IdentitySecret, b.opts.AWSConfig = arn, &cfg
	return emu, arn
}

func TestIdentityInSecretsManager(t *testing.T) {
	t.Parallel()
	b := setup(t)
	aws, arn := b.withIdentitySecret()
	r := b.start()
	b.waitHeartbeats(1)
	r.stop(t)
	stored, ok := aws.SecretValue(t, arn)
	if !ok || stored == "" {
		t.Fatal("identity key was not stored in the secret")
	}
	if _, err := os.Stat(filepath.Join(b.cfg.DataDir, "identity.key")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("identity.key written despite --identity-secret: %v", err)
	}
	n := len(b.heartbeats())
	b.start()
	b.waitHeartbeats(n + 1)
	if got := len(b.received("POST", "/v1/activate")); got != 1 {
		t.Fatalf("activations = %d, want 1 (key read back from the secret)", got)
	}
	if v, _ := aws.SecretValue(t, arn); v != stored {
		t.Fatal("the key in the secret changed on restart")
	}
}

// In ECS the license, its public key and the TUF root arrive as values (from
// Secrets Manager and SSM), not files; the agent takes either.
func TestLicenseKeyAndRootAsValues(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, p := range []*string{&b.cfg.LicenseFile, &b.cfg.LicensePublicKey, &b.cfg.TrustedRoot} {
		data, err := os.ReadFile(*p)
		if err != nil {
			t.Fatal(err)
		}
		*p = string(data)
	}
	r := b.start()
	b.waitHeartbeats(1)
	if st := r.Snapshot(); st.InstallID == "" || st.LicenseState != "valid" {
		t.Fatalf("status %+v", st)
	}

	env := map[string]string{"TETHER_LICENSE": b.cfg.LicenseFile, "TETHER_DATA_DIR": t.TempDir(),
		"TETHER_PLANE_URL": "https://plane.example.com", "TETHER_LICENSE_PUBLIC_KEY": b.cfg.LicensePublicKey,
		"TETHER_TRUSTED_ROOT": b.cfg.TrustedRoot}
	c, err := ParseConfig([]string{}, func(k string) string { return env[k] })
	if err != nil || c.LicenseFile != b.cfg.LicenseFile {
		t.Fatalf("TETHER_LICENSE was not taken: %v", err)
	}
}
