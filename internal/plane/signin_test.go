package plane_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/oauth2-proxy/mockoidc"

	"github.com/tetherhq/tether/internal/browsertest"
	"github.com/tetherhq/tether/internal/plane"
	"github.com/tetherhq/tether/internal/plane/planestore"
	"github.com/tetherhq/tether/internal/testtime"
)

// startProvider runs mockoidc: discovery, an authorization endpoint that
// checks PKCE, a token endpoint and JWKS, signing in whoever is queued.
func startProvider(t *testing.T) *mockoidc.MockOIDC {
	t.Helper()
	m, err := mockoidc.NewServer(nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ln, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Shutdown() })
	return m
}

func setupSignIn(t *testing.T, p *mockoidc.MockOIDC) *bundle {
	t.Helper()
	return setup(t, func(o *setupOpts) {
		o.oidc = func(planeURL string) *plane.OIDCConfig {
			return &plane.OIDCConfig{Issuer: p.Issuer(), ClientID: p.ClientID, ClientSecret: p.ClientSecret,
				RedirectURL: planeURL + plane.CallbackPath}
		}
	})
}

// browser is a cookie-keeping HTTP client that follows redirects, as a
// browser does.
type browser struct {
	t *testing.T
	c *http.Client
}

func newBrowser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, c: &http.Client{Jar: jar}}
}

