package plane_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tetherhq/tether/internal/plane"
)

var (
	boss = plane.Principal{Kind: plane.KindStaff, ID: "st_boss", Name: "boss@vendor.example", Role: plane.RoleAdmin}
	// staffIssuer is a staff member's identity provider in store tests.
	staffIssuer = "https://login.vendor.example"
)

func TestStaffStore(t *testing.T) {
	forEachDialect(t, func(t *testing.T, b storeBundle) {
		alice, err := b.store.AddStaff(b.ctx, plane.StaffInput{Issuer: staffIssuer, Subject: "00u-alice", Name: "alice@vendor.example", Role: plane.RoleSupport}, boss)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.store.AddStaff(b.ctx, plane.StaffInput{Issuer: staffIssuer, Subject: "00u-alice", Name: "other", Role: plane.RoleViewer}, boss); !errors.Is(err, plane.ErrExists) {
			t.Fatalf("adding the same issuer and subject again: %v, want ErrExists", err)
		}
		// Bad input is refused with the rule, and nothing is stored.
		for _, in := range []plane.StaffInput{
			{Issuer: "login.vendor.example", Subject: "x", Name: "x", Role: plane.RoleViewer},
			{Issuer: staffIssuer, Subject: "bad\nsubject", Name: "x", Role: plane.RoleViewer},
			{Issuer: staffIssuer, Subject: "x", Name: "", Role: plane.RoleViewer},
			{Issuer: staffIssuer, Subject: "x", Name: "x", Role: "root"},
		} {
			if _, err := b.store.AddStaff(b.ctx, in, boss); err == nil {
				t.Errorf("AddStaff(%+v) accepted", in)
			}
		}
		got, err := b.store.StaffBySubject(b.ctx, staffIssuer, "00u-alice")
		if err != nil || got.ID != alice.ID || got.Role != plane.RoleSupport {
			t.Fatalf("StaffBySubject = %+v, %v", got, err)
		}
		if _, err := b.store.StaffBySubject(b.ctx, "https://other.example", "00u-alice"); !errors.Is(err, plane.ErrNotFound) {
			t.Fatalf("same subject at another issuer: %v, want ErrNotFound", err)
		}
		if m, err := b.store.SetStaffRole(b.ctx, alice.ID, plane.RoleRelease, boss); err != nil || m.Role != plane.RoleRelease {
			t.Fatalf("SetStaffRole = %+v, %v", m, err)
		}
		if _, err := b.store.SetStaffRole(b.ctx, "st_nobody", plane.RoleViewer, boss); !errors.Is(err, plane.ErrNotFound) {
			t.Fatalf("SetStaffRole of nobody: %v", err)
		}
		list, err := b.store.Staff(b.ctx)
		if err != nil || len(list) != 1 {
			t.Fatalf("Staff = %+v, %v", list, err)
		}
		if err := b.store.RemoveStaff(b.ctx, alice.ID, boss); err != nil {
			t.Fatal(err)
		}
		if err := b.store.RemoveStaff(b.ctx, alice.ID, boss); !errors.Is(err, plane.ErrNotFound) {
			t.Fatalf("removing twice: %v", err)
		}
		// Each change is in the audit log with who made it; the refused
		// ones are not.
		recs, err := b.store.Audit(b.ctx, plane.AuditFilter{Actor: boss.ID})
		if err != nil {
			t.Fatal(err)
		}
		var actions []string
		for _, r := range recs {
			actions = append(actions, r.Action)
			if r.Actor != boss || r.Target != alice.ID {
				t.Errorf("record %+v: want actor %v, target %s", r, boss, alice.ID)
			}
		}
		if strings.Join(actions, " ") != "staff.remove staff.set-role staff.add" {
			t.Fatalf("audit actions newest first: %v", actions)
		}
	})
}

