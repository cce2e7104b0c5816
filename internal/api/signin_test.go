package api_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/golang-jwt/jwt/v5"
	"github.com/oauth2-proxy/mockoidc"

	"github.com/tetherhq/tether/internal/api"
	"github.com/tetherhq/tether/internal/auth"
	"github.com/tetherhq/tether/internal/browsertest"
)

// provider is a local OIDC provider (mockoidc: discovery, authorization
// endpoint with PKCE, token endpoint, JWKS) whose authorization requests a
// test can tamper with on their way in.
type provider struct {
	*mockoidc.MockOIDC
	tamper atomic.Value // func(url.Values), or nil
}

func startProvider(t *testing.T) *provider {
	t.Helper()
	m, err := mockoidc.NewServer(nil)
	if err != nil {
		t.Fatal(err)
	}
	p := &provider{MockOIDC: m}
	p.tamper.Store(func(v map[string][]string) {})
	m.AddMiddleware(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == mockoidc.AuthorizationEndpoint {
				q := r.URL.Query()
				p.tamper.Load().(func(map[string][]string))(q)
				r.URL.RawQuery = q.Encode()
			}
			next.ServeHTTP(w, r)
		})
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ln, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Shutdown() })
	return p
}

// setupSignIn is setup with the web page's sign-in against p.
func setupSignIn(t *testing.T, p *provider) *bundle {
	t.Helper()
	return setupWith(t, 1<<20, func(s *api.Server, b *bundle) {
		a, err := auth.NewAuthenticator(context.Background(), b.db, auth.OIDC{Issuer: p.Issuer(), Audience: p.ClientID}, nil)
		if err != nil {
			t.Fatal(err)
		}
		si, err := a.NewSignIn(auth.SignInOptions{
			CallbackURL: b.url + auth.CallbackPath, PostLogoutURL: b.url + "/",
			ClientSecret: p.ClientSecret, Scopes: []string{"email", "profile"},
		})
		if err != nil {
			t.Fatal(err)
		}
		s.Auth, s.SignIn = a.Middleware, si
	})
}

// pageFetch is the status and body of a same-origin API call made by the
// page, as its script makes them (with the session cookie).
func pageFetch(t *testing.T, ctx context.Context, path string) string {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](
		`fetch(`+"`"+path+"`"+`, {headers: {"X-Requested-With": "docsvc"}}).then(async r => r.status + " " + await r.text())`,
		chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func screenshotOnFailure(t *testing.T, ctx context.Context) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		if png, err := chromedp.Run(context.WithoutCancel(ctx), chromedp.CaptureScreenshot()); err == nil {
			shot := filepath.Join(os.TempDir(), "tether-signin-test.png")
			os.WriteFile(shot, png, 0o600)
			t.Logf("screenshot: %s", shot)
		}
	})
}

// TestSignIn signs two people in through the provider in Chromium, with
// real redirects, PKCE and the provider's JWKS: one uploads a document and
// sees it, signs out, and the other cannot see it.
func TestSignIn(t *testing.T) {
	t.Parallel()
	p := startProvider(t)
	b := setupSignIn(t, p)
	b.runWorker(t)
	file := filepath.Join(t.TempDir(), "minutes.md")
	os.WriteFile(file, []byte("# Minutes\n\nThe board approved the budget.\n"), 0o600)
	ctx := browsertest.New(t)
	screenshotOnFailure(t, ctx)

	p.QueueUser(&mockoidc.MockUser{Subject: "alice", Email: "alice@example.com"})
	err := chromedp.Do(ctx,
		chromedp.Navigate(b.url+"/"),
		chromedp.WaitVisible(chromedp.CSS("#login")),
		chromedp.Click(chromedp.CSS("#login")),
		chromedp.WaitVisible(chromedp.CSS("#upload-form")),
		chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{file}),
		chromedp.Click(chromedp.CSS("#upload-form button[type=submit]")),
		chromedp.WaitVisible(chromedp.CSS("button.show-result")),
	)
	if err != nil {
		t.Fatal(err)
	}
	name, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#docs tbody tr td")))
	if err != nil || name != "minutes.md" {
		t.Fatalf("alice's list shows %q (%v)", name, err)
	}
	id, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("#docs tbody tr").dataset.id`))
	if err != nil || id == "" {
		t.Fatalf("document id: %q, %v", id, err)
	}
	// The session is an HttpOnly cookie: the page's script cannot read it.
	if c, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.cookie`)); err != nil || c != "" {
		t.Fatalf("document.cookie = %q (%v)", c, err)
	}

	// Sign out: the session ends, and the API no longer answers the page.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#signout")), chromedp.WaitVisible(chromedp.CSS("#login"))); err != nil {
		t.Fatal(err)
	}
	if got := pageFetch(t, ctx, "/v1/documents"); !strings.HasPrefix(got, "401 ") {
		t.Fatalf("after sign-out the API answers %q", got)
	}

	p.QueueUser(&mockoidc.MockUser{Subject: "bob", Email: "bob@example.com"})
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#login")), chromedp.WaitVisible(chromedp.CSS("#upload-form"))); err != nil {
		t.Fatal(err)
	}
	if got := pageFetch(t, ctx, "/v1/documents"); !strings.HasPrefix(got, "200 ") || strings.Contains(got, id) {
		t.Fatalf("bob's list: %q", got)
	}
	if got := pageFetch(t, ctx, "/v1/documents/"+id); !strings.HasPrefix(got, "404 ") {
		t.Fatalf("bob reading alice's document: %q", got)
	}
}

