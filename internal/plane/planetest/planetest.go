// Package planetest runs a real vendor plane in-process for other packages'
// tests: the agent's, tetherctl's and the end-to-end suite's. It is the
// plane's own server code on a loopback listener with SQLite, fresh keys and
// an empty release repository, not an imitation of it.
package planetest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tetherhq/tether/docs/api/apitest"
	"github.com/tetherhq/tether/internal/license"
	"github.com/tetherhq/tether/internal/license/issuer"
	"github.com/tetherhq/tether/internal/plane"
	"github.com/tetherhq/tether/internal/plane/planestore"
	"github.com/tetherhq/tether/internal/release"
	"github.com/tetherhq/tether/internal/release/publish"
	"github.com/tetherhq/tether/internal/sqldb"
)

// Plane is a running test plane.
type Plane struct {
	URL        string             // base URL, e.g. http://127.0.0.1:41234
	AdminToken string             // Bearer token for /v1/admin and the dashboard
	LicenseKey ed25519.PrivateKey // signs licenses; LicensePublicKey verifies them
	KeysDir    string             // publish.InitKeys output (root.json, online keys, license key)
	RepoDir    string             // per-channel TUF repositories the plane serves
	DataDir    string             // admin-token, bundles/, plane.db
	RootJSON   []byte             // the initial trusted root agents ship with
	Server     *plane.Server
	Store      *planestore.Store
	// Received records every request body the plane answered, for
	// data-boundary scans (the canary test).
	Received *Recorder

	now func() time.Time
}

// LicensePublicKey is the public half of LicenseKey.
func (p *Plane) LicensePublicKey() ed25519.PublicKey {
	return p.LicenseKey.Public().(ed25519.PublicKey)
}

// Options tune Start.
type Options struct {
	// Now is the plane's clock; default time.Now.
	Now func() time.Time
	// HeartbeatInterval told to agents; default 1s so tests run quickly.
	HeartbeatInterval time.Duration
	// AlertWebhook receives alerts.
	AlertWebhook string
	// DatabaseURL overrides the SQLite file in DataDir (e.g. a PostgreSQL
	// schema from sqldbtest).
	DatabaseURL string
	// SweepEvery is how often stale installs are flagged and alerts sent;
	// default 200ms. Negative disables the background loop (call Sweep).
	SweepEvery time.Duration
}

// Start runs a plane until the test ends.
func Start(t testing.TB) *Plane { return StartWith(t, Options{}) }