func TestTokenStore(t *testing.T) {
	forEachDialect(t, func(t *testing.T, b storeBundle) {
		exp := b.clock.Now().Add(time.Hour)
		tok, secret, err := b.store.CreateToken(b.ctx, plane.TokenInput{Name: "release-ci", Role: plane.RoleRelease, ExpiresAt: &exp}, boss)
		if err != nil {
			t.Fatal(err)
		}
		if err := plane.ParseToken(secret); err != nil {
			t.Fatalf("created secret %q does not parse: %v", secret, err)
		}
		p, ok, err := b.store.TokenPrincipal(b.ctx, secret)
		if err != nil || !ok || p != (plane.Principal{Kind: plane.KindToken, ID: tok.ID, Name: "release-ci", Role: plane.RoleRelease}) {
			t.Fatalf("TokenPrincipal = %+v, %v, %v", p, ok, err)
		}
		// One character off is another token: refused.
		wrong := secret[:len(secret)-1] + map[bool]string{true: "A", false: "B"}[secret[len(secret)-1] != 'A']
		if _, ok, _ := b.store.TokenPrincipal(b.ctx, wrong); ok {
			t.Fatal("a token one character off was accepted")
		}
		list, err := b.store.Tokens(b.ctx)
		if err != nil || len(list) != 1 || list[0].LastUsedAt == nil || !list[0].LastUsedAt.Equal(b.clock.Now()) {
			t.Fatalf("Tokens = %+v, %v; want one, last used now", list, err)
		}
		raw, _ := json.Marshal(list)
		if strings.Contains(string(raw), secret[len(plane.TokenPrefix):]) {
			t.Fatal("the token list carries the secret")
		}
		b.clock.Advance(time.Hour)
		if _, ok, _ := b.store.TokenPrincipal(b.ctx, secret); ok {
			t.Fatal("an expired token was accepted")
		}

		_, forever, err := b.store.CreateToken(b.ctx, plane.TokenInput{Name: "fleet-report", Role: plane.RoleViewer}, boss)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok, _ := b.store.TokenPrincipal(b.ctx, forever); !ok {
			t.Fatal("a token without expiry was refused")
		}
		ts, _ := b.store.Tokens(b.ctx)
		if _, err := b.store.RevokeToken(b.ctx, ts[0].ID, boss); err != nil {
			t.Fatal(err)
		}
		if _, ok, _ := b.store.TokenPrincipal(b.ctx, forever); ok {
			t.Fatal("a revoked token was accepted")
		}
		if _, err := b.store.RevokeToken(b.ctx, ts[0].ID, boss); !errors.Is(err, plane.ErrNotFound) {
			t.Fatalf("revoking twice: %v", err)
		}
		past := b.clock.Now().Add(-time.Second)
		if _, _, err := b.store.CreateToken(b.ctx, plane.TokenInput{Name: "late", Role: plane.RoleViewer, ExpiresAt: &past}, boss); err == nil {
			t.Fatal("a token expiring in the past was created")
		}
		recs, _ := b.store.Audit(b.ctx, plane.AuditFilter{Action: "token.create"})
		if len(recs) != 2 {
			t.Fatalf("token.create records: %+v", recs)
		}
	})
}

func TestAuditFilters(t *testing.T) {
	forEachDialect(t, func(t *testing.T, b storeBundle) {
		sup := plane.Principal{Kind: plane.KindToken, ID: "tk_1", Name: "support-bot", Role: plane.RoleSupport}
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		must(b.store.AppendAudit(b.ctx, sup, plane.AuditEntry{Action: "diagnostics.request", Customer: "Acme", InstallID: "in_a", Reason: "slow"}))
		b.clock.Advance(time.Minute)
		since := b.clock.Now()
		must(b.store.AppendAudit(b.ctx, boss, plane.AuditEntry{Action: "install.revoke", Customer: "Acme", InstallID: "in_a"}))
		must(b.store.AppendAudit(b.ctx, boss, plane.AuditEntry{Action: "install.revoke", Customer: "Globex", InstallID: "in_b"}))
		for _, tc := range []struct {
			f    plane.AuditFilter
			want int
		}{
			{plane.AuditFilter{}, 3},
			{plane.AuditFilter{Customer: "Acme"}, 2},
			{plane.AuditFilter{InstallID: "in_b"}, 1},
			{plane.AuditFilter{Actor: "support-bot"}, 1},
			{plane.AuditFilter{Actor: "st_boss"}, 2},
			{plane.AuditFilter{Action: "install.revoke", Customer: "Acme"}, 1},
			{plane.AuditFilter{Since: since}, 2},
			{plane.AuditFilter{Limit: 1}, 1},
		} {
			recs, err := b.store.Audit(b.ctx, tc.f)
			if err != nil || len(recs) != tc.want {
				t.Errorf("Audit(%+v) = %d records (%v), want %d", tc.f, len(recs), err, tc.want)
			}
		}
		recs, _ := b.store.Audit(b.ctx, plane.AuditFilter{Limit: 1})
		if recs[0].Customer != "Globex" || recs[0].Actor != boss {
			t.Errorf("newest record %+v", recs[0])
		}
	})
}

