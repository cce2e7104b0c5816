package auth_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/tetherhq/tether/internal/apitoken"
	"github.com/tetherhq/tether/internal/auth"
	"github.com/tetherhq/tether/internal/document"
	"github.com/tetherhq/tether/internal/sqldb/sqldbtest"
	"github.com/tetherhq/tether/internal/testtime"
)

// TestTokenKinds checks each kind of JWT against what its issuer defines
// it to be, with a client ID that differs from the API audience (as with
// Entra ID) so that the two checks cannot stand in for each other.
func TestTokenKinds(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	iss := newIssuer(t)
	db := sqldbtest.SQLite(t)
	a, err := auth.NewAuthenticator(ctx, db, auth.OIDC{Issuer: iss.srv.URL, Audience: "api://docsvc", ClientID: "web-client"}, iss.srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	claims := func(kv ...any) map[string]any {
		c := iss.claims()
		delete(c, "aud")
		for i := 0; i < len(kv); i += 2 {
			c[kv[i].(string)] = kv[i+1]
		}
		return c
	}
	session := func(tok string) *http.Request {
		r := bearer("")
		r.AddCookie(&http.Cookie{Name: "docsvc-session", Value: tok})
		r.Header.Set(auth.CSRFHeader, "docsvc")
		return r
	}
	tests := []struct {
		name string
		req  *http.Request
		want string // "" accepted, else a word of the reason
	}{
		{"access token for the API", bearer(sign(t, jose.RS256, iss.key, iss.kid, claims("aud", "api://docsvc"))), ""},
		{"access token for another API", bearer(sign(t, jose.RS256, iss.key, iss.kid, claims("aud", "api://other"))), "audience"},
		{"ID token as bearer", bearer(sign(t, jose.RS256, iss.key, iss.kid, claims("aud", "web-client"))), "audience"},
		{"cognito access token", bearer(sign(t, jose.RS256, iss.key, iss.kid, claims("token_use", "access", "client_id", "web-client"))), ""},
		{"cognito access token, other client", bearer(sign(t, jose.RS256, iss.key, iss.kid, claims("token_use", "access", "client_id", "other-client"))), "another client"},
		{"cognito access token, aud instead of client_id", bearer(sign(t, jose.RS256, iss.key, iss.kid, claims("token_use", "access", "aud", "web-client"))), "another client"},
		{"unknown token_use", bearer(sign(t, jose.RS256, iss.key, iss.kid, claims("token_use", "refresh", "aud", "api://docsvc"))), "invalid"},
		{"session ID token", session(sign(t, jose.RS256, iss.key, iss.kid, claims("aud", "web-client"))), ""},
		{"session ID token, wrong aud", session(sign(t, jose.RS256, iss.key, iss.kid, claims("aud", "api://docsvc"))), "audience"},
		{"session cognito access token", session(sign(t, jose.RS256, iss.key, iss.kid, claims("token_use", "access", "client_id", "web-client", "aud", "web-client"))), "not an ID token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := a.Authenticate(tt.req)
			if tt.want == "" {
				if err != nil || !reflect.DeepEqual(p, auth.Principal{Kind: auth.KindOIDC, ID: "user-123", Issuer: iss.srv.URL}) {
					t.Fatalf("Authenticate = %+v, %v", p, err)
				}
				return
			}
			if !errors.Is(err, auth.ErrUnauthenticated) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want ErrUnauthenticated saying %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "eyJ") {
				t.Fatalf("error %q echoes the token", err)
			}
		})
	}

	// The cookie alone, without the page's header, is refused: another
	// site's form or image request carries no custom header.
	r := session(sign(t, jose.RS256, iss.key, iss.kid, claims("aud", "web-client")))
	r.Header.Del(auth.CSRFHeader)
	if _, err := a.Authenticate(r); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("session without %s: %v", auth.CSRFHeader, err)
	}
}

