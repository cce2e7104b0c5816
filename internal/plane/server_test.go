package plane_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tetherhq/tether/docs/api/apitest"
	"github.com/tetherhq/tether/internal/plane"
	"github.com/tetherhq/tether/internal/plane/planestore"
	"github.com/tetherhq/tether/internal/release/publish"
	"github.com/tetherhq/tether/internal/reqsign"
	"github.com/tetherhq/tether/internal/sqldb/sqldbtest"
	"github.com/tetherhq/tether/internal/wire"
)

const adminToken = "test-admin-token-0123456789abcdefghijkl"

type bundle struct {
	ctx     context.Context
	clock   *clock
	store   *planestore.Store
	server  *plane.Server
	http    *httptest.Server
	dataDir string
	repoDir string
	keysDir string
}

type setupOpts struct {
	webhook    string
	refresh    time.Duration     // the fleet page's refresh interval
	licenseKey ed25519.PublicKey // verifies licenses registered through the plane
	// oidc, given the plane's URL, configures staff sign-in.
	oidc func(planeURL string) *plane.OIDCConfig
	// noAdminToken turns the break-glass token off.
	noAdminToken bool
}

func setup(t *testing.T, opts ...func(*setupOpts)) *bundle {
	t.Helper()
	var o setupOpts
	for _, f := range opts {
		f(&o)
	}
	c := newClock()
	ctx := context.Background()
	st, err := planestore.Open(ctx, sqldbtest.EmptySQLite(t), c.Now)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	b := &bundle{ctx: ctx, clock: c, store: st, dataDir: filepath.Join(dir, "data"),
		repoDir: filepath.Join(dir, "repo"), keysDir: filepath.Join(dir, "keys")}
	// The listener comes first: a sign-in's redirect URL names it.
	b.http = httptest.NewUnstartedServer(nil)
	cfg := plane.Config{
		Store: st, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: c.Now,
		DataDir: b.dataDir, RepoDir: b.repoDir, AdminToken: adminToken, AlertWebhook: o.webhook,
		DashboardRefresh: o.refresh, LicenseKey: o.licenseKey,
	}
	if o.oidc != nil {
		cfg.OIDC = o.oidc("http://" + b.http.Listener.Addr().String())
	}
	if o.noAdminToken {
		cfg.AdminToken, cfg.NoAdminToken = "", true
	}
	srv, err := plane.New(cfg)
	if err != nil {
		b.http.Close()
		t.Fatal(err)
	}
	srv.UseTestSessions()
	b.server = srv
	b.http.Config.Handler = srv.Handler()
	b.http.Start()
	t.Cleanup(b.http.Close)
	return b
}

// license registers a license directly in the store and returns its token.
func (b *bundle) license(t *testing.T, id string, channels ...string) string {
	t.Helper()
	token := "tok_" + strings.Repeat(id, 3) + "_0123456789"
	sum := sha256.Sum256([]byte(token))
	err := b.store.AddLicense(b.ctx, planestore.LicenseRecord{ID: id, Customer: "Customer " + id,
		IssuedAt: b.clock.Now(), ExpiresAt: b.clock.Now().Add(90 * 24 * time.Hour), GraceSeconds: 14 * 86400,
		Channels: channels, TokenHash: hex.EncodeToString(sum[:])})
	if err != nil {
		t.Fatal(err)
	}
	return token
}

type agent struct {
	b   *bundle
	id  string
	key ed25519.PrivateKey
}

func (b *bundle) call(t *testing.T, method, path string, body []byte, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, b.http.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	// The admin API's answers are ones its document describes (the agent
	// API's are checked by wire's strict decoders).
	if apitest.InAdminScope(path) {
		apitest.PlaneAdmin().Check(t, req, resp, out)
	}
	return resp, out
}