func (br *browser) get(u string) (int, string, string) {
	br.t.Helper()
	resp, err := br.c.Get(u)
	if err != nil {
		br.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Request.URL.Path, string(b)
}

func (b *bundle) addStaff(t *testing.T, issuer, subject, name string, role planestore.Role) planestore.StaffMember {
	t.Helper()
	resp, out := b.admin(t, "POST", "/v1/admin/staff", planestore.StaffInput{Issuer: issuer, Subject: subject, Name: name, Role: role})
	if resp.StatusCode != 201 {
		t.Fatalf("add staff: %d %s", resp.StatusCode, out)
	}
	var m planestore.StaffMember
	mustJSON(t, out, &m)
	return m
}

func TestStaffSignIn(t *testing.T) {
	p := startProvider(t)
	b := setupSignIn(t, p)
	br := newBrowser(t)

	// Someone the provider knows but the plane does not: refused, told
	// what to ask for, and no session.
	p.QueueUser(&mockoidc.MockUser{Subject: "00u-mallory", Email: "mallory@vendor.example"})
	status, path, body := br.get(b.http.URL + "/login/oidc?next=/audit")
	if status != 403 || path != plane.CallbackPath || !strings.Contains(body, "not on this plane&#39;s staff list") ||
		!strings.Contains(body, "--subject 00u-mallory") {
		t.Fatalf("unknown staff: %d at %s:\n%s", status, path, body)
	}
	if _, path, _ := br.get(b.http.URL + "/"); path != "/login" {
		t.Fatalf("after a refused sign-in the dashboard is at %s, want /login", path)
	}

	alice := b.addStaff(t, p.Issuer(), "00u-alice", "alice@vendor.example", planestore.RoleSupport)
	p.QueueUser(&mockoidc.MockUser{Subject: "00u-alice", Email: "alice@vendor.example"})
	status, path, body = br.get(b.http.URL + "/login/oidc?next=/audit")
	if status != 200 || path != "/audit" || !strings.Contains(body, "alice@vendor.example (support)") || strings.Contains(body, `id="break-glass"`) {
		t.Fatalf("signed in: %d at %s:\n%s", status, path, body)
	}
	if !strings.Contains(body, "staff.login") {
		t.Fatalf("the audit page does not show the login:\n%s", body)
	}

	// A role change applies to the open session at once.
	if resp, out := b.admin(t, "POST", "/v1/admin/staff/"+alice.ID+"/role", plane.RoleBody{Role: planestore.RoleViewer}); resp.StatusCode != 200 {
		t.Fatalf("set role: %d %s", resp.StatusCode, out)
	}
	if _, _, body := br.get(b.http.URL + "/"); !strings.Contains(body, "alice@vendor.example (viewer)") {
		t.Fatalf("after the role change:\n%s", body)
	}
	// Removal ends the session.
	if resp, _ := b.admin(t, "DELETE", "/v1/admin/staff/"+alice.ID, nil); resp.StatusCode != 204 {
		t.Fatalf("remove: %d", resp.StatusCode)
	}
	if _, path, _ := br.get(b.http.URL + "/"); path != "/login" {
		t.Fatalf("a removed member's session still opens %s", path)
	}

	recs, err := b.store.Audit(b.ctx, planestore.AuditFilter{Action: "staff.login"})
	if err != nil || len(recs) != 1 || recs[0].Actor.ID != alice.ID || recs[0].Actor.Kind != planestore.KindStaff {
		t.Fatalf("login records: %+v, %v", recs, err)
	}
}

// A callback that does not match the browser's sign-in is refused: no
// state cookie, or a state that is not the one sent.
func TestStaffSignInRefusesForeignCallback(t *testing.T) {
	p := startProvider(t)
	b := setupSignIn(t, p)
	br := newBrowser(t)
	status, _, body := br.get(b.http.URL + plane.CallbackPath + "?state=abc&code=xyz")
	if status != 400 || !strings.Contains(body, "not started in this browser") {
		t.Fatalf("callback without a sign-in: %d\n%s", status, body)
	}
	// Start a sign-in but stop at the provider, then answer with another
	// state, as an attacker's injected response would.
	br.c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := br.c.Get(b.http.URL + "/login/oidc")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	auth, _ := url.Parse(resp.Header.Get("Location"))
	if q := auth.Query(); q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("nonce") == "" || q.Get("state") == "" {
		t.Fatalf("authorization request lacks PKCE S256, nonce or state: %s", auth)
	}
	br.c.CheckRedirect = nil
	status, _, body = br.get(b.http.URL + plane.CallbackPath + "?state=attacker&code=xyz")
	if status != 400 || !strings.Contains(body, "state does not match") {
		t.Fatalf("callback with another state: %d\n%s", status, body)
	}
	if _, path, _ := br.get(b.http.URL + "/"); path != "/login" {
		t.Fatalf("a refused callback opened %s", path)
	}
}

func TestStaffSignInInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	p := startProvider(t)
	// The plane as localhost, the provider as 127.0.0.1: different sites,
	// as in production, so the browser's SameSite rules apply.
	b := setup(t, func(o *setupOpts) {
		o.oidc = func(planeURL string) *plane.OIDCConfig {
			return &plane.OIDCConfig{Issuer: p.Issuer(), ClientID: p.ClientID, ClientSecret: p.ClientSecret,
				RedirectURL: strings.Replace(planeURL, "127.0.0.1", "localhost", 1) + plane.CallbackPath}
		}
	})
	site := strings.Replace(b.http.URL, "127.0.0.1", "localhost", 1)
	b.addStaff(t, p.Issuer(), "00u-alice", "alice@vendor.example", planestore.RoleAdmin)
	a := b.activate(t, b.license(t, "lic_acme", "stable"))
	// Something for the audit page to filter: another customer's record.
	if err := b.store.AppendAudit(b.ctx, boss, planestore.AuditEntry{Action: "install.revoke", Customer: "Globex", InstallID: "in_globex"}); err != nil {
		t.Fatal(err)
	}

	ctx := browsertest.New(t)
	css := func(sel string) chromedp.CSS { return chromedp.CSS(sel) }
	p.QueueUser(&mockoidc.MockUser{Subject: "00u-alice", Email: "alice@vendor.example"})
	err := chromedp.Do(ctx,
		chromedp.Navigate(site+"/installs/"+a.id),
		chromedp.WaitVisible(css(`#staff-signin`)),
		chromedp.Click(css(`#staff-signin`)),
		chromedp.WaitVisible(css(`#who`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	who, _ := chromedp.Run(ctx, chromedp.Text(css(`#who`)))
	if !strings.HasSuffix(loc, "/installs/"+a.id) || who != "alice@vendor.example (administrator)" {
		t.Fatalf("after sign-in: %s, signed in as %q", loc, who)
	}
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#break-glass").length`)); err != nil || n != 0 {
		t.Fatalf("a staff session shows the break-glass banner (%d, %v)", n, err)
	}
	// The audit page, filtered to one customer.
	err = chromedp.Do(ctx,
		chromedp.Navigate(site+"/audit"),
		chromedp.WaitVisible(css(`#audit-filter`)),
		chromedp.SendKeys(css(`#audit-filter input[name=customer]`), "Globex"),
		chromedp.Submit(css(`#audit-filter input[name=customer]`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	// The unfiltered page already has rows: wait for the filtered one.
	testtime.Until(t, 20*time.Second, "the audit page filtered to Globex", func() bool {
		loc, err := chromedp.Run(ctx, chromedp.Location())
		return err == nil && strings.Contains(loc, "customer=Globex")
	})
	err = chromedp.Do(ctx, chromedp.WaitVisible(css(`#audit tbody td.customer`)))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#audit tbody tr")].map(r => r.querySelector(".action").textContent + " " + r.querySelector(".customer").textContent)`))
	if err != nil || len(rows) != 1 || rows[0] != "install.revoke Globex" {
		t.Fatalf("audit rows for Globex: %q (%v)", rows, err)
	}

	// The break-glass token still logs in, under a banner.
	err = chromedp.Do(ctx,
		chromedp.Click(css(`form[action="/logout"] button`)),
		chromedp.WaitVisible(css(`input[name=token]`)),
		chromedp.SendKeys(css(`input[name=token]`), adminToken),
		chromedp.Submit(css(`input[name=token]`)),
		chromedp.WaitVisible(css(`#break-glass`)),
	)
	if err != nil {
		t.Fatal(err)
	}
}

func mustJSON(t *testing.T, data []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%v in %s", err, data)
	}
}

// With the admin token turned off, it opens neither the API nor the
// dashboard, the login page does not offer it, and staff still sign in.
func TestNoAdminToken(t *testing.T) {
	p := startProvider(t)
	nb := setup(t, func(o *setupOpts) {
		o.noAdminToken = true
		o.oidc = func(planeURL string) *plane.OIDCConfig {
			return &plane.OIDCConfig{Issuer: p.Issuer(), ClientID: p.ClientID, ClientSecret: p.ClientSecret,
				RedirectURL: planeURL + plane.CallbackPath}
		}
	})
	if resp, _ := nb.admin(t, "GET", "/v1/admin/installs", nil); resp.StatusCode != 401 {
		t.Fatalf("admin token with NoAdminToken: %d, want 401", resp.StatusCode)
	}
	br := newBrowser(t)
	if _, _, body := br.get(nb.http.URL + "/login"); strings.Contains(body, `name="token"`) || !strings.Contains(body, `id="staff-signin"`) {
		t.Fatalf("login page offers the admin token:\n%s", body)
	}
	resp, err := br.c.PostForm(nb.http.URL+"/login", url.Values{"token": {adminToken}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("dashboard login with the admin token: %d, want 401", resp.StatusCode)
	}
	// A session opened with the admin token before the plane was restarted
	// with it turned off ends too.
	before, err := plane.New(plane.Config{Store: nb.store, Logger: slog.New(slog.DiscardHandler), Now: nb.clock.Now,
		DataDir: t.TempDir(), AdminToken: adminToken})
	if err != nil {
		t.Fatal(err)
	}
	old := httptest.NewServer(before.Handler())
	defer old.Close()
	if resp, err := br.c.PostForm(old.URL+"/login", url.Values{"token": {adminToken}}); err != nil || resp.Request.URL.Path != "/" {
		t.Fatalf("admin token login before: %v", err)
	}
	oldURL, _ := url.Parse(old.URL)
	newURL, _ := url.Parse(nb.http.URL)
	br.c.Jar.SetCookies(newURL, br.c.Jar.Cookies(oldURL))
	if _, path, _ := br.get(nb.http.URL + "/"); path != "/login" {
		t.Fatalf("an admin token session opened %s on a plane without the admin token", path)
	}
	if _, err := nb.store.AddStaff(nb.ctx, planestore.StaffInput{Issuer: p.Issuer(), Subject: "00u-root", Name: "root@vendor.example", Role: planestore.RoleAdmin}, boss); err != nil {
		t.Fatal(err)
	}
	p.QueueUser(&mockoidc.MockUser{Subject: "00u-root"})
	if status, path, body := br.get(nb.http.URL + "/login/oidc"); status != 200 || path != "/" || !strings.Contains(body, "root@vendor.example (administrator)") {
		t.Fatalf("staff sign-in without the admin token: %d at %s", status, path)
	}
}

// A provider that is down keeps staff out of the dashboard, never agents
// out of the plane: discovery waits for the first sign-in, and a failed one
// is tried again at the next.
func TestProviderDownAtStart(t *testing.T) {
	b := setup(t, func(o *setupOpts) {
		o.oidc = func(planeURL string) *plane.OIDCConfig {
			return &plane.OIDCConfig{Issuer: "http://127.0.0.1:1/unreachable", ClientID: "plane",
				RedirectURL: planeURL + plane.CallbackPath}
		}
	})
	a := b.activate(t, b.license(t, "lic_acme", "stable"))
	a.heartbeat(t, "ok")
	status, _, body := newBrowser(t).get(b.http.URL + "/login/oidc")
	if status != http.StatusBadGateway || !strings.Contains(body, "cannot be reached now") {
		t.Fatalf("sign-in while the provider is down: %d\n%s", status, body)
	}
}