// TestMigrateOwners shows that documents stored under the owner string
// before the issuer was part of it keep their owner, on both databases:
// docsvc migrate rewrites them, and the middleware adopts rows an older
// api wrote after that.
func TestMigrateOwners(t *testing.T) {
	t.Parallel()
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			ctx := context.Background()
			iss := newIssuer(t)
			db := d.open(t)
			store := document.NewStore(db, time.Now)
			put := func(owner string) string {
				id := document.NewID()
				if _, err := db.ExecContext(ctx, `INSERT INTO documents (id, status, media_type, size_bytes, blob_key, owner, created_at, updated_at)
					VALUES ($1, 'queued', 'text/plain', 1, $1, $2, 1, 1)`, id, owner); err != nil {
					t.Fatal(err)
				}
				return id
			}
			alice := auth.Principal{Kind: auth.KindOIDC, ID: "alice", Issuer: iss.srv.URL}
			bob := auth.Principal{Kind: auth.KindOIDC, ID: "bob", Issuer: iss.srv.URL}
			old := put("oidc:alice")
			tokenDoc := put("token:0123456789abcdef")
			n, err := auth.MigrateOwners(ctx, db, iss.srv.URL)
			if err != nil || n != 1 {
				t.Fatalf("MigrateOwners = %d, %v", n, err)
			}
			if n, err := auth.MigrateOwners(ctx, db, iss.srv.URL); err != nil || n != 0 {
				t.Fatalf("second MigrateOwners = %d, %v", n, err)
			}
			if _, err := store.Owned(ctx, alice.Owner(), old); err != nil {
				t.Fatalf("alice's old document after migrate: %v", err)
			}
			if _, err := store.Owned(ctx, bob.Owner(), old); !errors.Is(err, document.ErrNotFound) {
				t.Fatalf("bob sees alice's document: %v", err)
			}
			if _, err := store.Owned(ctx, "token:0123456789abcdef", tokenDoc); err != nil {
				t.Fatalf("a token's document changed owner: %v", err)
			}

			// An older api, still running during the rollout, stores one
			// more under the old form; alice's next request adopts it.
			late := put("oidc:alice")
			a, err := auth.NewAuthenticator(ctx, db, auth.OIDC{Issuer: iss.srv.URL, Audience: "docsvc"}, iss.srv.Client())
			if err != nil {
				t.Fatal(err)
			}
			h := a.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
			c := iss.claims()
			c["sub"] = "alice"
			h.ServeHTTP(discard{}, bearer(sign(t, jose.RS256, iss.key, iss.kid, c)))
			if _, err := store.Owned(ctx, alice.Owner(), late); err != nil {
				t.Fatalf("a document an older api stored was not adopted: %v", err)
			}
		})
	}
}

type discard struct{}

func (discard) Header() http.Header         { return http.Header{} }
func (discard) Write(b []byte) (int, error) { return len(b), nil }
func (discard) WriteHeader(int)             {}

// TestAddToken stores a token made elsewhere by its stored form only, and
// checks expiry, last use and listing.
func TestAddToken(t *testing.T) {
	t.Parallel()
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			ctx := context.Background()
			a, db := tokensOnly(t, d.open)
			clock := testtime.NewClock(time.Now())
			a.Now = clock.Now
			tok, err := apitoken.New()
			if err != nil {
				t.Fatal(err)
			}
			if err := auth.AddToken(ctx, db, "ci", tok.Stored(), clock.Now().Add(time.Hour), clock.Now()); err != nil {
				t.Fatal(err)
			}
			if err := auth.AddToken(ctx, db, "again", tok.Stored(), time.Time{}, clock.Now()); err == nil {
				t.Fatal("the same token added twice")
			}
			if err := auth.AddToken(ctx, db, "past", tok.ID[:15]+"0:"+tok.Hash, clock.Now().Add(-time.Hour), clock.Now()); err == nil || !strings.Contains(err.Error(), "past") {
				t.Fatalf("expiry in the past: %v", err)
			}
			if p, err := a.Authenticate(bearer(tok.Plaintext)); err != nil || p.ID != tok.ID {
				t.Fatalf("added token: %+v, %v", p, err)
			}
			list, err := auth.ListTokens(ctx, db)
			if err != nil || len(list) != 1 || list[0].ExpiresAt.IsZero() || list[0].LastUsedAt.IsZero() {
				t.Fatalf("ListTokens = %+v, %v", list, err)
			}
			short, err := apitoken.New()
			if err != nil {
				t.Fatal(err)
			}
			if err := auth.AddToken(ctx, db, "short", short.Stored(), clock.Now().Add(time.Hour), clock.Now()); err != nil {
				t.Fatal(err)
			}
			clock.Advance(time.Hour - time.Millisecond)
			if _, err := a.Authenticate(bearer(short.Plaintext)); err != nil {
				t.Fatalf("token a moment before its expiry: %v", err)
			}
			clock.Advance(time.Millisecond) // its hour has passed
			if _, err := a.Authenticate(bearer(short.Plaintext)); err == nil || !strings.Contains(err.Error(), "expired") {
				t.Fatalf("expired token: %v", err)
			}
			if err := auth.RevokeToken(ctx, db, short.Plaintext, clock.Now()); !errors.Is(err, auth.ErrTokenNotFound) || strings.Contains(err.Error(), short.Plaintext[5:]) {
				t.Fatalf("revoke by a pasted token: %v", err)
			}
		})
	}
}