func (b *bundle) activate(t *testing.T, token string) *agent {
	t.Helper()
	pub, priv, _ := ed25519.GenerateKey(nil)
	body, _ := json.Marshal(wire.ActivationRequest{ActivationToken: token,
		PublicKey: base64.RawURLEncoding.EncodeToString(pub), AgentVersion: "1.3.0"})
	resp, out := b.call(t, "POST", "/v1/activate", body, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("activate: %d %s", resp.StatusCode, out)
	}
	ar, err := wire.Decode[wire.ActivationResponse](out)
	if err != nil {
		t.Fatalf("activation response: %v (%s)", err, out)
	}
	return &agent{b: b, id: ar.InstallID, key: priv}
}

// signedReq builds a request signed as the agent at the bundle's clock.
func (a *agent) signedReq(t *testing.T, method, path string, body []byte) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, a.b.http.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if err := reqsign.Sign(req, body, a.id, a.key, a.b.clock.Now()); err != nil {
		t.Fatal(err)
	}
	return req
}

func send(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp, out
}

func (a *agent) do(t *testing.T, method, path string, body []byte) (*http.Response, []byte) {
	t.Helper()
	return send(t, a.signedReq(t, method, path, body))
}

func heartbeatJSON(t *testing.T, now time.Time, health string) []byte {
	t.Helper()
	return heartbeatWithHead(t, now, health, wire.LedgerHead{})
}

// heartbeatWithHead is heartbeatJSON carrying a ledger head (none when zero,
// as from an agent before ledger heads).
func heartbeatWithHead(t *testing.T, now time.Time, health string, head wire.LedgerHead) []byte {
	t.Helper()
	hb := wire.Heartbeat{
		LedgerHead: head,
		SentAt:     now,
		Versions:   wire.Versions{Docsvc: "1.4.0", Agent: "1.4.0", Schema: 3},
		Channel:    "stable",
		Components: []wire.ComponentHealth{
			{Name: "api", Status: "ok"}, {Name: "worker", Status: health}, {Name: "database", Status: "ok"},
		},
		Queue:      wire.QueueStats{Depth: 4, DeadLetter: 1},
		ErrorRate:  0.01,
		AIProvider: wire.ProviderHealth{Kind: "local", Status: "ok"},
		License:    wire.LicenseStatus{State: "valid", ExpiresAt: now.Add(30 * 24 * time.Hour)},
		Storage:    wire.StorageTotals{ObjectsBucket: "1-99", BytesBucket: "<1GB"},
	}
	out, err := json.Marshal(hb)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wire.Decode[wire.Heartbeat](out); err != nil {
		t.Fatalf("test heartbeat is invalid: %v", err)
	}
	return out
}

func (a *agent) heartbeat(t *testing.T, health string) wire.HeartbeatResponse {
	t.Helper()
	resp, out := a.do(t, "POST", "/v1/heartbeat", heartbeatJSON(t, a.b.clock.Now(), health))
	if resp.StatusCode != 200 {
		t.Fatalf("heartbeat: %d %s", resp.StatusCode, out)
	}
	hr, err := wire.Decode[wire.HeartbeatResponse](out)
	if err != nil {
		t.Fatal(err)
	}
	return hr
}

func (b *bundle) admin(t *testing.T, method, path string, body any) (*http.Response, []byte) {
	t.Helper()
	var raw []byte
	if body != nil {
		raw, _ = json.Marshal(body)
	}
	return b.call(t, method, path, raw, map[string]string{"Authorization": "Bearer " + adminToken})
}

func errorCode(out []byte) string {
	var e struct{ Error string }
	_ = json.Unmarshal(out, &e)
	return e.Error
}

func TestActivation(t *testing.T) {
	b := setup(t)
	token := b.license(t, "lic_a", "stable")
	a := b.activate(t, token)
	if !wire.ValidID(a.id) {
		t.Fatalf("install ID %q", a.id)
	}
	pub, _, _ := ed25519.GenerateKey(nil)
	req := func(tok string) []byte {
		body, _ := json.Marshal(wire.ActivationRequest{ActivationToken: tok,
			PublicKey: base64.RawURLEncoding.EncodeToString(pub), AgentVersion: "1.3.0"})
		return body
	}
	tests := []struct {
		name string
		body []byte
		want int
	}{
		{"token used twice", req(token), http.StatusConflict},
		{"unknown token", req("tok_never_issued_0123456789"), http.StatusUnauthorized},
		{"unknown field", []byte(`{"activation_token":"x","extra":1}`), http.StatusBadRequest},
		{"not json", []byte(`nope`), http.StatusBadRequest},
		{"too large", bytes.Repeat([]byte("a"), 70<<10), http.StatusRequestEntityTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, out := b.call(t, "POST", "/v1/activate", tt.body, nil)
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, out, tt.want)
			}
		})
	}
}

