package plane_test

import (
	"bytes"
	"crypto/ed25519"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tetherhq/tether/internal/license"
	"github.com/tetherhq/tether/internal/license/issuer"
	"github.com/tetherhq/tether/internal/plane"
	"github.com/tetherhq/tether/internal/plane/planestore"
)

// staff is a dashboard session of one role, started as a sign-in would.
type staff struct {
	b      *bundle
	role   planestore.Role
	cookie string
	csrf   string
}

func (b *bundle) staff(t *testing.T, role planestore.Role) *staff {
	t.Helper()
	p := planestore.Principal{Kind: planestore.KindStaff, ID: "idp|" + string(role), Name: string(role) + "@vendor.example", Role: role}
	cookie, csrf, err := b.server.StartSession(b.ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	return &staff{b: b, role: role, cookie: cookie, csrf: csrf}
}

// do sends a dashboard request with the session cookie, not following
// redirects, and returns the status, Location and body.
func (s *staff) do(t *testing.T, method, path, contentType string, body []byte) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(method, s.b.http.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.AddCookie(&http.Cookie{Name: plane.SessionCookie, Value: s.cookie})
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(out)
}

func (s *staff) get(t *testing.T, path string) (int, string) {
	t.Helper()
	code, _, body := s.do(t, "GET", path, "", nil)
	return code, body
}

func (s *staff) post(t *testing.T, path string, form url.Values) (int, string, string) {
	t.Helper()
	return s.do(t, "POST", path, "application/x-www-form-urlencoded", []byte(form.Encode()))
}

// upload posts a license file as the dashboard's form does.
func (s *staff) upload(t *testing.T, csrf string, file []byte) (int, string, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	_ = mw.WriteField("csrf", csrf)
	fw, _ := mw.CreateFormFile("file", "acme.license.json")
	_, _ = fw.Write(file)
	_ = mw.Close()
	return s.do(t, "POST", "/licenses", mw.FormDataContentType(), buf.Bytes())
}

// issue signs a license as tether-plane license issue does.
func issue(t *testing.T, key ed25519.PrivateKey, id string, now time.Time) (file []byte, token string) {
	t.Helper()
	file, token, err := issuer.Issue(key, license.License{ID: id, Customer: "Customer " + id, IssuedAt: now,
		ExpiresAt: now.Add(365 * 24 * time.Hour), GraceSeconds: 86400, Channels: []string{"stable"}})
	if err != nil {
		t.Fatal(err)
	}
	return file, token
}

func must(file []byte, _ string) []byte { return file }

// Every dashboard action is refused (403) to a role that does not allow
// it and to a form without the session's CSRF token, whatever the page
// showed; the allowed ones run the admin API's code.
func TestDashboardActionsByRole(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	b := setup(t, func(o *setupOpts) { o.licenseKey = pub })
	a := b.activate(t, b.license(t, "lic_a", "stable"))
	viewer, support, release, admin := b.staff(t, planestore.RoleViewer), b.staff(t, planestore.RoleSupport),
		b.staff(t, planestore.RoleRelease), b.staff(t, planestore.RoleAdmin)
	diag := func(s *staff, csrf string) (int, string, string) {
		return s.post(t, "/installs/"+a.id+"/diagnostics", url.Values{"csrf": {csrf}, "reason": {"queue age since 1.4.0 (" + string(s.role) + ")"}})
	}
	pending := func() int {
		ds, err := b.store.Diagnostics(b.ctx, a.id, planestore.DiagRequested)
		if err != nil {
			t.Fatal(err)
		}
		return len(ds)
	}

	// Diagnostics: support and administrator; never without the token.
	for _, s := range []*staff{viewer, release} {
		if code, _, body := diag(s, s.csrf); code != 403 || !strings.Contains(body, "may not diagnostics.request") {
			t.Errorf("%s requested diagnostics: %d", s.role, code)
		}
	}
	for _, csrf := range []string{"", support.csrf + "x", admin.csrf} {
		if code, _, body := diag(support, csrf); code != 403 || !strings.Contains(body, "CSRF token") {
			t.Errorf("support with form token %q: %d", csrf, code)
		}
	}
	if n := pending(); n != 0 {
		t.Fatalf("refused requests recorded %d diagnostics", n)
	}
	if code, loc, body := support.post(t, "/installs/"+a.id+"/diagnostics", url.Values{"csrf": {support.csrf}, "reason": {""}}); code != 400 ||
		!strings.Contains(body, "reason must be 1-1000 bytes") {
		t.Errorf("empty reason: %d %s", code, loc)
	}
	for _, s := range []*staff{support, admin} {
		if code, loc, _ := diag(s, s.csrf); code != 303 || !strings.HasPrefix(loc, "/installs/"+a.id+"?requested=dg_") {
			t.Errorf("%s requested diagnostics: %d to %q", s.role, code, loc)
		}
	}
	if n := pending(); n != 2 {
		t.Fatalf("%d pending diagnostics, want 2", n)
	}

	// What each role's install page offers.
	for _, tc := range []struct {
		s            *staff
		diag, revoke bool
	}{{viewer, false, false}, {support, true, false}, {release, false, false}, {admin, true, true}} {
		code, body := tc.s.get(t, "/installs/"+a.id)
		if code != 200 || strings.Contains(body, `id="request-diagnostics"`) != tc.diag || strings.Contains(body, `id="revoke"`) != tc.revoke ||
			!strings.Contains(body, string(tc.s.role)+"@vendor.example ("+string(tc.s.role)+")") {
			t.Errorf("%s's install page: %d, diagnostics form %v, revoke link %v", tc.s.role, code, !tc.diag, !tc.revoke)
		}
	}

	// Bundle download: support and administrator.
	d, err := b.store.Diagnostics(b.ctx, a.id, planestore.DiagRequested)
	if err != nil {
		t.Fatal(err)
	}
	bundleZip := zipBundle(t, map[string]string{"health.json": `{"ok":true}`})
	if resp, out := a.do(t, "POST", "/v1/diagnostics/"+d[0].ID+"/bundle", bundleZip); resp.StatusCode != 204 {
		t.Fatalf("upload: %d %s", resp.StatusCode, out)
	}
	for _, s := range []*staff{viewer, release} {
		if code, _ := s.get(t, "/diagnostics/"+d[0].ID+"/bundle"); code != 403 {
			t.Errorf("%s downloaded a bundle: %d", s.role, code)
		}
		if _, body := s.get(t, "/installs/"+a.id); strings.Contains(body, "/diagnostics/"+d[0].ID+"/bundle") {
			t.Errorf("%s is shown the download link", s.role)
		}
	}
	if code, body := support.get(t, "/diagnostics/"+d[0].ID+"/bundle"); code != 200 || body != string(bundleZip) {
		t.Errorf("support download: %d, %d bytes", code, len(body))
	}
	if code, body := support.get(t, "/diagnostics/"+d[1].ID+"/bundle"); code != 409 || !strings.Contains(body, "no bundle uploaded yet") {
		t.Errorf("download before upload: %d", code)
	}

	// License registration: administrator only, the file as issued.
	file, token := issue(t, priv, "lic_new", b.clock.Now())
	for _, s := range []*staff{viewer, support, release} {
		if code, _, _ := s.upload(t, s.csrf, file); code != 403 {
			t.Errorf("%s registered a license: %d", s.role, code)
		}
	}
	if code, _, _ := admin.upload(t, "", file); code != 403 {
		t.Errorf("license upload without the form token: %d", code)
	}
	_, otherPriv, _ := ed25519.GenerateKey(nil)
	if code, _, body := admin.upload(t, admin.csrf, must(issue(t, otherPriv, "lic_forged", b.clock.Now()))); code != 400 ||
		!strings.Contains(body, "does not verify with this plane&#39;s license key") {
		t.Errorf("license signed by another key: %d", code)
	}
	if code, _, body := admin.upload(t, admin.csrf, []byte("{not json")); code != 400 || !strings.Contains(body, "license file is not JSON") {
		t.Errorf("garbage license: %d %s", code, body)
	}
	if code, loc, _ := admin.upload(t, admin.csrf, file); code != 303 || loc != "/licenses#license-lic_new" {
		t.Fatalf("admin registered a license: %d to %q", code, loc)
	}
	if code, _, body := admin.upload(t, admin.csrf, file); code != 409 || !strings.Contains(body, "already exists") {
		t.Errorf("second registration: %d", code)
	}
	ls, _ := b.store.Licenses(b.ctx)
	var got []string
	for _, l := range ls {
		got = append(got, l.ID+":"+l.TokenHash)
	}
	// The plane keeps the token's hash, as the CLI's registration does.
	if want := "lic_new:" + issuer.TokenHash(token); len(ls) != 2 || !slices.Contains(got, want) {
		t.Fatalf("licenses after upload: %v, want %s among them", got, want)
	}
	_, body := viewer.get(t, "/licenses")
	if !strings.Contains(body, `id="license-lic_new"`) || strings.Contains(body, `id="register-license"`) {
		t.Errorf("viewer's licenses page: form shown or license missing")
	}

	// Revoke: administrator only, after a confirmation page.
	for _, s := range []*staff{viewer, support, release} {
		if code, _ := s.get(t, "/installs/"+a.id+"/revoke"); code != 403 {
			t.Errorf("%s opened the revoke page: %d", s.role, code)
		}
		if code, _, _ := s.post(t, "/installs/"+a.id+"/revoke", url.Values{"csrf": {s.csrf}}); code != 403 {
			t.Errorf("%s revoked: %d", s.role, code)
		}
	}
	if code, _, _ := admin.post(t, "/installs/"+a.id+"/revoke", nil); code != 403 {
		t.Errorf("revoke without the form token: %d", code)
	}
	if in, _ := b.store.Install(b.ctx, a.id); in.Revoked {
		t.Fatal("a refused revoke revoked the install")
	}
	if code, body := admin.get(t, "/installs/"+a.id+"/revoke"); code != 200 || !strings.Contains(body, `value="`+admin.csrf+`"`) {
		t.Errorf("revoke confirmation: %d", code)
	}
	if code, loc, _ := admin.post(t, "/installs/"+a.id+"/revoke", url.Values{"csrf": {admin.csrf}}); code != 303 || loc != "/installs/"+a.id {
		t.Fatalf("admin revoke: %d to %q", code, loc)
	}
	if in, _ := b.store.Install(b.ctx, a.id); !in.Revoked {
		t.Fatal("install not revoked")
	}
	if resp, _ := a.do(t, "POST", "/v1/heartbeat", heartbeatJSON(t, b.clock.Now(), "ok")); resp.StatusCode != 401 {
		t.Errorf("revoked install's heartbeat: %d", resp.StatusCode)
	}

	// A role the plane does not know may not even look.
	if code, _ := b.staff(t, planestore.Role("auditor")).get(t, "/"); code != 403 {
		t.Errorf("unknown role opened the fleet: %d", code)
	}

	// A session that ended is no session: its form token opens nothing.
	if code, loc, _ := (&staff{b: b, cookie: strings.Repeat("0", 64)}).post(t, "/installs/"+a.id+"/diagnostics",
		url.Values{"csrf": {support.csrf}, "reason": {"x"}}); code != 303 || !strings.HasPrefix(loc, "/login") {
		t.Errorf("POST without a session: %d to %q", code, loc)
	}
}

// The fleet page's filter is checked; the refresh route and script are the
// plane's own, under the same policy.
func TestDashboardFleetQueryAndAssets(t *testing.T) {
	b := setup(t)
	v := b.staff(t, planestore.RoleViewer)
	code, body := v.get(t, "/")
	if code != 200 || !strings.Contains(body, "No installs have activated yet") {
		t.Fatalf("empty fleet: %d", code)
	}
	a := b.activate(t, b.license(t, "lic_a", "stable"))
	a.heartbeat(t, "degraded")
	if code, body := v.get(t, "/?health=sick"); code != 400 || !strings.Contains(body, "health &#34;sick&#34; is not one of ok, degraded, down, unknown") {
		t.Errorf("bad health filter: %d %s", code, body)
	}
	if code, body := v.get(t, "/fleet/rows?sort=nope"); code != 400 || !strings.Contains(body, "sort &#34;nope&#34; is not a column") {
		t.Errorf("bad sort on the refresh route: %d", code)
	}
	if _, body := v.get(t, "/?health=ok"); !strings.Contains(body, "No install matches these filters") {
		t.Errorf("filter matching nothing: no empty state")
	}
	// A license 10 days from expiry is flagged with its date, and is what
	// only=expiring shows.
	soon := b.activate(t, b.license(t, "lic_soon", "stable"))
	if _, err := b.store.DB().ExecContext(b.ctx, `UPDATE plane_licenses SET expires_at = $1 WHERE id = 'lic_soon'`,
		b.clock.Now().Add(10*24*time.Hour+time.Hour).UnixMilli()); err != nil {
		t.Fatal(err)
	}
	_, body = v.get(t, "/")
	if !strings.Contains(body, `<tr id="expiring-`+soon.id+`">`) || !strings.Contains(body, "2026-11-11") ||
		!strings.Contains(body, "10 days left") || strings.Contains(body, `id="expiring-`+a.id+`"`) {
		t.Errorf("expiring flags: %s", body)
	}
	_, body = v.get(t, "/?only=expiring")
	if !strings.Contains(body, `id="install-`+soon.id+`"`) || strings.Contains(body, `id="install-`+a.id+`"`) {
		t.Errorf("only=expiring shows the wrong installs")
	}
	code, body = v.get(t, "/fleet/rows?health=degraded&sort=customer")
	if code != 200 || !strings.Contains(body, `id="install-`+a.id+`"`) || !strings.Contains(body, `id="installs-body"`) {
		t.Errorf("refresh route: %d %s", code, body)
	}
	resp, err := http.Get(b.http.URL + "/static/fleet.js")
	if err != nil {
		t.Fatal(err)
	}
	js, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/javascript; charset=utf-8" ||
		resp.Header.Get("X-Content-Type-Options") != "nosniff" || !strings.Contains(string(js), "/fleet/rows") {
		t.Errorf("fleet.js: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	req, _ := http.NewRequest("GET", b.http.URL+"/", nil)
	req.AddCookie(&http.Cookie{Name: plane.SessionCookie, Value: v.cookie})
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-eval") ||
		strings.Contains(csp, "script-src 'self' 'unsafe-inline'") {
		t.Errorf("CSP %q", csp)
	}
}
