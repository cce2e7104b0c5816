package plane_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tetherhq/tether/internal/plane"
	"github.com/tetherhq/tether/internal/plane/planestore"
)

var (
	boss = planestore.Principal{Kind: planestore.KindStaff, ID: "st_boss", Name: "boss@vendor.example", Role: planestore.RoleAdmin}
)

// tokenFor makes an automation token of role through the admin API, with
// the break-glass token, as an administrator bootstrapping the plane does.
func (b *bundle) tokenFor(t *testing.T, role planestore.Role) string {
	t.Helper()
	resp, out := b.admin(t, "POST", "/v1/admin/tokens", planestore.TokenInput{Name: "test-" + string(role), Role: role})
	if resp.StatusCode != 201 {
		t.Fatalf("create %s token: %d %s", role, resp.StatusCode, out)
	}
	var ct plane.CreatedToken
	if err := json.Unmarshal(out, &ct); err != nil {
		t.Fatal(err)
	}
	return ct.Secret
}

func (b *bundle) as(t *testing.T, token, method, path string, body any) (*http.Response, []byte) {
	t.Helper()
	var raw []byte
	if body != nil {
		raw, _ = json.Marshal(body)
	}
	return b.call(t, method, path, raw, map[string]string{"Authorization": "Bearer " + token})
}

// TestRoleEnforcement calls every admin API route, read from the route
// table, with a token of each role: exactly the roles whose Can allows the
// route's permission get past the guard, the others get 403.
func TestRoleEnforcement(t *testing.T) {
	b := setup(t)
	tokens := map[planestore.Role]string{}
	for _, r := range planestore.Roles() {
		tokens[r] = b.tokenFor(t, r)
	}
	perms := b.server.RoutePermissions()
	if len(perms) < 15 {
		t.Fatalf("only %d guarded routes: %v", len(perms), perms)
	}
	for _, pattern := range b.server.RoutePatterns() {
		if _, path, _ := strings.Cut(pattern, " "); strings.HasPrefix(path, "/v1/admin/") {
			if _, ok := perms[pattern]; !ok {
				t.Errorf("admin route %s is not guarded by require", pattern)
			}
		}
	}
	for pattern, perm := range perms {
		method, path, _ := strings.Cut(pattern, " ")
		path = strings.ReplaceAll(path, "{id}", "xx_missing")
		var body any
		if method == "POST" {
			body = map[string]any{}
		}
		for role, tok := range tokens {
			resp, out := b.as(t, tok, method, path, body)
			switch {
			case plane.Allows(role, perm) && (resp.StatusCode == 401 || resp.StatusCode == 403):
				t.Errorf("%s as %s (may %s): %d %s", pattern, role, perm, resp.StatusCode, out)
			case !plane.Allows(role, perm) && resp.StatusCode != 403:
				t.Errorf("%s as %s (may not %s): %d, want 403", pattern, role, perm, resp.StatusCode)
			}
		}
	}
}

func TestTokensThroughAPI(t *testing.T) {
	b := setup(t)
	viewer := b.tokenFor(t, planestore.RoleViewer)
	resp, _ := b.as(t, viewer, "GET", "/v1/admin/installs", nil)
	if resp.StatusCode != 200 || resp.Header.Get("Tether-Warning") != "" {
		t.Fatalf("viewer token: %d, warning %q", resp.StatusCode, resp.Header.Get("Tether-Warning"))
	}
	// The admin token works, and says it is the break-glass one.
	resp, out := b.admin(t, "GET", "/v1/admin/tokens", nil)
	if resp.StatusCode != 200 || resp.Header.Get("Tether-Warning") != plane.BreakGlassWarning {
		t.Fatalf("admin token: %d, warning %q", resp.StatusCode, resp.Header.Get("Tether-Warning"))
	}
	var ts []planestore.Token
	if err := json.Unmarshal(out, &ts); err != nil || len(ts) != 1 || ts[0].CreatedBy != "break-glass admin token" {
		t.Fatalf("tokens: %s", out)
	}
	if resp, _ := b.admin(t, "POST", "/v1/admin/tokens/"+ts[0].ID+"/revoke", nil); resp.StatusCode != 200 {
		t.Fatalf("revoke: %d", resp.StatusCode)
	}
	if resp, _ := b.as(t, viewer, "GET", "/v1/admin/installs", nil); resp.StatusCode != 401 {
		t.Fatalf("revoked token: %d, want 401", resp.StatusCode)
	}
	exp := b.clock.Now().Add(time.Minute)
	resp, out = b.admin(t, "POST", "/v1/admin/tokens", planestore.TokenInput{Name: "short", Role: planestore.RoleViewer, ExpiresAt: &exp})
	var ct plane.CreatedToken
	if resp.StatusCode != 201 || json.Unmarshal(out, &ct) != nil {
		t.Fatalf("create: %d %s", resp.StatusCode, out)
	}
	b.clock.Advance(time.Minute)
	if resp, _ := b.as(t, ct.Secret, "GET", "/v1/admin/installs", nil); resp.StatusCode != 401 {
		t.Fatalf("expired token: %d, want 401", resp.StatusCode)
	}
	for _, body := range []any{
		map[string]any{"name": "has space", "role": "viewer"},
		map[string]any{"name": "x", "role": "owner"},
		map[string]any{"name": "x", "role": "viewer", "secret": "chosen"},
	} {
		if resp, out := b.admin(t, "POST", "/v1/admin/tokens", body); resp.StatusCode != 400 {
			t.Errorf("create %v: %d %s, want 400", body, resp.StatusCode, out)
		}
	}
}

