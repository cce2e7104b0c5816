package planecmd_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tetherhq/tether/internal/license"
	"github.com/tetherhq/tether/internal/plane"
	"github.com/tetherhq/tether/internal/plane/planecmd"
	"github.com/tetherhq/tether/internal/plane/planestore"
	"github.com/tetherhq/tether/internal/plane/planetest"
	"github.com/tetherhq/tether/internal/release"
	"github.com/tetherhq/tether/internal/release/publish"
	"github.com/tetherhq/tether/internal/reqsign"
	"github.com/tetherhq/tether/internal/testtime"
	"github.com/tetherhq/tether/internal/wire"
)

type runner struct {
	t   *testing.T
	env map[string]string
}

// run executes a command and returns stdout, stderr and the error.
func (r runner) run(args ...string) (string, string, error) {
	r.t.Helper()
	var out, errb bytes.Buffer
	err := planecmd.Run(context.Background(), args, planecmd.Env{Stdout: &out, Stderr: &errb,
		Getenv: func(k string) string { return r.env[k] }})
	return out.String(), errb.String(), err
}

func (r runner) ok(args ...string) string {
	r.t.Helper()
	out, errs, err := r.run(args...)
	if err != nil {
		r.t.Fatalf("tether-plane %s: %v\n%s", strings.Join(args, " "), err, errs)
	}
	return out
}

