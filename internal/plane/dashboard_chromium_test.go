package plane_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tetherhq/tether/internal/browsertest"
	"github.com/tetherhq/tether/internal/plane"
	"github.com/tetherhq/tether/internal/plane/planestore"
)

// browse opens a Chromium tab on the plane.
func browse(t *testing.T, b *bundle) *browserTab {
	t.Helper()
	return &browserTab{t: t, b: b, ctx: browsertest.New(t)}
}

// browserTab drives one Chromium tab through the dashboard.
type browserTab struct {
	t   *testing.T
	b   *bundle
	ctx context.Context
}

// signIn puts s's session cookie into the browser, as a sign-in would
// have, and opens path.
func (bt *browserTab) signIn(s *staff, path, waitFor string) {
	bt.t.Helper()
	set := `(document.cookie = "` + plane.SessionCookie + `=` + s.cookie + `; path=/; SameSite=Strict", true)`
	bt.do(chromedp.Navigate(bt.b.http.URL+"/login"), chromedp.WaitVisible(chromedp.CSS(`form`)))
	if _, err := chromedp.Run(bt.ctx, chromedp.Evaluate[bool](set)); err != nil {
		bt.t.Fatalf("set session cookie: %v", err)
	}
	bt.do(chromedp.Navigate(bt.b.http.URL+path), chromedp.WaitVisible(chromedp.CSS(waitFor)))
}

func (bt *browserTab) do(steps ...chromedp.Action[chromedp.Void]) {
	bt.t.Helper()
	if err := chromedp.Do(bt.ctx, steps...); err != nil {
		bt.t.Fatal(err)
	}
}

func (bt *browserTab) text(sel string) string {
	bt.t.Helper()
	v, err := chromedp.Run(bt.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		bt.t.Fatalf("text of %s: %v", sel, err)
	}
	return v
}

func (bt *browserTab) eval(js string) bool {
	bt.t.Helper()
	v, err := chromedp.Run(bt.ctx, chromedp.Evaluate[bool](js))
	if err != nil {
		bt.t.Fatalf("%s: %v", js, err)
	}
	return v
}

// live reads an element's text in one evaluation, so a refresh swapping
// the element in between cannot fail the read.
func (bt *browserTab) live(sel string) string {
	bt.t.Helper()
	v, err := chromedp.Run(bt.ctx, chromedp.Evaluate[string](`(document.querySelector(`+strconv.Quote(sel)+`) || {innerText: ""}).innerText.trim()`))
	if err != nil {
		bt.t.Fatalf("text of %s: %v", sel, err)
	}
	return v
}

// appears waits, in the page, until sel matches: the refresh changes the
// DOM, never the page, so the wait is on the DOM and not the clock.
func (bt *browserTab) appears(sel string) {
	bt.t.Helper()
	if _, err := chromedp.Run(bt.ctx, chromedp.Poll[bool](`document.querySelector(`+strconv.Quote(sel)+`) !== null`, chromedp.WithPollingTimeout(0))); err != nil {
		bt.t.Fatalf("waiting for %s: %v", sel, err)
	}
}

func (bt *browserTab) present(sel string) bool {
	bt.t.Helper()
	return bt.eval(`document.querySelector(` + strconv.Quote(sel) + `) !== null`)
}