// StartWith runs a plane with options until the test ends.
func StartWith(t testing.TB, o Options) *Plane {
	t.Helper()
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.HeartbeatInterval == 0 {
		o.HeartbeatInterval = time.Second
	}
	if o.SweepEvery == 0 {
		o.SweepEvery = 200 * time.Millisecond
	}
	dir := t.TempDir()
	p := &Plane{KeysDir: filepath.Join(dir, "keys"), RepoDir: filepath.Join(dir, "repo"),
		DataDir: filepath.Join(dir, "data"), Received: &Recorder{}, now: o.Now}
	res, err := publish.InitKeys(p.KeysDir, publish.KeyOptions{RootKeys: 1, RootThreshold: 1}, o.Now())
	if err != nil {
		t.Fatalf("planetest: init keys: %v", err)
	}
	if p.RootJSON, err = os.ReadFile(res.RootPath); err != nil {
		t.Fatalf("planetest: %v", err)
	}
	if p.LicenseKey, err = publish.LoadLicenseKey(p.KeysDir); err != nil {
		t.Fatalf("planetest: %v", err)
	}
	if err := os.MkdirAll(p.RepoDir, 0o755); err != nil {
		t.Fatalf("planetest: %v", err)
	}
	if p.AdminToken, _, err = plane.LoadOrCreateAdminToken(p.DataDir); err != nil {
		t.Fatalf("planetest: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	dbURL := o.DatabaseURL
	if dbURL == "" {
		dbURL = "sqlite://" + filepath.Join(p.DataDir, "plane.db")
	}
	db, err := sqldb.Open(ctx, dbURL)
	if err != nil {
		cancel()
		t.Fatalf("planetest: %v", err)
	}
	if p.Store, err = planestore.Open(ctx, db, o.Now); err != nil {
		cancel()
		db.Close()
		t.Fatalf("planetest: %v", err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	p.Server, err = plane.New(plane.Config{Store: p.Store, Logger: log, Now: o.Now, DataDir: p.DataDir,
		RepoDir: p.RepoDir, AdminToken: p.AdminToken, LicenseKey: p.LicensePublicKey(),
		HeartbeatInterval: o.HeartbeatInterval, AlertWebhook: o.AlertWebhook})
	if err != nil {
		cancel()
		db.Close()
		t.Fatalf("planetest: %v", err)
	}
	hs := httptest.NewServer(p.Received.wrap(p.Server.Handler()))
	p.URL = hs.URL
	var wg sync.WaitGroup
	if o.SweepEvery > 0 {
		wg.Add(1)
		go func() { defer wg.Done(); _ = p.Server.Run(ctx, o.SweepEvery) }()
	}
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		hs.Close()
		db.Close()
	})
	return p
}

// Sweep flags stale installs and delivers due alerts now.
func (p *Plane) Sweep(ctx context.Context) { p.Server.Sweep(ctx) }

// IssueLicense signs l (IssuedAt defaults to now, ExpiresAt to a year on,
// Channels to stable), registers it with the plane through the admin API,
// and returns the license file (with its activation token, as a customer
// receives it) and the token.
func (p *Plane) IssueLicense(t testing.TB, l license.License) (file []byte, token string) {
	t.Helper()
	if l.IssuedAt.IsZero() {
		l.IssuedAt = p.now()
	}
	if l.ExpiresAt.IsZero() {
		l.ExpiresAt = l.IssuedAt.Add(365 * 24 * time.Hour)
	}
	if len(l.Channels) == 0 {
		l.Channels = []string{"stable"}
	}
	file, token, err := issuer.Issue(p.LicenseKey, l)
	if err != nil {
		t.Fatalf("planetest: issue license: %v", err)
	}
	body, err := plane.RegistrationBody(file)
	if err != nil {
		t.Fatalf("planetest: %v", err)
	}
	if status, out := p.Admin(t, "POST", "/v1/admin/licenses", body); status != http.StatusCreated {
		t.Fatalf("planetest: register license: %d %s", status, out)
	}
	return file, token
}

// Publish publishes a release to the plane's repository.
func (p *Plane) Publish(t testing.TB, o publish.PublishOptions) release.Manifest {
	t.Helper()
	m, err := publish.Publish(context.Background(), p.RepoDir, p.KeysDir, o, p.now())
	if err != nil {
		t.Fatalf("planetest: publish %s: %v", o.Version, err)
	}
	return m
}

// Admin calls the admin API with the admin token and returns the status and
// body. body is JSON-encoded unless it is nil.
func (p *Plane) Admin(t testing.TB, method, path string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			t.Fatalf("planetest: %v", err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, p.URL+path, rd)
	if err != nil {
		t.Fatalf("planetest: %v", err)
	}
	req.Header.Set("Authorization", "Bearer "+p.AdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("planetest: %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	// Whatever test calls the admin API, the answer must be one its
	// document (docs/api/plane-admin.openapi.json) describes.
	apitest.PlaneAdmin().Check(t, req, resp, out)
	return resp.StatusCode, out
}

// Recorder keeps a copy of every request (method, path, headers and body)
// the plane received.
type Recorder struct {
	mu   sync.Mutex
	reqs []Request
}

// Request is one recorded request.
type Request struct {
	Method, Path string
	Header       http.Header
	Body         []byte
}

// Requests returns what was received so far.
func (r *Recorder) Requests() []Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Request(nil), r.reqs...)
}

func (r *Recorder) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(io.LimitReader(req.Body, 64<<20))
		if err != nil {
			http.Error(w, "read body", http.StatusBadRequest)
			return
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		r.mu.Lock()
		r.reqs = append(r.reqs, Request{Method: req.Method, Path: req.URL.RequestURI(), Header: req.Header.Clone(), Body: body})
		r.mu.Unlock()
		h.ServeHTTP(w, req)
	})
}