func TestSignedRequestsAreRequired(t *testing.T) {
	b := setup(t)
	a := b.activate(t, b.license(t, "lic_a", "stable"))
	other := b.activate(t, b.license(t, "lic_b", "stable"))
	if hr := a.heartbeat(t, "ok"); hr.NextIntervalSeconds != 60 || hr.PendingDiagnostics != 0 {
		t.Fatalf("heartbeat response %+v", hr)
	}
	body := heartbeatJSON(t, b.clock.Now(), "ok")

	replayed := a.signedReq(t, "POST", "/v1/heartbeat", body)
	if resp, out := send(t, replayed.Clone(context.Background())); resp.StatusCode != 200 {
		t.Fatalf("first send: %d %s", resp.StatusCode, out)
	}
	replayed.Body = io.NopCloser(bytes.NewReader(body))

	crossSigned := a.signedReq(t, "POST", "/v1/heartbeat", body)
	// a's signature, other's ID: the plane must check against other's key
	crossSigned.Header.Set(reqsign.HeaderInstall, other.id)

	tampered := a.signedReq(t, "POST", "/v1/heartbeat", body)
	tampered.Body = io.NopCloser(bytes.NewReader(heartbeatJSON(t, b.clock.Now(), "down")))
	tampered.ContentLength = -1

	unsigned, _ := http.NewRequest("POST", b.http.URL+"/v1/heartbeat", bytes.NewReader(body))

	b.clock.Advance(-10 * time.Minute)
	stale := a.signedReq(t, "POST", "/v1/heartbeat", body)
	b.clock.Advance(10 * time.Minute)

	ghost := &agent{b: b, id: "in_ghost", key: a.key}
	unknown := ghost.signedReq(t, "POST", "/v1/heartbeat", body)

	tests := []struct {
		name string
		req  *http.Request
		code string
	}{
		{"replayed", replayed, "replayed"},
		{"signed by another install", crossSigned, "bad_signature"},
		{"body changed after signing", tampered, "bad_signature"},
		{"unsigned", unsigned, "unsigned"},
		{"stale", stale, "stale"},
		{"unknown install", unknown, "unknown_install"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, out := send(t, tt.req)
			if resp.StatusCode != http.StatusUnauthorized || errorCode(out) != tt.code {
				t.Fatalf("status %d %s, want 401 %s", resp.StatusCode, out, tt.code)
			}
		})
	}

	// Revocation takes effect on the next request.
	if resp, out := b.admin(t, "POST", "/v1/admin/installs/"+a.id+"/revoke", nil); resp.StatusCode != 200 {
		t.Fatalf("revoke: %d %s", resp.StatusCode, out)
	}
	if resp, out := a.do(t, "POST", "/v1/heartbeat", body); resp.StatusCode != 401 || errorCode(out) != "revoked" {
		t.Fatalf("revoked install: %d %s", resp.StatusCode, out)
	}
	if hr := other.heartbeat(t, "ok"); hr.NextIntervalSeconds != 60 {
		t.Fatal("other install affected by revoke")
	}
}