func TestAdminCommandsAgainstPlane(t *testing.T) {
	p := planetest.Start(t)
	dir := t.TempDir()
	r := runner{t: t, env: map[string]string{"TETHER_PLANE_URL": p.URL, "TETHER_ADMIN_TOKEN": p.AdminToken}}

	lic := filepath.Join(dir, "license.json")
	out := r.ok("license", "issue", "--keys", p.KeysDir, "--customer", "Acme Corp", "--expires", "2099-12-31",
		"--grace", "14d", "--channels", "stable,beta", "--entitlement", "max_workers=8", "--id", "lic_acme", "--out", lic)
	if !strings.Contains(out, "Registered license lic_acme") {
		t.Fatalf("issue output: %s", out)
	}
	file, err := os.ReadFile(lic)
	if err != nil {
		t.Fatal(err)
	}
	l, err := license.Verify(p.LicensePublicKey(), file)
	if err != nil || l.Customer != "Acme Corp" || l.Entitlements["max_workers"] != 8 || len(l.Channels) != 2 ||
		l.ExpiresAt.Format(time.DateOnly) != "2099-12-31" || l.GraceSeconds != 14*86400 {
		t.Fatalf("license %+v, %v", l, err)
	}
	var f license.File
	_ = json.Unmarshal(file, &f)

	// an agent activates with the token and heartbeats
	pub, priv, _ := ed25519.GenerateKey(nil)
	act, _ := json.Marshal(wire.ActivationRequest{ActivationToken: f.ActivationToken,
		PublicKey: base64.RawURLEncoding.EncodeToString(pub), AgentVersion: "1.3.0"})
	resp, err := http.Post(p.URL+"/v1/activate", "application/json", bytes.NewReader(act))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("activate: %v %v", resp.Status, err)
	}
	ar, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var activation wire.ActivationResponse
	_ = json.Unmarshal(ar, &activation)
	signed := func(method, path string, body []byte) int {
		req, _ := http.NewRequest(method, p.URL+path, bytes.NewReader(body))
		_ = reqsign.Sign(req, body, activation.InstallID, priv, time.Now())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	var views []plane.InstallView
	if err := json.Unmarshal([]byte(r.ok("installs", "list", "--output", "json")), &views); err != nil || len(views) != 1 ||
		views[0].ID != activation.InstallID || views[0].Customer != "Acme Corp" {
		t.Fatalf("installs list json: %+v %v", views, err)
	}
	if text := r.ok("installs", "list"); !strings.Contains(text, activation.InstallID) || !strings.Contains(text, "Acme Corp") {
		t.Fatalf("installs list text: %s", text)
	}

	out = r.ok("diag", "request", "--install", activation.InstallID, "--reason", "slow uploads since Tuesday")
	if !strings.Contains(out, "Requested dg_") {
		t.Fatalf("diag request: %s", out)
	}
	var ds []planestore.Diagnostic
	_ = json.Unmarshal([]byte(r.ok("diag", "list", "--output", "json")), &ds)
	if len(ds) != 1 || ds[0].Status != "requested" || ds[0].RequestedBy != "break-glass admin token" || ds[0].RequestedByKind != "break-glass" {
		t.Fatalf("diag list: %+v", ds)
	}
	if text := r.ok("diag", "list"); !strings.Contains(text, "break-glass admin token") {
		t.Fatalf("diag list text: %s", text)
	}
	var zbuf bytes.Buffer
	zw := zip.NewWriter(&zbuf)
	w, _ := zw.Create("health.json")
	_, _ = w.Write([]byte(`{}`))
	_ = zw.Close()
	if st := signed("POST", "/v1/diagnostics/"+ds[0].ID+"/bundle", zbuf.Bytes()); st != 204 {
		t.Fatalf("upload: %d", st)
	}
	bundle := filepath.Join(dir, "bundle.zip")
	r.ok("diag", "download", ds[0].ID, "--out", bundle)
	if got, _ := os.ReadFile(bundle); !bytes.Equal(got, zbuf.Bytes()) {
		t.Fatal("downloaded bundle differs")
	}
	if _, _, err := r.run("diag", "download", ds[0].ID, "--out", bundle); err == nil {
		t.Fatal("download overwrote an existing file")
	}

	// releases: publish, list through the plane, revoke, export
	notes := filepath.Join(dir, "notes.txt")
	_ = os.WriteFile(notes, []byte("Faster OCR."), 0o644)
	art := filepath.Join(dir, "docsvc")
	_ = os.WriteFile(art, []byte("binary"), 0o755)
	img := "registry.example.com/docsvc@sha256:" + strings.Repeat("c", 64)
	for _, v := range []string{"1.4.0", "1.5.0"} {
		r.ok("release", "publish", "--keys", p.KeysDir, "--repo", p.RepoDir, "--version", v, "--channel", "stable",
			"--artifact", "docsvc="+art, "--image", "api="+img, "--min-from", "1.3.0", "--notes", notes)
	}
	r.ok("release", "revoke", "--keys", p.KeysDir, "--repo", p.RepoDir, "--channel", "stable", "--version", "1.5.0")
	var rel []plane.ChannelReleases
	if err := json.Unmarshal([]byte(r.ok("release", "list", "--output", "json")), &rel); err != nil || len(rel) != 1 ||
		len(rel[0].Releases) != 2 || !rel[0].Releases[0].Revoked || rel[0].Releases[1].Notes != "Faster OCR." {
		t.Fatalf("release list: %+v %v", rel, err)
	}
	if text := r.ok("release", "list", "--repo", p.RepoDir); !strings.Contains(text, "1.5.0") || !strings.Contains(text, "revoked") {
		t.Fatalf("release list text: %s", text)
	}
	// promote 1.4.0 to beta; not twice, and not the revoked 1.5.0
	var promoted release.Manifest
	out = r.ok("release", "promote", "--keys", p.KeysDir, "--repo", p.RepoDir, "--from", "stable", "--to", "beta", "1.4.0", "--output", "json")
	if err := json.Unmarshal([]byte(out), &promoted); err != nil || promoted.Channel != "beta" || promoted.Version != "1.4.0" || promoted.Notes != "Faster OCR." {
		t.Fatalf("release promote --output json: %s %v", out, err)
	}
	if _, _, err := r.run("release", "promote", "--keys", p.KeysDir, "--repo", p.RepoDir, "--from", "stable", "--to", "beta", "1.4.0"); err == nil || !strings.Contains(err.Error(), "beta already has it") {
		t.Fatalf("second promote: %v", err)
	}
	if _, _, err := r.run("release", "promote", "--keys", p.KeysDir, "--repo", p.RepoDir, "--from", "stable", "--to", "beta", "1.5.0"); err == nil || !strings.Contains(err.Error(), "revoked on stable") {
		t.Fatalf("promote revoked: %v", err)
	}
	if ms, err := publish.List(p.RepoDir, "beta"); err != nil || len(ms) != 1 || ms[0].Version != "1.4.0" {
		t.Fatalf("beta after promote: %+v %v", ms, err)
	}
	export := filepath.Join(dir, "stable.export")
	r.ok("release", "export", "--repo", p.RepoDir, "--channel", "stable", "--out", export)
	if fi, err := os.Stat(export); err != nil || fi.Size() == 0 {
		t.Fatalf("export: %v", err)
	}
	if _, err := publish.List(p.RepoDir, "stable"); err != nil {
		t.Fatal(err)
	}
	// An export for a hand-off that takes weeks.
	r.ok("release", "export", "--repo", p.RepoDir, "--channel", "stable", "--out", export, "--keys", p.KeysDir, "--valid-for", "30d")
	if _, _, err := r.run("release", "export", "--repo", p.RepoDir, "--channel", "stable", "--out", export, "--valid-for", "30d"); err == nil {
		t.Fatal("--valid-for without --keys was accepted")
	}

	r.ok("installs", "revoke", activation.InstallID)
	hb, _ := json.Marshal(wire.Heartbeat{})
	if st := signed("POST", "/v1/heartbeat", hb); st != 401 {
		t.Fatalf("heartbeat after revoke: %d", st)
	}

	// registering the same file again is refused with the plane's reason
	if _, _, err := r.run("license", "register", "--file", lic); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("second register: %v", err)
	}
}