// TestSignInTampered changes the state or the nonce of an authorization
// request on its way to the provider, as an attacker who injects their own
// sign-in response would: docsvc refuses the callback and sets no session.
func TestSignInTampered(t *testing.T) {
	t.Parallel()
	p := startProvider(t)
	b := setupSignIn(t, p)
	ctx := browsertest.New(t)
	screenshotOnFailure(t, ctx)
	for _, tc := range []struct{ param, want string }{
		{"state", "state does not match"},
		{"nonce", "nonce does not match"},
	} {
		t.Run(tc.param, func(t *testing.T) {
			p.tamper.Store(func(q map[string][]string) { q[tc.param] = []string{"attacker-chosen-" + tc.param} })
			defer p.tamper.Store(func(map[string][]string) {})
			// What the page's Sign in button does; Navigate waits for the
			// page the redirects end on.
			if err := chromedp.Do(ctx, chromedp.Navigate(b.url+"/auth/login")); err != nil {
				t.Fatal(err)
			}
			text, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.location.pathname + ": " + document.body.innerText`))
			if err != nil || !strings.Contains(text, "Sign-in refused") || !strings.Contains(text, tc.want) {
				t.Fatalf("callback page says %q (%v)", text, err)
			}
			if got := pageFetch(t, ctx, "/v1/documents"); !strings.HasPrefix(got, "401 ") {
				t.Fatalf("after a refused sign-in the API answers %q", got)
			}
		})
	}
}

// TestProviderTokens sends JWTs signed with the provider's key (served from
// its JWKS) as bearer tokens and as the session cookie.
func TestProviderTokens(t *testing.T) {
	t.Parallel()
	p := startProvider(t)
	b := setupSignIn(t, p)
	now := time.Now()
	sign := func(extra jwt.MapClaims) string {
		c := jwt.MapClaims{"iss": p.Issuer(), "sub": "carol", "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix()}
		for k, v := range extra {
			c[k] = v
		}
		tok, err := p.Keypair.SignJWT(c)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	call := func(header, cookie string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, b.url+"/v1/documents", nil)
		if header != "" {
			req.Header.Set("Authorization", "Bearer "+header)
		}
		if cookie != "" {
			req.AddCookie(&http.Cookie{Name: "docsvc-session", Value: cookie})
			req.Header.Set(auth.CSRFHeader, "docsvc")
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(body)
	}
	tests := []struct {
		name           string
		bearer, cookie string
		code           int
	}{
		{"cognito access token", sign(jwt.MapClaims{"token_use": "access", "client_id": p.ClientID, "scope": "openid"}), "", 200},
		{"cognito access token for another client", sign(jwt.MapClaims{"token_use": "access", "client_id": "another-client"}), "", 401},
		{"access token with the audience", sign(jwt.MapClaims{"aud": p.ClientID}), "", 200},
		{"ID token with a wrong aud", sign(jwt.MapClaims{"token_use": "id", "aud": "another-client"}), "", 401},
		{"session ID token", "", sign(jwt.MapClaims{"aud": p.ClientID}), 200},
		{"session ID token with a wrong aud", "", sign(jwt.MapClaims{"aud": "another-client"}), 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := call(tt.bearer, tt.cookie)
			if code != tt.code {
				t.Fatalf("status %d, want %d: %s", code, tt.code, body)
			}
			if tok := tt.bearer + tt.cookie; strings.Contains(body, tok[strings.LastIndex(tok, ".")+1:]) {
				t.Fatalf("the answer echoes the token: %s", body)
			}
		})
	}
}