// Every mutating action and every bundle download is in the audit log with
// the principal that did it, and the log is readable with filters.
func TestAuditThroughAPI(t *testing.T) {
	b := setup(t)
	support := b.tokenFor(t, planestore.RoleSupport)
	release := b.tokenFor(t, planestore.RoleRelease)
	a := b.activate(t, b.license(t, "lic_acme", "stable"))
	resp, out := b.as(t, support, "POST", "/v1/admin/diagnostics", plane.DiagnosticRequestBody{InstallID: a.id, Reason: "worker restarts"})
	if resp.StatusCode != 201 {
		t.Fatalf("diag request: %d %s", resp.StatusCode, out)
	}
	var d planestore.Diagnostic
	_ = json.Unmarshal(out, &d)
	if resp, out := a.do(t, "POST", "/v1/diagnostics/"+d.ID+"/bundle", zipBundle(t, map[string]string{"health.json": "{}"})); resp.StatusCode/100 != 2 {
		t.Fatalf("upload: %d %s", resp.StatusCode, out)
	}
	if resp, _ := b.as(t, support, "GET", "/v1/admin/diagnostics/"+d.ID+"/bundle", nil); resp.StatusCode != 200 {
		t.Fatalf("download: %d", resp.StatusCode)
	}
	if resp, out := b.as(t, release, "POST", "/v1/admin/audit/releases", plane.ReleaseAuditBody{Action: "release.publish", Channel: "stable", Version: "1.5.0"}); resp.StatusCode != 201 {
		t.Fatalf("release audit: %d %s", resp.StatusCode, out)
	}
	if resp, out := b.as(t, release, "POST", "/v1/admin/audit/releases", plane.ReleaseAuditBody{Action: "install.revoke", Channel: "stable", Version: "1.5.0"}); resp.StatusCode != 400 {
		t.Fatalf("release audit with another action: %d %s, want 400", resp.StatusCode, out)
	}
	if resp, _ := b.admin(t, "POST", "/v1/admin/installs/"+a.id+"/revoke", nil); resp.StatusCode != 200 {
		t.Fatalf("revoke: %d", resp.StatusCode)
	}

	resp, out = b.as(t, support, "GET", "/v1/admin/audit?install="+a.id, nil)
	var recs []planestore.AuditRecord
	if resp.StatusCode != 200 || json.Unmarshal(out, &recs) != nil {
		t.Fatalf("audit: %d %s", resp.StatusCode, out)
	}
	var got []string
	for _, r := range recs {
		got = append(got, r.Action+" by "+r.Actor.Name+" ("+string(r.Actor.Role)+") for "+r.Customer+" on "+r.Target)
	}
	// The request's record names the request it made, as the download's does.
	want := []string{
		"install.revoke by break-glass admin token (administrator) for Customer lic_acme on ",
		"diagnostics.download by test-support (support) for Customer lic_acme on " + d.ID,
		"diagnostics.request by test-support (support) for Customer lic_acme on " + d.ID,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("audit for the install:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	resp, out = b.as(t, support, "GET", "/v1/admin/audit?action=release.publish", nil)
	if resp.StatusCode != 200 || !strings.Contains(string(out), `"target": "stable/1.5.0"`) || !strings.Contains(string(out), `"name": "test-release-manager"`) {
		t.Fatalf("release records: %s", out)
	}
	for _, q := range []string{"since=yesterday", "since=", "limit=", "limit=0", "limit=5000", "install=a/b", "action=DROP%20TABLE"} {
		if resp, _ := b.as(t, support, "GET", "/v1/admin/audit?"+q, nil); resp.StatusCode != 400 {
			t.Errorf("audit?%s: %d, want 400", q, resp.StatusCode)
		}
	}
}

// An action whose audit record cannot be written is not done.
func TestNoAuditNoAction(t *testing.T) {
	b := setup(t)
	a := b.activate(t, b.license(t, "lic_acme", "stable"))
	if _, err := b.store.DB().Exec(`DROP TABLE plane_audit`); err != nil {
		t.Fatal(err)
	}
	if resp, out := b.admin(t, "POST", "/v1/admin/installs/"+a.id+"/revoke", nil); resp.StatusCode != 500 || !strings.Contains(string(out), "audit log") {
		t.Fatalf("revoke without an audit log: %d %s, want 500", resp.StatusCode, out)
	}
	if in, err := b.store.Install(b.ctx, a.id); err != nil || in.Revoked {
		t.Fatalf("install after a refused revoke: %+v, %v", in, err)
	}
	if resp, _ := b.admin(t, "POST", "/v1/admin/tokens", planestore.TokenInput{Name: "x", Role: planestore.RoleViewer}); resp.StatusCode != 500 {
		t.Fatalf("token without an audit log: %d, want 500", resp.StatusCode)
	}
	if ts, err := b.store.Tokens(b.ctx); err != nil || len(ts) != 0 {
		t.Fatalf("tokens after a refused create: %+v, %v", ts, err)
	}
}
