package planecmd_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tetherhq/tether/internal/plane/planecmd"
	"github.com/tetherhq/tether/internal/plane/planestore"
	"github.com/tetherhq/tether/internal/plane/planetest"
)

func TestStaffTokensAndAuditCommands(t *testing.T) {
	p := planetest.Start(t)
	admin := runner{t: t, env: map[string]string{"TETHER_PLANE_URL": p.URL, "TETHER_ADMIN_TOKEN": p.AdminToken}}

	// Bootstrap with the break-glass token: it works, and says so.
	secret, errs, err := admin.run("tokens", "create", "--name", "release-ci", "--role", "release-manager", "--expires", "90d")
	if err != nil || !strings.Contains(errs, "break-glass admin token used") || !strings.Contains(errs, "not shown again") {
		t.Fatalf("tokens create: %v\n%s", err, errs)
	}
	secret = strings.TrimSpace(secret)
	if err := planestore.ParseToken(secret); err != nil {
		t.Fatalf("tokens create printed %q: %v", secret, err)
	}
	tokenFile := filepath.Join(t.TempDir(), "release-token")
	if err := os.WriteFile(tokenFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	var m planestore.StaffMember
	mustDecode(t, admin.ok("staff", "add", "--issuer", "https://login.vendor.example", "--subject", "00u-alice",
		"--name", "alice@vendor.example", "--role", "support", "--output", "json"), &m)
	if m.ID == "" || m.Role != planestore.RoleSupport {
		t.Fatalf("staff add: %+v", m)
	}
	if out := admin.ok("staff", "set-role", m.ID, "--role", "viewer"); !strings.Contains(out, "is now viewer") {
		t.Fatalf("staff set-role: %s", out)
	}
	var list []planestore.StaffMember
	mustDecode(t, admin.ok("staff", "list", "--output", "json"), &list)
	if len(list) != 1 || list[0].Role != planestore.RoleViewer {
		t.Fatalf("staff list: %+v", list)
	}
	admin.ok("staff", "remove", m.ID)
	if out := admin.ok("staff", "list"); strings.Contains(out, "alice") {
		t.Fatalf("staff list after remove: %s", out)
	}

	// The release token may publish (and the audit log says who did) but
	// may not manage staff.
	rel := runner{t: t, env: map[string]string{"TETHER_PLANE_URL": p.URL}}
	if _, _, err := rel.run("staff", "list", "--admin-token-file", tokenFile); err == nil || planecmd.IsUsage(err) ||
		!strings.Contains(err.Error(), "403") || !strings.Contains(err.Error(), "may not staff.manage") {
		t.Fatalf("staff list with a release token: %v", err)
	}
	rel.ok("release", "publish", "--admin-token-file", tokenFile, "--keys", p.KeysDir, "--repo", p.RepoDir,
		"--version", "2.0.0", "--channel", "stable", "--min-from", "1.0.0")
	var recs []planestore.AuditRecord
	mustDecode(t, admin.ok("audit", "--action", "release.publish", "--output", "json"), &recs)
	if len(recs) != 1 || recs[0].Actor.Name != "release-ci" || recs[0].Target != "stable/2.0.0" {
		t.Fatalf("release.publish records: %+v", recs)
	}
	rel.ok("release", "promote", "--admin-token-file", tokenFile, "--keys", p.KeysDir, "--repo", p.RepoDir,
		"--from", "stable", "--to", "beta", "2.0.0")
	mustDecode(t, admin.ok("audit", "--action", "release.promote", "--output", "json"), &recs)
	if len(recs) != 1 || recs[0].Actor.Name != "release-ci" || recs[0].Target != "beta/2.0.0" {
		t.Fatalf("release.promote records: %+v", recs)
	}
	if text := admin.ok("audit"); !strings.Contains(text, "staff.remove") || !strings.Contains(text, "break-glass admin token (administrator)") {
		t.Fatalf("audit text:\n%s", text)
	}

	var toks []planestore.Token
	mustDecode(t, admin.ok("tokens", "list", "--output", "json"), &toks)
	if len(toks) != 1 || toks[0].LastUsedAt == nil || toks[0].ExpiresAt == nil {
		t.Fatalf("tokens list: %+v", toks)
	}
	admin.ok("tokens", "revoke", toks[0].ID)
	// A revoked token: refused, and the release is not published unaudited.
	_, _, err = rel.run("release", "revoke", "--admin-token-file", tokenFile, "--keys", p.KeysDir, "--repo", p.RepoDir,
		"--version", "2.0.0", "--channel", "stable")
	if err == nil || !strings.Contains(err.Error(), "refused the token") || !strings.Contains(err.Error(), "not done") {
		t.Fatalf("release revoke with a revoked token: %v", err)
	}
	if out := admin.ok("release", "list", "--repo", p.RepoDir); !strings.Contains(out, "2.0.0") || strings.Contains(out, "revoked") {
		t.Fatalf("release list after the refused revoke:\n%s", out)
	}
}

func TestStaffCommandUsage(t *testing.T) {
	r := runner{t: t, env: map[string]string{"TETHER_PLANE_URL": "http://127.0.0.1:1", "TETHER_ADMIN_TOKEN": "x"}}
	for _, args := range [][]string{
		{"tokens", "create", "--name", "ci", "--role", "root"},
		{"tokens", "create", "--name", "ci", "--role", "viewer", "--expires", "yesterday"},
		{"tokens", "create", "--role", "viewer"},
		{"staff", "add", "--subject", "s", "--name", "n"},
		{"staff", "set-role", "--role", "viewer"},
		{"staff", "remove"},
		{"audit", "--since", "last week"},
		{"audit", "--limit", "0"},
		{"serve", "--data-dir", t.TempDir(), "--oidc-client-id", "plane"},
		{"serve", "--data-dir", t.TempDir(), "--oidc-issuer", "https://login.vendor.example"},
		{"serve", "--data-dir", t.TempDir(), "--no-admin-token"},
	} {
		_, _, err := r.run(args...)
		if !planecmd.IsUsage(err) {
			t.Errorf("tether-plane %s: %v, want a usage error", strings.Join(args, " "), err)
		}
	}
	// A plane with no administrator on its staff list: nobody could manage
	// staff or tokens without the admin token.
	_, _, err := r.run("serve", "--data-dir", t.TempDir(), "--no-admin-token", "--oidc-issuer", "https://login.vendor.example",
		"--oidc-client-id", "plane", "--oidc-redirect-url", "https://plane.vendor.example/login/callback")
	if !planecmd.IsUsage(err) || !strings.Contains(err.Error(), "no staff member has the administrator role") {
		t.Errorf("serve --no-admin-token without an administrator: %v", err)
	}
}

func mustDecode(t *testing.T, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("%v in %s", err, s)
	}
}