// FuzzCallback feeds the sign-in callback any query and login cookie: it
// must refuse without a session, and never repeat the code it was given.
func FuzzCallback(f *testing.F) {
	iss := newIssuer(f)
	db := sqldbtest.SQLite(f)
	a, err := auth.NewAuthenticator(context.Background(), db, auth.OIDC{Issuer: iss.srv.URL, Audience: "docsvc"}, iss.srv.Client())
	if err != nil {
		f.Fatal(err)
	}
	si, err := a.NewSignIn(auth.SignInOptions{CallbackURL: "http://127.0.0.1:1" + auth.CallbackPath, PostLogoutURL: "http://127.0.0.1:1/"})
	if err != nil {
		f.Fatal(err)
	}
	mux := http.NewServeMux()
	si.Register(mux)
	f.Add("code=abc&state=s", `eyJzIjoicyIsIm4iOiJuIiwidiI6InYifQ`) // {"s":"s","n":"n","v":"v"}: state matches
	f.Add("error=access_denied&state=s", "")
	f.Add("code=%ff&state=", "%%%")
	f.Fuzz(func(t *testing.T, query, cookie string) {
		r := httptest.NewRequest(http.MethodGet, auth.CallbackPath, nil)
		r.URL.RawQuery = query
		r.AddCookie(&http.Cookie{Name: "docsvc-signin", Value: cookie})
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		if w.Code != http.StatusBadRequest {
			t.Fatalf("status %d for query %q, cookie %q", w.Code, query, cookie)
		}
		for _, c := range w.Result().Cookies() {
			if strings.Contains(c.Name, "session") && c.Value != "" {
				t.Fatalf("a session cookie was set for query %q", query)
			}
		}
		if code := r.URL.Query().Get("code"); len(code) > 3 && strings.Contains(w.Body.String(), code) {
			t.Fatalf("the answer repeats the code: %s", w.Body)
		}
	})
}

// On https the sign-in's cookies are __Host- prefixed, Secure and HttpOnly,
// and the authorization request carries PKCE S256, state and nonce.
func TestLoginRequest(t *testing.T) {
	t.Parallel()
	iss := newIssuer(t)
	a, err := auth.NewAuthenticator(context.Background(), sqldbtest.SQLite(t), auth.OIDC{Issuer: iss.srv.URL, Audience: "docsvc"}, iss.srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	si, err := a.NewSignIn(auth.SignInOptions{CallbackURL: "https://docs.example.com/auth/callback", PostLogoutURL: "https://docs.example.com/"})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	si.Register(mux)
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/auth/login", nil))
	loc, err := w.Result().Location()
	if err != nil || w.Code != http.StatusFound {
		t.Fatalf("login: %d %v", w.Code, err)
	}
	q := loc.Query()
	if !strings.HasPrefix(loc.String(), iss.srv.URL+"/authorize?") || q.Get("code_challenge_method") != "S256" || len(q.Get("code_challenge")) != 43 ||
		len(q.Get("state")) < 40 || len(q.Get("nonce")) < 40 || q.Get("client_id") != "docsvc" || q.Get("response_type") != "code" ||
		q.Get("redirect_uri") != "https://docs.example.com/auth/callback" || q.Get("scope") != "openid" {
		t.Fatalf("authorization request %s", loc)
	}
	cs := w.Result().Cookies()
	if len(cs) != 1 || cs[0].Name != "__Host-docsvc-signin" || !cs[0].Secure || !cs[0].HttpOnly || cs[0].Path != "/" ||
		cs[0].SameSite != http.SameSiteLaxMode || cs[0].Domain != "" || strings.Contains(cs[0].Value, q.Get("code_challenge")) {
		t.Fatalf("login cookie %+v", cs)
	}
	if _, err := a.NewSignIn(auth.SignInOptions{CallbackURL: "https://docs.example.com/callback"}); err == nil {
		t.Fatal("a callback URL on another path was accepted")
	}
}