func TestHeartbeatIsStrictlyDecodedAndStored(t *testing.T) {
	b := setup(t)
	a := b.activate(t, b.license(t, "lic_a", "stable"))
	good := heartbeatJSON(t, b.clock.Now(), "degraded")
	var m map[string]any
	_ = json.Unmarshal(good, &m)
	m["filename"] = "secret-plans.pdf"
	smuggled, _ := json.Marshal(m)
	m = nil
	_ = json.Unmarshal(good, &m)
	m["channel"] = "Not A Channel"
	badEnum, _ := json.Marshal(m)

	for name, body := range map[string][]byte{"unknown field": smuggled, "invalid value": badEnum, "empty": nil} {
		resp, out := a.do(t, "POST", "/v1/heartbeat", body)
		if resp.StatusCode != 400 {
			t.Fatalf("%s: status %d %s, want 400", name, resp.StatusCode, out)
		}
		if bytes.Contains(out, []byte("secret-plans")) || bytes.Contains(out, []byte("Not A Channel")) {
			t.Fatalf("%s: error echoes the payload: %s", name, out)
		}
	}
	a.heartbeat(t, "degraded")
	resp, out := b.admin(t, "GET", "/v1/admin/installs/"+a.id, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("install detail: %d %s", resp.StatusCode, out)
	}
	var d plane.InstallDetail
	if err := json.Unmarshal(out, &d); err != nil {
		t.Fatal(err)
	}
	if d.Install.Health != "degraded" || d.Install.Version != "1.4.0" || d.Install.Channel != "stable" ||
		d.Install.LicenseState != "valid" || len(d.History) != 1 || d.Install.Customer != "Customer lic_a" {
		t.Fatalf("detail = %+v", d)
	}
	if _, err := wire.Decode[wire.Heartbeat](d.History[0].Body); err != nil {
		t.Fatalf("stored heartbeat does not decode strictly: %v", err)
	}
}

func TestTelemetry(t *testing.T) {
	b := setup(t)
	a := b.activate(t, b.license(t, "lic_a", "stable"))
	body, _ := json.Marshal(wire.Telemetry{Day: "2026-11-01", DocumentsProcessed: 12, Pages: 40, BytesBucket: "<1GB"})
	if resp, out := a.do(t, "POST", "/v1/telemetry", body); resp.StatusCode != 204 {
		t.Fatalf("telemetry: %d %s", resp.StatusCode, out)
	}
	if resp, _ := a.do(t, "POST", "/v1/telemetry", []byte(`{"day":"2026-11-01","documents_processed":-1,"documents_failed":0,"pages":0,"bytes_bucket":"<1GB"}`)); resp.StatusCode != 400 {
		t.Fatalf("negative count accepted: %d", resp.StatusCode)
	}
	days, err := b.store.Telemetry(b.ctx, a.id)
	if err != nil || len(days) != 1 || !strings.Contains(string(days[0].Body), `"documents_processed":12`) {
		t.Fatalf("telemetry stored = %+v, %v", days, err)
	}
}