func TestCommandErrorsNameTheFix(t *testing.T) {
	r := runner{t: t, env: map[string]string{}}
	dir := t.TempDir()
	tests := []struct {
		args  []string
		usage bool
		want  string
	}{
		{[]string{"frobnicate"}, true, `unknown command "frobnicate"`},
		{[]string{"license", "issue", "--customer", "A"}, true, "--keys is required"},
		{[]string{"license", "issue", "--keys", dir, "--customer", "A", "--expires", "31/12/2027", "--out", "x"}, true, "want a date such as 2027-12-31"},
		{[]string{"license", "issue", "--keys", dir, "--customer", "A", "--expires", "2099-01-01", "--grace", "2 weeks", "--out", "x"}, true, "14d"},
		{[]string{"license", "issue", "--keys", dir, "--customer", "A", "--expires", "2099-01-01", "--channels", "Stable", "--out", "x"}, true, `"Stable" is not a channel name`},
		{[]string{"license", "issue", "--keys", dir, "--customer", "A", "--expires", "2099-01-01", "--entitlement", "workers", "--out", "x"}, true, "want NAME=VALUE"},
		{[]string{"installs", "list"}, true, "--plane-url"},
		{[]string{"installs", "list", "--plane-url", "ftp://x"}, true, "want http(s)://host"},
		{[]string{"installs", "list", "--plane-url", "http://127.0.0.1:1"}, true, "admin token"},
		{[]string{"installs", "list", "--output", "yaml"}, true, "want text or json"},
		{[]string{"keys", "init", "--dir", dir, "--root-keys", "2", "--root-threshold", "3"}, true, "between 1 and --root-keys"},
		{[]string{"release", "publish", "--keys", dir, "--repo", dir, "--version", "1.0.0", "--channel", "stable", "--min-from", "0.9.0", "--image", "api=nginx:latest"}, true, "pin by digest"},
		{[]string{"serve"}, true, "--data-dir is required"},
		{[]string{"serve", "--data-dir", dir, "--license-warn-days", "0"}, true, "--license-warn-days 0: must be between 1 and 365"},
		{[]string{"serve", "--data-dir", dir, "--dashboard-refresh", "100ms"}, true, "--dashboard-refresh 100ms: must be between 1s and 10m"},
		{[]string{"serve", "--data-dir", dir, "--repo", dir, "--objects", "s3://bucket"}, true, "drop --repo"},
		{[]string{"release", "refresh", "--keys", dir}, true, "--repo DIR or --objects"},
		{[]string{"release", "refresh", "--keys", dir, "--repo", dir, "--objects", "s3://bucket"}, true, "not both"},
		{[]string{"release", "refresh", "--keys", dir, "--objects", "s3://bucket"}, true, "--objects needs --database-url"},
		{[]string{"release", "list", "--repo", dir, "--objects", "s3://bucket"}, true, "not both"},
		{[]string{"release", "promote", "--keys", dir, "--repo", dir, "--from", "beta", "--to", "stable"}, true, "needs one VERSION"},
		{[]string{"release", "promote", "--keys", dir, "--repo", dir, "--from", "beta", "1.4.0"}, true, "--to is required"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, _, err := r.run(tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) || planecmd.IsUsage(err) != tt.usage {
				t.Fatalf("err = %v (usage %v); want %q", err, planecmd.IsUsage(err), tt.want)
			}
		})
	}
	// every command explains itself
	for _, args := range [][]string{{"serve"}, {"keys", "init"}, {"license", "issue"}, {"release", "publish"}, {"installs", "list"}, {"diag", "download"}} {
		_, errs, err := r.run(append(args, "--help")...)
		if err != nil || !strings.Contains(errs, "Usage: tether-plane "+strings.Join(args, " ")) {
			t.Fatalf("%v --help: %v\n%s", args, err, errs)
		}
	}
}

