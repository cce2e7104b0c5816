package auth_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/tetherhq/tether/internal/auth"
	"github.com/tetherhq/tether/internal/sqldb"
	"github.com/tetherhq/tether/internal/sqldb/sqldbtest"
)

var dialects = []struct {
	name string
	open func(testing.TB) *sqldb.DB
}{
	{"sqlite", sqldbtest.SQLite},
	{"postgres", sqldbtest.Postgres},
}

func bearer(tok string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/v1/documents", nil)
	if tok != "" {
		r.Header.Set("Authorization", "Bearer "+tok)
	}
	return r
}

// tokensOnly is an Authenticator for API tokens alone, on a fresh database.
func tokensOnly(t *testing.T, open func(testing.TB) *sqldb.DB) (*auth.Authenticator, *sqldb.DB) {
	t.Helper()
	db := open(t)
	a, err := auth.NewAuthenticator(context.Background(), db, auth.OIDC{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return a, db
}

func TestTokens(t *testing.T) {
	t.Parallel()
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			ctx := context.Background()
			a, db := tokensOnly(t, d.open)
			plain, id, err := auth.CreateToken(ctx, db, "ci upload", time.Now())
			if err != nil {
				t.Fatal(err)
			}
			other, otherID, err := auth.CreateToken(ctx, db, "to revoke", time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(plain, "tt_"+id+"_") || len(plain) != len("tt_")+16+1+43 {
				t.Fatalf("token %q does not have the tt_<id>_<secret> shape", plain)
			}

			// Only the hash of the secret is stored.
			var hash string
			if err := db.QueryRowContext(ctx, `SELECT hash FROM api_tokens WHERE id = $1`, id).Scan(&hash); err != nil {
				t.Fatal(err)
			}
			secret := strings.TrimPrefix(plain, "tt_"+id+"_")
			sum := sha256.Sum256([]byte(secret))
			if hash != hex.EncodeToString(sum[:]) || strings.Contains(hash, secret) {
				t.Fatalf("stored hash %q is not the hex SHA-256 of the secret", hash)
			}

			if err := auth.RevokeToken(ctx, db, otherID, time.Now()); err != nil {
				t.Fatal(err)
			}
			if err := auth.RevokeToken(ctx, db, otherID, time.Now()); err != nil {
				t.Fatalf("second revoke: %v", err)
			}
			if err := auth.RevokeToken(ctx, db, "0000000000000000", time.Now()); !errors.Is(err, auth.ErrTokenNotFound) {
				t.Fatalf("revoke unknown: err = %v, want ErrTokenNotFound", err)
			}

			flipped := []byte(plain)
			if flipped[len(flipped)-2] == 'A' {
				flipped[len(flipped)-2] = 'B'
			} else {
				flipped[len(flipped)-2] = 'A'
			}
			tests := []struct {
				name, tok string
				ok        bool
			}{
				{"valid", plain, true},
				{"revoked", other, false},
				{"tampered secret", string(flipped), false},
				{"other token's secret under this ID", "tt_" + id + "_" + strings.TrimPrefix(other, "tt_"+otherID+"_"), false},
				{"unknown ID", "tt_0000000000000000_" + secret, false},
				{"upper-case ID", "tt_" + strings.ToUpper(id) + "_" + secret, false},
				{"short secret", plain[:len(plain)-1], false},
				{"no secret", "tt_" + id, false},
				{"empty", "", false},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					p, err := a.Authenticate(bearer(tt.tok))
					if tt.ok {
						if err != nil || !reflect.DeepEqual(p, auth.Principal{Kind: auth.KindToken, ID: id}) {
							t.Fatalf("Authenticate = %+v, %v", p, err)
						}
						return
					}
					if !errors.Is(err, auth.ErrUnauthenticated) {
						t.Fatalf("err = %v, want ErrUnauthenticated", err)
					}
					if tt.tok != "" && strings.Contains(err.Error(), tt.tok) {
						t.Fatalf("error echoes the token: %v", err)
					}
				})
			}

			list, err := auth.ListTokens(ctx, db)
			if err != nil {
				t.Fatal(err)
			}
			// Both were made in the same instant, so find them by ID, not order.
			byID := map[string]auth.TokenInfo{}
			for _, ti := range list {
				byID[ti.ID] = ti
			}
			active, revoked := byID[id], byID[otherID]
			if len(list) != 2 || active.Name != "ci upload" || active.Revoked() || !revoked.Revoked() || revoked.Name != "to revoke" {
				t.Fatalf("ListTokens = %+v", list)
			}
			if time.Since(active.CreatedAt) > time.Hour || active.CreatedAt.After(time.Now().Add(time.Minute)) {
				t.Fatalf("CreatedAt = %v", active.CreatedAt)
			}
		})
	}
}