func zipBundle(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, content := range files {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = w.Write([]byte(content))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestDiagnosticsRoundTrip(t *testing.T) {
	b := setup(t)
	a := b.activate(t, b.license(t, "lic_a", "stable"))
	other := b.activate(t, b.license(t, "lic_b", "stable"))

	for _, bad := range []plane.DiagnosticRequestBody{
		{InstallID: a.id, Reason: ""},
		{InstallID: a.id, Reason: "two\nlines"},
		{InstallID: "../etc", Reason: "x"},
	} {
		if resp, out := b.admin(t, "POST", "/v1/admin/diagnostics", bad); resp.StatusCode != 400 {
			t.Fatalf("bad request %+v: %d %s", bad, resp.StatusCode, out)
		}
	}
	if resp, _ := b.admin(t, "POST", "/v1/admin/diagnostics", plane.DiagnosticRequestBody{InstallID: "in_nobody", Reason: "x"}); resp.StatusCode != 404 {
		t.Fatalf("request for unknown install: %d", resp.StatusCode)
	}
	resp, out := b.admin(t, "POST", "/v1/admin/diagnostics", plane.DiagnosticRequestBody{InstallID: a.id, Reason: "queue age rising since 1.4.0"})
	if resp.StatusCode != 201 {
		t.Fatalf("request: %d %s", resp.StatusCode, out)
	}
	var d planestore.Diagnostic
	_ = json.Unmarshal(out, &d)

	if hr := a.heartbeat(t, "ok"); hr.PendingDiagnostics != 1 {
		t.Fatalf("heartbeat pending = %d, want 1", hr.PendingDiagnostics)
	}
	// An agent from before requesters does not ask for them and is not
	// sent fields it would refuse.
	if _, out := a.do(t, "GET", "/v1/diagnostics", nil); bytes.Contains(out, []byte("requested_by")) {
		t.Fatalf("an agent that did not ask is told the requester: %s", out)
	}
	resp, out = a.do(t, "GET", "/v1/diagnostics?with=requested_by", nil)
	reqs, err := wire.Decode[wire.DiagnosticRequests](out)
	if resp.StatusCode != 200 || err != nil || len(reqs) != 1 || reqs[0].ID != d.ID || reqs[0].Reason != "queue age rising since 1.4.0" ||
		reqs[0].RequestedBy != "break-glass admin token" || reqs[0].RequestedByKind != planestore.KindBreakGlass {
		t.Fatalf("agent diagnostics: %d %s %v", resp.StatusCode, out, err)
	}
	if _, out := other.do(t, "GET", "/v1/diagnostics", nil); string(bytes.TrimSpace(out)) != "[]" {
		t.Fatalf("other install sees %s", out)
	}

	bundleZip := zipBundle(t, map[string]string{"health.json": `{"ok":true}`, "logs/agent.log": "started"})
	if resp, out := other.do(t, "POST", "/v1/diagnostics/"+d.ID+"/bundle", bundleZip); resp.StatusCode != 404 {
		t.Fatalf("upload by another install: %d %s", resp.StatusCode, out)
	}
	if resp, out := a.do(t, "POST", "/v1/diagnostics/"+d.ID+"/bundle", []byte("not a zip")); resp.StatusCode != 400 {
		t.Fatalf("non-zip upload: %d %s", resp.StatusCode, out)
	}
	if resp, out := b.admin(t, "GET", "/v1/admin/diagnostics/"+d.ID+"/bundle", nil); resp.StatusCode != 409 {
		t.Fatalf("download before upload: %d %s", resp.StatusCode, out)
	}
	if resp, out := a.do(t, "POST", "/v1/diagnostics/"+d.ID+"/bundle", bundleZip); resp.StatusCode != 204 {
		t.Fatalf("upload: %d %s", resp.StatusCode, out)
	}
	if resp, _ := a.do(t, "POST", "/v1/diagnostics/"+d.ID+"/bundle", bundleZip); resp.StatusCode != 409 {
		t.Fatalf("second upload: %d", resp.StatusCode)
	}
	resp, out = b.admin(t, "GET", "/v1/admin/diagnostics/"+d.ID+"/bundle", nil)
	if resp.StatusCode != 200 || !bytes.Equal(out, bundleZip) {
		t.Fatalf("download: %d, %d bytes (want %d)", resp.StatusCode, len(out), len(bundleZip))
	}
	sum := sha256.Sum256(bundleZip)
	if resp.Header.Get("Tether-Bundle-Sha256") != hex.EncodeToString(sum[:]) {
		t.Fatal("bundle hash header wrong")
	}
	stored, _ := filepath.Glob(filepath.Join(b.dataDir, "bundles", d.ID+"-"+hex.EncodeToString(sum[:8])+"-*.zip"))
	if len(stored) != 1 {
		t.Fatalf("bundle files %v, want one", stored)
	}
	fi, err := os.Stat(stored[0])
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("bundle file: %v %v", fi, err)
	}
	resp, out = b.admin(t, "GET", "/v1/admin/diagnostics?status=uploaded", nil)
	var ds []planestore.Diagnostic
	_ = json.Unmarshal(out, &ds)
	if resp.StatusCode != 200 || len(ds) != 1 || ds[0].BundleSize != int64(len(bundleZip)) {
		t.Fatalf("list: %d %s", resp.StatusCode, out)
	}
}

func TestBundleSizeCap(t *testing.T) {
	b := setup(t)
	a := b.activate(t, b.license(t, "lic_a", "stable"))
	d, err := b.store.RequestDiagnostic(b.ctx, planestore.NewDiagnosticID(), a.id, "x", staffAna)
	if err != nil {
		t.Fatal(err)
	}
	huge := make([]byte, plane.DefaultMaxBundleBytes+1)
	if resp, out := a.do(t, "POST", "/v1/diagnostics/"+d.ID+"/bundle", huge); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized bundle: %d %s", resp.StatusCode, out)
	}
}