// tokenFor makes an automation token of role through the admin API, with
// the break-glass token, as an administrator bootstrapping the plane does.
func (b *bundle) tokenFor(t *testing.T, role plane.Role) string {
	t.Helper()
	resp, out := b.admin(t, "POST", "/v1/admin/tokens", plane.TokenInput{Name: "test-" + string(role), Role: role})
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
	tokens := map[plane.Role]string{}
	for _, r := range plane.Roles() {
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
	viewer := b.tokenFor(t, plane.RoleViewer)
	resp, _ := b.as(t, viewer, "GET", "/v1/admin/installs", nil)
	if resp.StatusCode != 200 || resp.Header.Get("Tether-Warning") != "" {
		t.Fatalf("viewer token: %d, warning %q", resp.StatusCode, resp.Header.Get("Tether-Warning"))
	}
	// The admin token works, and says it is the break-glass one.
	resp, out := b.admin(t, "GET", "/v1/admin/tokens", nil)
	if resp.StatusCode != 200 || resp.Header.Get("Tether-Warning") != plane.BreakGlassWarning {
		t.Fatalf("admin token: %d, warning %q", resp.StatusCode, resp.Header.Get("Tether-Warning"))
	}
	var ts []plane.Token
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
	resp, out = b.admin(t, "POST", "/v1/admin/tokens", plane.TokenInput{Name: "short", Role: plane.RoleViewer, ExpiresAt: &exp})
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
	support := b.tokenFor(t, plane.RoleSupport)
	release := b.tokenFor(t, plane.RoleRelease)
	a := b.activate(t, b.license(t, "lic_acme", "stable"))
	resp, out := b.as(t, support, "POST", "/v1/admin/diagnostics", plane.DiagnosticRequestBody{InstallID: a.id, Reason: "worker restarts"})
	if resp.StatusCode != 201 {
		t.Fatalf("diag request: %d %s", resp.StatusCode, out)
	}
	var d plane.Diagnostic
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
	var recs []plane.AuditRecord
	if resp.StatusCode != 200 || json.Unmarshal(out, &recs) != nil {
		t.Fatalf("audit: %d %s", resp.StatusCode, out)
	}
	var got []string
	for _, r := range recs {
		got = append(got, r.Action+" by "+r.Actor.Name+" ("+string(r.Actor.Role)+") for "+r.Customer)
	}
	want := []string{
		"install.revoke by break-glass admin token (administrator) for Customer lic_acme",
		"diagnostics.download by test-support (support) for Customer lic_acme",
		"diagnostics.request by test-support (support) for Customer lic_acme",
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
	if resp, _ := b.admin(t, "POST", "/v1/admin/tokens", plane.TokenInput{Name: "x", Role: plane.RoleViewer}); resp.StatusCode != 500 {
		t.Fatalf("token without an audit log: %d, want 500", resp.StatusCode)
	}
	if ts, err := b.store.Tokens(b.ctx); err != nil || len(ts) != 0 {
		t.Fatalf("tokens after a refused create: %+v, %v", ts, err)
	}
}