// Role by role, in the browser: what each role is shown and which actions
// work; a viewer who forges the diagnostics form gets 403 all the same.
func TestDashboardRolesInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	pub, priv, _ := ed25519.GenerateKey(nil)
	b := setup(t, func(o *setupOpts) { o.licenseKey = pub })
	a := b.activate(t, b.license(t, "lic_a", "stable"))
	a.heartbeat(t, "ok")
	d, err := b.store.RequestDiagnostic(b.ctx, planestore.NewDiagnosticID(), a.id, "first look", staffAna)
	if err != nil {
		t.Fatal(err)
	}
	if resp, out := a.do(t, "POST", "/v1/diagnostics/"+d.ID+"/bundle", zipBundle(t, map[string]string{"health.json": "{}"})); resp.StatusCode != 204 {
		t.Fatalf("upload: %d %s", resp.StatusCode, out)
	}
	installPage := "/installs/" + a.id
	for _, tc := range []struct {
		role                          planestore.Role
		diag, revoke, download, issue bool
	}{
		{planestore.RoleViewer, false, false, false, false},
		{planestore.RoleSupport, true, false, true, false},
		{planestore.RoleRelease, false, false, false, false},
		{planestore.RoleAdmin, true, true, true, true},
	} {
		t.Run(string(tc.role), func(t *testing.T) {
			s := b.staff(t, tc.role)
			bt := browse(t, b)
			bt.signIn(s, installPage, `#history`)
			if who := bt.text(`#who`); who != string(tc.role)+"@vendor.example ("+string(tc.role)+")" {
				t.Errorf("signed in as %q", who)
			}
			for sel, want := range map[string]bool{`#request-diagnostics`: tc.diag, `#revoke`: tc.revoke,
				`#diag-` + d.ID + ` a.download`: tc.download} {
				if got := bt.present(sel); got != want {
					t.Errorf("%s shown: %v, want %v", sel, got, want)
				}
			}
			if tc.diag {
				reason := "queue age rising, asked by " + string(tc.role)
				bt.do(chromedp.SendKeys(chromedp.CSS(`#request-diagnostics input[name=reason]`), reason),
					chromedp.Submit(chromedp.CSS(`#request-diagnostics input[name=reason]`)),
					chromedp.WaitVisible(chromedp.CSS(`#requested`)))
				if got := bt.text(`#requested`); !strings.Contains(got, reason) {
					t.Errorf("diagnostics after the request: %q", got)
				}
			} else {
				// Forge the form the page does not offer, with the
				// session's own token: the plane refuses it anyway.
				bt.eval(`(() => { const f = document.createElement("form"); f.method = "post";
					f.action = "/installs/` + a.id + `/diagnostics";
					for (const [k, v] of [["csrf", "` + s.csrf + `"], ["reason", "forged"]]) {
						const i = document.createElement("input"); i.name = k; i.value = v; f.appendChild(i); }
					document.body.appendChild(f); f.submit(); return true; })()`)
				bt.do(chromedp.WaitVisible(chromedp.CSS(`#error`)))
				if got := bt.text(`#error`); got != "Role "+string(tc.role)+" may not diagnostics.request." {
					t.Errorf("forged request answered %q", got)
				}
				if ds, _ := b.store.Diagnostics(b.ctx, a.id, ""); strings.Contains(fmt.Sprint(ds), "forged") {
					t.Error("the forged request was recorded")
				}
			}

			bt.do(chromedp.Navigate(b.http.URL+"/licenses"), chromedp.WaitVisible(chromedp.CSS(`#licenses`)))
			if got := bt.present(`#register-license`); got != tc.issue {
				t.Errorf("license upload form shown: %v", got)
			}
			if tc.issue {
				file, _ := issue(t, priv, "lic_browser", b.clock.Now())
				path := filepath.Join(t.TempDir(), "acme.license.json")
				if err := os.WriteFile(path, file, 0o600); err != nil {
					t.Fatal(err)
				}
				bt.do(chromedp.SetUploadFiles(chromedp.CSS(`#register-license input[name=file]`), []string{path}),
					chromedp.Submit(chromedp.CSS(`#register-license input[name=file]`)),
					chromedp.WaitVisible(chromedp.CSS(`#license-lic_browser`)))
			}

			if tc.revoke {
				bt.do(chromedp.Navigate(b.http.URL+installPage), chromedp.WaitVisible(chromedp.CSS(`#revoke`)),
					chromedp.Click(chromedp.CSS(`#revoke`)), chromedp.WaitVisible(chromedp.CSS(`#revoke-form`)))
				if got := bt.text(`#confirm`); !strings.Contains(got, a.id) || !strings.Contains(got, "Customer lic_a") {
					t.Errorf("confirmation page: %q", got)
				}
				bt.do(chromedp.Submit(chromedp.CSS(`#revoke-form button`)), chromedp.WaitVisible(chromedp.CSS(`#revoked`)))
				if in, _ := b.store.Install(b.ctx, a.id); !in.Revoked {
					t.Error("install not revoked")
				}
				if bt.present(`#revoke`) {
					t.Error("a revoked install still offers revoking")
				}
			}
		})
	}
}

// The fleet table follows the fleet without a reload, keeping its filter
// and sort: rows appear as installs match, and the flags follow staleness.
func TestDashboardLiveRefreshInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	b := setup(t, func(o *setupOpts) { o.refresh = 100 * time.Millisecond })
	zed := b.activate(t, b.license(t, "lic_zed", "stable"))
	amy := b.activate(t, b.license(t, "lic_amy", "stable"))
	quiet := b.activate(t, b.license(t, "lic_quiet", "stable"))
	for _, a := range []*agent{zed, amy, quiet} {
		a.heartbeat(t, "ok")
	}
	bt := browse(t, b)
	bt.signIn(b.staff(t, planestore.RoleViewer), "/?health=degraded&sort=customer&dir=desc", `#installs`)
	if got := bt.live(`#empty`); !strings.Contains(got, "No install matches these filters") {
		t.Fatalf("empty state: %q", got)
	}
	// Navigation would lose this.
	bt.eval(`(window.stillHere = true)`)

	amy.heartbeat(t, "degraded")
	bt.appears(`#install-` + amy.id)
	zed.heartbeat(t, "degraded")
	bt.appears(`#install-` + zed.id)
	order := bt.eval(`Array.from(document.querySelectorAll("#installs-body tr")).map(r => r.id).join(" ") ===
		"install-` + zed.id + ` install-` + amy.id + `"`)
	if !order || bt.present(`#install-`+quiet.id) {
		t.Errorf("rows after refresh: sorted by customer descending %v, ok install shown %v; table %q", order, bt.present(`#install-`+quiet.id), bt.live(`#installs-body`))
	}
	if got := bt.live(`#fleet-count`); got != "Installs: 2 of 3 match the filters" {
		t.Errorf("count %q", got)
	}

	// quiet stops reporting: it is flagged at the top, the others are not.
	b.clock.Advance(5 * time.Minute)
	amy.heartbeat(t, "degraded")
	zed.heartbeat(t, "degraded")
	bt.appears(`#stale-` + quiet.id)
	if got := bt.live(`#stale-count`); got != "1" {
		t.Errorf("stale count %q", got)
	}
	if !bt.eval(`window.stillHere === true && location.search === "?health=degraded&sort=customer&dir=desc"`) {
		t.Error("the page was reloaded or lost its query")
	}
}
