package plane_test

import (
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tetherhq/tether/internal/browsertest"
	"github.com/tetherhq/tether/internal/plane/planestore"
	"github.com/tetherhq/tether/internal/wire"
)

func TestDashboardInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	b := setup(t)
	fresh := b.activate(t, b.license(t, "lic_fresh", "stable"))
	quiet := b.activate(t, b.license(t, "lic_quiet", "stable", "beta"))
	quiet.heartbeat(t, "ok")
	b.clock.Advance(5 * time.Minute) // quiet misses five 60s intervals
	fresh.heartbeat(t, "degraded")
	if _, err := b.store.RequestDiagnostic(b.ctx, planestore.NewDiagnosticID(), fresh.id, "worker restarts after 1.4.0", staffAna); err != nil {
		t.Fatal(err)
	}

	ctx := browsertest.New(t)
	css := func(sel string) chromedp.CSS { return chromedp.CSS(sel) }
	text := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Text(css(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return v
	}
	class := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.AttributeValue(css(sel), "class"))
		if err != nil {
			t.Fatalf("class of %s: %v", sel, err)
		}
		return v.Value
	}
	// no session: the dashboard sends the browser to the login form
	if err := chromedp.Do(ctx, chromedp.Navigate(b.http.URL+"/"), chromedp.WaitVisible(css(`input[name=token]`))); err != nil {
		t.Fatal(err)
	}
	if loc, err := chromedp.Run(ctx, chromedp.Location()); err != nil || !strings.Contains(loc, "/login") {
		t.Errorf("unauthenticated visit landed on %s (%v), want the login form", loc, err)
	}
	err := chromedp.Do(ctx,
		chromedp.SendKeys(css(`input[name=token]`), adminToken),
		chromedp.Submit(css(`input[name=token]`)),
		chromedp.WaitVisible(css(`#installs`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	freshRow, quietRow := `#install-`+fresh.id, `#install-`+quiet.id
	if fc, qc := class(freshRow), class(quietRow); strings.Contains(fc, "stale") || !strings.Contains(qc, "stale") {
		t.Errorf("row classes: fresh %q, quiet %q; want only quiet stale", fc, qc)
	}
	if age, flag := text(quietRow+` .age`), text(quietRow+` .stale-flag-cell`); age != "5m ago" || flag != "STALE" {
		t.Errorf("quiet age cell %q, stale cell %q; want 5m ago, STALE", age, flag)
	}
	if flag := text(freshRow + ` .stale-flag-cell`); flag != "–" {
		t.Errorf("fresh stale cell %q", flag)
	}
	for sel, want := range map[string]string{
		freshRow + ` .health`: "degraded", freshRow + ` .customer`: "Customer lic_fresh",
		freshRow + ` .version`: "1.4.0", freshRow + ` .channel`: "stable", freshRow + ` .license`: "valid, 2027-01-30 (89 days left)",
		quietRow + ` .health`: "ok", `#stale-count`: "1", `#stale-` + quiet.id + ` .age`: "5m ago (2026-11-01 12:00)",
	} {
		if got := text(sel); got != want {
			t.Errorf("%s shows %q, want %q", sel, got, want)
		}
	}
	if pending := text(`#pending`); !strings.Contains(pending, "worker restarts after 1.4.0") || !strings.Contains(pending, fresh.id) {
		t.Errorf("pending diagnostics: %q", pending)
	}
	if err := chromedp.Do(ctx, chromedp.Click(css(freshRow+` a`)), chromedp.WaitVisible(css(`#history`))); err != nil {
		t.Fatal(err)
	}
	if history := text(`#history tbody`); !strings.Contains(history, "degraded") || !strings.Contains(history, "worker=degraded") {
		t.Errorf("history table: %q", history)
	}
	if l := text(`#ledger`); !strings.Contains(l, "no head reported") || strings.Contains(l, "LEDGER") {
		t.Errorf("ledger cell of an agent without heads: %q", l)
	}

	// An install whose ledger head went back shows the head it had and the problem.
	cut := b.activate(t, b.license(t, "lic_cut", "stable"))
	for _, h := range []wire.LedgerHead{{Count: 7, SHA256: strings.Repeat("7a", 32)}, {Count: 2, SHA256: strings.Repeat("2b", 32)}} {
		if resp, out := cut.do(t, "POST", "/v1/heartbeat", heartbeatWithHead(t, b.clock.Now(), "ok", h)); resp.StatusCode != 200 {
			t.Fatalf("heartbeat with head %+v: %d %s", h, resp.StatusCode, out)
		}
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(b.http.URL+"/installs/"+cut.id), chromedp.WaitVisible(css(`#ledger`))); err != nil {
		t.Fatal(err)
	}
	want := "7:" + strings.Repeat("7a", 32)
	if l := text(`#ledger`); !strings.Contains(l, "--expect-head "+want) || !strings.Contains(l, "LEDGER") ||
		!strings.Contains(l, "went back from "+want+" to 2:") {
		t.Errorf("ledger cell after a rewind: %q", l)
	}

	// An install reports its release and last upgrade attempt: the fleet
	// and the install page show them; one that reports none shows a dash.
	upgraded := b.activate(t, b.license(t, "lic_upgraded", "stable"))
	var hb wire.Heartbeat
	if err := json.Unmarshal(heartbeatWithHead(t, b.clock.Now(), "ok", wire.LedgerHead{}), &hb); err != nil {
		t.Fatal(err)
	}
	hb.Release = "1.4.0"
	hb.LastUpgrade = wire.UpgradeAttempt{Version: "1.5.0", Action: "upgrade", Outcome: "rolled-back", Reason: "alarm",
		At: time.Date(2026, 12, 6, 2, 30, 0, 0, time.UTC)}
	hb.Warnings = []string{"certificate-expiry", "queue-age"}
	body, _ := json.Marshal(hb)
	if resp, out := upgraded.do(t, "POST", "/v1/heartbeat", body); resp.StatusCode != 200 {
		t.Fatalf("heartbeat with a release: %d %s", resp.StatusCode, out)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(b.http.URL+"/"), chromedp.WaitVisible(css(`#installs`))); err != nil {
		t.Fatal(err)
	}
	upRow := `#install-` + upgraded.id
	for sel, want := range map[string]string{
		upRow + ` .release`:     "1.4.0",
		upRow + ` .upgrade`:     "upgrade to 1.5.0: rolled-back (alarm), 2026-12-06 02:30",
		upRow + ` .health`:      "ok",
		upRow + ` .warnings`:    "certificate-expiry queue-age",
		freshRow + ` .warnings`: "–",
		freshRow + ` .release`:  "–",
		freshRow + ` .upgrade`:  "–",
	} {
		if got := text(sel); got != want {
			t.Errorf("%s shows %q, want %q", sel, got, want)
		}
	}
	if c := class(upRow + ` .upgrade span`); c != "u-rolled-back" {
		t.Errorf("last upgrade class %q", c)
	}
	if err := chromedp.Do(ctx, chromedp.Click(css(upRow+` a`)), chromedp.WaitVisible(css(`#release`))); err != nil {
		t.Fatal(err)
	}
	if r := text(`#release`); r != "1.4.0; last upgrade: upgrade to 1.5.0: rolled-back (alarm), 2026-12-06 02:30" {
		t.Errorf("install page release: %q", r)
	}
	if w := text(`#warnings`); w != "certificate-expiry queue-age" {
		t.Errorf("install page warnings: %q", w)
	}
}

func TestDashboardAuth(t *testing.T) {
	b := setup(t)
	jar, _ := cookiejar.New(nil)
	noRedirect := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Get(b.http.URL + "/")
	if err != nil || resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login") {
		t.Fatalf("anonymous: %v %v", resp.StatusCode, err)
	}
	// The admin token is never accepted in a URL (proxies log URLs).
	resp, _ = noRedirect.Get(b.http.URL + "/?token=" + url.QueryEscape(adminToken))
	if !strings.HasPrefix(resp.Header.Get("Location"), "/login") || len(resp.Cookies()) != 0 {
		t.Fatalf("?token= logged in: redirected to %q", resp.Header.Get("Location"))
	}
	resp, _ = noRedirect.PostForm(b.http.URL+"/login", url.Values{"token": {"wrong"}})
	if resp.StatusCode != http.StatusUnauthorized || len(resp.Cookies()) != 0 {
		t.Fatalf("wrong token: %d", resp.StatusCode)
	}
	resp, _ = noRedirect.PostForm(b.http.URL+"/login", url.Values{"token": {adminToken}, "next": {"/"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("token login: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	var session *http.Cookie
	for _, c := range resp.Cookies() {
		session = c
	}
	if session == nil || !session.HttpOnly || session.SameSite != http.SameSiteStrictMode || session.Value == adminToken {
		t.Fatalf("cookie %+v", session)
	}
	resp, _ = noRedirect.Get(b.http.URL + "/")
	if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Fatalf("with cookie: %d", resp.StatusCode)
	}
	// the cookie is not an API credential
	req, _ := http.NewRequest("GET", b.http.URL+"/v1/admin/installs", nil)
	req.Header.Set("Authorization", "Bearer "+session.Value)
	if resp, _ := http.DefaultClient.Do(req); resp.StatusCode != 401 {
		t.Fatalf("cookie as bearer: %d", resp.StatusCode)
	}
	// Logging out ends the session on the server: a copy of the cookie no
	// longer opens the dashboard.
	stolen := session.Value
	req, _ = http.NewRequest("POST", b.http.URL+"/logout", nil)
	req.AddCookie(&http.Cookie{Name: session.Name, Value: stolen})
	if resp, err := noRedirect.Do(req); err != nil || resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %v", err)
	}
	req, _ = http.NewRequest("GET", b.http.URL+"/", nil)
	req.AddCookie(&http.Cookie{Name: session.Name, Value: stolen})
	if resp, _ := (&http.Client{CheckRedirect: noRedirect.CheckRedirect}).Do(req); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("a logged-out session still opens the dashboard: %d", resp.StatusCode)
	}
	// login form's next cannot leave the site
	for _, next := range []string{"//evil.example/", "/\t/evil.example", "/\\evil.example", "https://evil.example/"} {
		resp, _ = noRedirect.PostForm(b.http.URL+"/login", url.Values{"token": {adminToken}, "next": {next}})
		if resp.Header.Get("Location") != "/" {
			t.Fatalf("next %q: open redirect to %q", next, resp.Header.Get("Location"))
		}
	}
}
