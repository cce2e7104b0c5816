package plane_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tetherhq/tether/internal/plane/planestore"
	"github.com/tetherhq/tether/internal/release/publish"
	"github.com/tetherhq/tether/internal/reqsign"
	"github.com/tetherhq/tether/internal/wire"
)

// staffAna is a support engineer signed in through the vendor's identity
// provider.
var staffAna = planestore.Principal{Kind: planestore.KindStaff, ID: "https://idp.vendor.example|ana", Name: "ana@vendor.example", Role: planestore.RoleSupport}

// installState is everything the plane keeps about one install, to show
// that another customer's requests changed none of it.
func installState(t *testing.T, b *bundle, id string) string {
	t.Helper()
	in, err := b.store.Install(b.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	ds, err := b.store.Diagnostics(b.ctx, id, "")
	if err != nil {
		t.Fatal(err)
	}
	tel, err := b.store.Telemetry(b.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	hist, err := b.store.History(b.ctx, id, 1000)
	if err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal([]any{in, in.PublicKey, in.RekeyedAt, ds, tel, hist})
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// TestAgentAPICustomerIsolation drives every agent API route, as listed by
// the server's own route registration, with another customer's credentials
// and with a revoked install's, and checks each is refused and that nothing
// of the victim's was read, written or listed.
func TestAgentAPICustomerIsolation(t *testing.T) {
	b := setup(t)
	if _, err := publish.InitKeys(b.keysDir, publish.KeyOptions{RootKeys: 1, RootThreshold: 1}, b.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := publish.Publish(b.ctx, b.repoDir, b.keysDir, publish.PublishOptions{Version: "1.4.0", Channel: "beta",
		Images:  map[string]string{"api": "registry.example.com/docsvc@sha256:" + strings.Repeat("a", 64)},
		MinFrom: "1.3.0", SchemaMin: 1, SchemaMax: 3, Notes: "n"}, b.clock.Now()); err != nil {
		t.Fatal(err)
	}

	var target string // a file the beta channel serves
	targetsDir := filepath.Join(b.repoDir, "beta", "targets")
	_ = filepath.WalkDir(targetsDir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && !strings.HasPrefix(d.Name(), ".") {
			rel, _ := filepath.Rel(targetsDir, p)
			target = "/v1/tuf/beta/targets/" + filepath.ToSlash(rel)
		}
		return nil
	})
	if target == "" {
		t.Fatal("publish wrote no target")
	}

	// A is the victim (licensed for beta), B the other customer (stable
	// only).
	tokenA := b.license(t, "lic_a", "stable", "beta")
	a := b.activate(t, tokenA)
	bb := b.activate(t, b.license(t, "lic_b", "stable"))
	const secretReason = "customer A queue stuck on invoice batch"
	a.heartbeat(t, "ok")
	telA, _ := json.Marshal(wire.Telemetry{Day: "2026-11-01", DocumentsProcessed: 7, Pages: 9, BytesBucket: "<1GB"})
	if resp, out := a.do(t, "POST", "/v1/telemetry", telA); resp.StatusCode != 204 {
		t.Fatalf("telemetry: %d %s", resp.StatusCode, out)
	}
	diagA, err := b.store.RequestDiagnostic(b.ctx, planestore.NewDiagnosticID(), a.id, secretReason, staffAna)
	if err != nil {
		t.Fatal(err)
	}
	beforeA := installState(t, b, a.id)

	// revoked is a new install with a pending diagnostic request, revoked
	// while this replica still has its key cached, as after a revoke through
	// another replica or `tether-plane installs revoke`.
	nRevoked := 0
	revoked := func(t *testing.T) (*agent, string) {
		nRevoked++
		r := b.activate(t, b.license(t, fmt.Sprintf("lic_r%d", nRevoked), "stable", "beta"))
		r.heartbeat(t, "ok")
		d, err := b.store.RequestDiagnostic(b.ctx, planestore.NewDiagnosticID(), r.id, secretReason, staffAna)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.store.Revoke(b.ctx, r.id); err != nil {
			t.Fatal(err)
		}
		return r, d.ID
	}

	_, newKey, _ := ed25519.GenerateKey(nil)
	zip := zipBundle(t, map[string]string{"health.json": "{}"})
	tel, _ := json.Marshal(wire.Telemetry{Day: "2026-11-01", DocumentsProcessed: 99999, BytesBucket: "<1GB"})

	// asOther signs as B but names install, which the plane must check
	// against install's own key.
	asOther := func(install string) func(t *testing.T, method, path string, body []byte) *http.Request {
		return func(t *testing.T, method, path string, body []byte) *http.Request {
			req, err := http.NewRequest(method, b.http.URL+path, bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			if err := reqsign.Sign(req, body, install, bb.key, b.clock.Now()); err != nil {
				t.Fatal(err)
			}
			return req
		}
	}
	type attempt struct {
		name  string
		req   func(t *testing.T) *http.Request
		want  int
		check func(t *testing.T, out []byte) // optional, on the answer
	}
	// route is one agent API route: a path and body a legitimate request of
	// A's would use, plus the attempts only this route has.
	type route struct {
		unsigned bool
		method   string
		path     string // as A would call it
		body     []byte // as A would send it
		extra    []attempt
	}
	routes := map[string]route{
		"POST /v1/activate": {unsigned: true, extra: []attempt{{
			name: "A's used activation token, B's new key",
			req: func(t *testing.T) *http.Request {
				body, _ := json.Marshal(wire.ActivationRequest{ActivationToken: tokenA,
					PublicKey: base64.RawURLEncoding.EncodeToString(newKey.Public().(ed25519.PublicKey)), AgentVersion: "1.3.0"})
				req, _ := http.NewRequest("POST", b.http.URL+"/v1/activate", bytes.NewReader(body))
				return req
			}, want: http.StatusConflict,
		}}},
		"POST /v1/heartbeat": {method: "POST", path: "/v1/heartbeat", body: heartbeatJSON(t, b.clock.Now(), "down"),
			extra: []attempt{{
				name: "B's own heartbeat is told only B's pending requests",
				req: func(t *testing.T) *http.Request {
					return bb.signedReq(t, "POST", "/v1/heartbeat", heartbeatJSON(t, b.clock.Now(), "ok"))
				}, want: 200,
				check: func(t *testing.T, out []byte) {
					if hr, err := wire.Decode[wire.HeartbeatResponse](out); err != nil || hr.PendingDiagnostics != 0 {
						t.Fatalf("B's heartbeat answer %s (%v) counts another install's requests", out, err)
					}
				},
			}}},
		"POST /v1/rekey": {method: "POST", path: "/v1/rekey", body: rekeyBody(t, a.id, newKey, newKey),
			extra: []attempt{{
				name: "B's own request carrying a re-key proof for A",
				req: func(t *testing.T) *http.Request {
					return bb.signedReq(t, "POST", "/v1/rekey", rekeyBody(t, a.id, newKey, newKey))
				}, want: http.StatusBadRequest,
			}}},
		"POST /v1/telemetry": {method: "POST", path: "/v1/telemetry", body: tel},
		"GET /v1/diagnostics": {method: "GET", path: "/v1/diagnostics", extra: []attempt{{
			name: "B lists diagnostics",
			req:  func(t *testing.T) *http.Request { return bb.signedReq(t, "GET", "/v1/diagnostics", nil) },
			want: 200,
			check: func(t *testing.T, out []byte) {
				if ds, err := wire.Decode[wire.DiagnosticRequests](out); err != nil || len(ds) != 0 {
					t.Fatalf("B sees %s (%v)", out, err)
				}
			},
		}}},
		"POST /v1/diagnostics/{id}/bundle": {method: "POST", path: "/v1/diagnostics/" + diagA.ID + "/bundle", body: zip,
			extra: []attempt{{
				name: "B uploads to A's request",
				req: func(t *testing.T) *http.Request {
					return bb.signedReq(t, "POST", "/v1/diagnostics/"+diagA.ID+"/bundle", zip)
				}, want: http.StatusNotFound,
			}}},
		"GET /v1/tuf/{channel}/metadata/{file}": {method: "GET", path: "/v1/tuf/beta/metadata/timestamp.json",
			extra: []attempt{{
				name: "B fetches a channel its license does not list",
				req: func(t *testing.T) *http.Request {
					return bb.signedReq(t, "GET", "/v1/tuf/beta/metadata/timestamp.json", nil)
				}, want: http.StatusForbidden,
			}}},
		"GET /v1/tuf/{channel}/targets/{file...}": {method: "GET", path: target,
			extra: []attempt{{
				name: "B fetches a target of a channel its license does not list",
				req: func(t *testing.T) *http.Request {
					return bb.signedReq(t, "GET", target, nil)
				}, want: http.StatusForbidden,
			}}},
	}

	var agentRoutes []string
	for _, p := range b.server.RoutePatterns() {
		if _, path, _ := strings.Cut(p, " "); strings.HasPrefix(path, "/v1/") && !strings.HasPrefix(path, "/v1/admin/") {
			agentRoutes = append(agentRoutes, p)
		}
	}
	for p := range routes {
		if !slices.Contains(agentRoutes, p) {
			t.Errorf("route %q is tested here but no longer registered", p)
		}
	}
	for _, p := range agentRoutes {
		rt, ok := routes[p]
		if !ok {
			t.Errorf("agent route %q has no cross-customer attempts here: add them", p)
			continue
		}
		attempts := rt.extra
		if !rt.unsigned {
			attempts = append(attempts,
				attempt{name: "B's key naming A", want: http.StatusUnauthorized,
					req: func(t *testing.T) *http.Request { return asOther(a.id)(t, rt.method, rt.path, rt.body) }},
				attempt{name: "revoked install", want: http.StatusUnauthorized,
					req: func(t *testing.T) *http.Request {
						r, diagR := revoked(t)
						path := strings.ReplaceAll(rt.path, diagA.ID, diagR)
						body := rt.body
						if p == "POST /v1/rekey" {
							body = rekeyBody(t, r.id, newKey, newKey)
						}
						before := installState(t, b, r.id)
						t.Cleanup(func() {
							if got := installState(t, b, r.id); got != before {
								t.Errorf("revoked install changed:\n got %s\nwant %s", got, before)
							}
						})
						return r.signedReq(t, rt.method, path, body)
					}})
		}
		for _, at := range attempts {
			t.Run(p+"/"+at.name, func(t *testing.T) {
				resp, out := send(t, at.req(t))
				if resp.StatusCode != at.want {
					t.Fatalf("status %d %s, want %d", resp.StatusCode, out, at.want)
				}
				for _, leak := range []string{secretReason, "lic_a", a.id} {
					if bytes.Contains(out, []byte(leak)) {
						t.Fatalf("answer %s carries %q", out, leak)
					}
				}
				if at.check != nil {
					at.check(t, out)
				}
			})
		}
	}
	if got := installState(t, b, a.id); got != beforeA {
		t.Errorf("install A changed:\n got %s\nwant %s", got, beforeA)
	}
	ds, err := b.store.Diagnostics(b.ctx, "", planestore.DiagUploaded)
	if err != nil || len(ds) != 0 {
		t.Errorf("bundles uploaded: %+v %v", ds, err)
	}
}