func TestCreateTokenRejectsBadNames(t *testing.T) {
	t.Parallel()
	db := sqldbtest.SQLite(t)
	for _, name := range []string{"", "   ", strings.Repeat("x", 101), "bad\nname"} {
		if _, _, err := auth.CreateToken(context.Background(), db, name, time.Now()); err == nil {
			t.Errorf("CreateToken(%q) succeeded", name)
		}
	}
}

// issuer is a local OIDC provider: discovery document, JWKS, and a signer.
type issuer struct {
	srv *httptest.Server
	key *rsa.PrivateKey
	kid string
}

func newIssuer(t testing.TB) *issuer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	iss := &issuer{key: key, kid: "k1"}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{
			"issuer":                                iss.srv.URL,
			"jwks_uri":                              iss.srv.URL + "/jwks",
			"authorization_endpoint":                iss.srv.URL + "/authorize",
			"token_endpoint":                        iss.srv.URL + "/token",
			"id_token_signing_alg_values_supported": []string{"RS256"},
		})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
			{Key: &key.PublicKey, KeyID: iss.kid, Algorithm: "RS256", Use: "sig"},
		}})
	})
	iss.srv = httptest.NewServer(mux)
	t.Cleanup(iss.srv.Close)
	return iss
}

func (iss *issuer) claims() map[string]any {
	now := time.Now()
	return map[string]any{
		"iss": iss.srv.URL, "aud": "docsvc", "sub": "user-123",
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
	}
}

func sign(t testing.TB, alg jose.SignatureAlgorithm, key any, kid string, claims map[string]any) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestOIDC(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	iss := newIssuer(t)
	db := sqldbtest.SQLite(t)
	a, err := auth.NewAuthenticator(ctx, db, auth.OIDC{Issuer: iss.srv.URL, Audience: "docsvc"}, iss.srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	otherKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	with := func(k string, v any) map[string]any {
		c := iss.claims()
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	b64 := base64.RawURLEncoding.EncodeToString
	payload, _ := json.Marshal(iss.claims())
	algNone := b64([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + b64(payload) + "."
	// A token whose header claims the issuer's key but is signed with HMAC:
	// the classic algorithm-confusion attack.
	hmac := sign(t, jose.HS256, []byte("a-shared-secret-of-32-bytes-long!"), iss.kid, iss.claims())

	tests := []struct {
		name, tok string
		ok        bool
	}{
		{"valid", sign(t, jose.RS256, iss.key, iss.kid, iss.claims()), true},
		{"audience list", sign(t, jose.RS256, iss.key, iss.kid, with("aud", []string{"other", "docsvc"})), true},
		{"wrong issuer", sign(t, jose.RS256, iss.key, iss.kid, with("iss", "https://idp.example.com")), false},
		{"wrong audience", sign(t, jose.RS256, iss.key, iss.kid, with("aud", "someone-else")), false},
		{"expired", sign(t, jose.RS256, iss.key, iss.kid, with("exp", time.Now().Add(-time.Minute).Unix())), false},
		{"bad signature", sign(t, jose.RS256, otherKey, iss.kid, iss.claims()), false},
		{"unknown kid", sign(t, jose.RS256, iss.key, "k2", iss.claims()), false},
		{"alg none", algNone, false},
		{"HS256", hmac, false},
		{"no subject", sign(t, jose.RS256, iss.key, iss.kid, with("sub", nil)), false},
		{"garbage", "not.a.jwt", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := a.Authenticate(bearer(tt.tok))
			if tt.ok {
				if err != nil || !reflect.DeepEqual(p, auth.Principal{Kind: auth.KindOIDC, ID: "user-123", Issuer: iss.srv.URL}) {
					t.Fatalf("Authenticate = %+v, %v", p, err)
				}
				return
			}
			if !errors.Is(err, auth.ErrUnauthenticated) {
				t.Fatalf("err = %v, want ErrUnauthenticated", err)
			}
			if want := map[string]string{"expired": "token expired", "no subject": "no subject"}[tt.name]; !strings.Contains(err.Error(), want) {
				t.Fatalf("err = %v, want it to say %q", err, want)
			}
		})
	}

	// API tokens keep working alongside OIDC.
	plain, id, err := auth.CreateToken(ctx, db, "script", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if p, err := a.Authenticate(bearer(plain)); err != nil || p.ID != id {
		t.Fatalf("API token with OIDC on: %+v, %v", p, err)
	}
}

func TestNewAuthenticatorErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := sqldbtest.SQLite(t)
	if _, err := auth.NewAuthenticator(ctx, db, auth.OIDC{Issuer: "https://idp.example.com", Audience: ""}, nil); err == nil {
		t.Error("issuer without audience accepted")
	}
	// An issuer whose discovery document names another issuer is refused,
	// as OIDC discovery requires, so one IdP cannot speak for another.
	liar := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"issuer": "https://idp.example.com", "jwks_uri": "https://idp.example.com/jwks"})
	}))
	defer liar.Close()
	if _, err := auth.NewAuthenticator(ctx, db, auth.OIDC{Issuer: liar.URL, Audience: "docsvc"}, liar.Client()); err == nil {
		t.Error("discovery document for another issuer accepted")
	}
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	if _, err := auth.NewAuthenticator(ctx, db, auth.OIDC{Issuer: closed.URL, Audience: "docsvc"}, nil); err == nil {
		t.Error("unreachable issuer accepted")
	}
}