func TestKeysInitAndServe(t *testing.T) {
	dir := t.TempDir()
	r := runner{t: t, env: map[string]string{}}
	keys := filepath.Join(dir, "keys")
	if out := r.ok("keys", "init", "--dir", keys, "--root-keys", "3", "--root-threshold", "2"); !strings.Contains(out, "root.json") {
		t.Fatalf("keys init: %s", out)
	}
	if _, _, err := r.run("keys", "init", "--dir", keys); err == nil {
		t.Fatal("keys init overwrote existing keys")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	data, repo := filepath.Join(dir, "data"), filepath.Join(dir, "repo")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var logs bytes.Buffer
	go func() {
		done <- planecmd.Run(ctx, []string{"serve", "--data-dir", data, "--addr", addr, "--repo", repo, "--keys", keys},
			planecmd.Env{Stdout: io.Discard, Stderr: &syncWriter{w: &logs}, Getenv: func(string) string { return "" }})
	}()
	if !testtime.Wait(20*time.Second, func() bool { return healthy(addr) }) {
		cancel()
		t.Fatalf("plane did not become healthy:\n%s", logs.String())
	}
	fi, err := os.Stat(filepath.Join(data, "admin-token"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin token file: %v %v", fi, err)
	}
	tok, _ := os.ReadFile(filepath.Join(data, "admin-token"))
	lic := filepath.Join(dir, "l.json")
	ar := runner{t: t, env: map[string]string{"TETHER_PLANE_URL": "http://" + addr}}
	ar.ok("license", "issue", "--keys", keys, "--customer", "Served", "--expires", "2099-01-01", "--out", lic,
		"--admin-token-file", filepath.Join(data, "admin-token"))
	if out := ar.ok("license", "list", "--admin-token-file", filepath.Join(data, "admin-token")); !strings.Contains(out, "Served") {
		t.Fatalf("license list: %s", out)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve returned %v", err)
	}
	if strings.Contains(logs.String(), strings.TrimSpace(string(tok))) {
		t.Fatal("serve logged the admin token")
	}
	if !strings.Contains(logs.String(), `"msg":"plane listening"`) {
		t.Fatalf("serve logs are not JSON slog: %s", logs.String())
	}
}

// healthy reports whether the plane at addr answers /healthz with 200.
func healthy(addr string) bool {
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