func TestTUFServingHonoursLicenseChannels(t *testing.T) {
	b := setup(t)
	if _, err := publish.InitKeys(b.keysDir, publish.KeyOptions{RootKeys: 1, RootThreshold: 1}, b.clock.Now()); err != nil {
		t.Fatal(err)
	}
	for _, ch := range []string{"stable", "beta"} {
		if _, err := publish.Publish(b.ctx, b.repoDir, b.keysDir, publish.PublishOptions{Version: "1.4.0", Channel: ch,
			Images:  map[string]string{"api": "registry.example.com/docsvc@sha256:" + strings.Repeat("a", 64)},
			MinFrom: "1.3.0", SchemaMin: 1, SchemaMax: 3, Notes: "n"}, b.clock.Now()); err != nil {
			t.Fatal(err)
		}
	}
	a := b.activate(t, b.license(t, "lic_a", "stable"))
	tests := []struct {
		path string
		want int
	}{
		{"/v1/tuf/stable/metadata/timestamp.json", 200},
		{"/v1/tuf/stable/metadata/1.root.json", 200},
		{"/v1/tuf/beta/metadata/timestamp.json", 403},
		{"/v1/tuf/stable/metadata/..%2F..%2Fkeys", 400},
		{"/v1/tuf/stable/targets/.lock", 400},
		{"/v1/tuf/stable/metadata/nope.json", 404},
		{"/v1/tuf/Bad/metadata/timestamp.json", 400},
		{"/v1/tuf/stable/targets/a/../../../b", 404}, // ServeMux cleans the path first
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp, out := a.do(t, "GET", tt.path, nil)
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d %s, want %d", resp.StatusCode, out, tt.want)
			}
			if tt.want == 200 {
				var v map[string]any
				if err := json.Unmarshal(out, &v); err != nil || v["signed"] == nil {
					t.Fatalf("not TUF metadata: %s", out)
				}
			}
		})
	}
	// the admin view lists both channels
	resp, out := b.admin(t, "GET", "/v1/admin/releases", nil)
	var rs []plane.ChannelReleases
	_ = json.Unmarshal(out, &rs)
	if resp.StatusCode != 200 || len(rs) != 2 || rs[0].Releases[0].Version != "1.4.0" {
		t.Fatalf("releases: %d %s", resp.StatusCode, out)
	}
}

func TestAdminAuth(t *testing.T) {
	b := setup(t)
	for _, hdr := range []map[string]string{nil, {"Authorization": "Bearer wrong"}, {"Authorization": adminToken}} {
		if resp, _ := b.call(t, "GET", "/v1/admin/installs", nil, hdr); resp.StatusCode != 401 {
			t.Fatalf("headers %v: status %d, want 401", hdr, resp.StatusCode)
		}
	}
	resp, out := b.admin(t, "GET", "/v1/admin/installs", nil)
	if resp.StatusCode != 200 || string(bytes.TrimSpace(out)) != "[]" {
		t.Fatalf("empty installs: %d %s", resp.StatusCode, out)
	}
	if resp, _ := b.admin(t, "POST", "/v1/admin/installs/in_nobody/revoke", nil); resp.StatusCode != 404 {
		t.Fatalf("revoke unknown: %d", resp.StatusCode)
	}
}

func TestAdminTokenFile(t *testing.T) {
	dir := t.TempDir()
	tok, created, err := plane.LoadOrCreateAdminToken(dir)
	if err != nil || !created || len(tok) < 32 {
		t.Fatalf("create: %q %v %v", tok, created, err)
	}
	fi, _ := os.Stat(filepath.Join(dir, plane.AdminTokenFile))
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %o", fi.Mode().Perm())
	}
	again, created, err := plane.LoadOrCreateAdminToken(dir)
	if err != nil || created || again != tok {
		t.Fatalf("reload: %v %v", created, err)
	}
	_ = os.Chmod(filepath.Join(dir, plane.AdminTokenFile), 0o644)
	if _, _, err := plane.LoadOrCreateAdminToken(dir); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable token accepted: %v", err)
	}
}