func TestJWTWithoutOIDCConfigured(t *testing.T) {
	t.Parallel()
	db := sqldbtest.SQLite(t)
	a, err := auth.NewAuthenticator(context.Background(), db, auth.OIDC{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(bearer("eyJhbGciOiJSUzI1NiJ9.e30.sig")); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("err = %v, want ErrUnauthenticated", err)
	}
}

func TestMiddleware(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := sqldbtest.SQLite(t)
	a, err := auth.NewAuthenticator(ctx, db, auth.OIDC{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	plain, id, err := auth.CreateToken(ctx, db, "mw", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	h := a.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := auth.PrincipalFrom(r.Context())
		if !ok {
			t.Error("no principal in context")
		}
		w.Write([]byte(p.Kind + ":" + p.ID))
	}))

	tests := []struct {
		name, header  string
		status        int
		challenge     string
		body, errText string
	}{
		{"ok", "Bearer " + plain, 200, "", "token:" + id, ""},
		{"lower-case scheme", "bearer " + plain, 200, "", "token:" + id, ""},
		{"missing", "", 401, "Bearer", "", "missing bearer token"},
		{"basic auth", "Basic dXNlcjpwdw==", 401, "Bearer", "", "missing bearer token"},
		{"bad token", "Bearer tt_nope", 401, `Bearer error="invalid_token"`, "", "malformed API token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			if tt.header != "" {
				r.Header.Set("Authorization", tt.header)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d", w.Code, tt.status)
			}
			if tt.status == 200 {
				if w.Body.String() != tt.body {
					t.Fatalf("body %q, want %q", w.Body, tt.body)
				}
				return
			}
			if got := w.Header().Get("WWW-Authenticate"); got != tt.challenge {
				t.Fatalf("WWW-Authenticate = %q, want %q", got, tt.challenge)
			}
			var body struct{ Error string }
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Error != tt.errText {
				t.Fatalf("body %q (%v), want error %q", w.Body, err, tt.errText)
			}
		})
	}

	// With the database gone the check cannot run: 503, not 401, so clients
	// retry instead of discarding a good token.
	db.Close()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, bearer(plain))
	if w.Code != http.StatusServiceUnavailable {
		t.Fatalf("closed database: status %d, want 503", w.Code)
	}
}

// FuzzAuthenticate throws arbitrary Authorization headers at an
// Authenticator with both API tokens and OIDC on: none may panic, and none
// may authenticate.
func FuzzAuthenticate(f *testing.F) {
	ctx := context.Background()
	db := sqldbtest.SQLite(f)
	iss := newIssuer(f)
	a, err := auth.NewAuthenticator(ctx, db, auth.OIDC{Issuer: iss.srv.URL, Audience: "docsvc"}, iss.srv.Client())
	if err != nil {
		f.Fatal(err)
	}
	plain, _, err := auth.CreateToken(ctx, db, "fuzz", time.Now())
	if err != nil {
		f.Fatal(err)
	}
	valid := sign(f, jose.RS256, iss.key, iss.kid, iss.claims())
	f.Add("Bearer " + plain[:len(plain)-1] + "x")
	f.Add("Bearer tt_0123456789abcdef_" + strings.Repeat("A", 43))
	f.Add("Bearer " + valid[:len(valid)-4] + "AAAA")
	f.Add("Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.")
	f.Add("Basic dXNlcjpwdw==")
	f.Add("Bearer ")
	f.Add("")
	f.Fuzz(func(t *testing.T, header string) {
		if strings.Contains(header, plain) || strings.Contains(header, valid) {
			t.Skip() // the real credentials, which should authenticate
		}
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header["Authorization"] = []string{header}
		p, err := a.Authenticate(r)
		if err == nil {
			t.Fatalf("header %q authenticated as %+v", header, p)
		}
		if !errors.Is(err, auth.ErrUnauthenticated) {
			t.Fatalf("header %q: err = %v, want ErrUnauthenticated", header, err)
		}
	})
}
