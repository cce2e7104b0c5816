// Package auth decides who is calling the document service: an API token
// issued by the operator ("tt_…", for scripts and integrations) or a JWT
// bearer token from the customer's own OIDC identity provider (for people).
//
// Tokens are checked against hashes in the database; JWTs are checked
// against the issuer's published keys (signature, issuer, audience, expiry)
// with github.com/coreos/go-oidc. Neither the token nor any claim other than
// the subject is kept, and errors never contain the presented credential.
package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/tetherhq/tether/internal/sqldb"
)

// ErrUnauthenticated matches (errors.Is) every rejection of a credential:
// missing, malformed, unknown, revoked, expired or not verifiable.
var ErrUnauthenticated = errors.New("auth: unauthenticated")

// Principal kinds.
const (
	KindToken = "token"
	KindOIDC  = "oidc"
)

// Principal is an authenticated caller.
type Principal struct {
	Kind string // KindToken or KindOIDC
	// ID is the token ID or the OIDC subject. A subject can identify a
	// person, so it is for access decisions and never for logs.
	ID string
}

// authError is an ErrUnauthenticated with a reason safe to show the client.
type authError struct{ reason string }

func (e *authError) Error() string        { return "auth: unauthenticated: " + e.reason }
func (e *authError) Is(target error) bool { return target == ErrUnauthenticated }

func unauthenticated(reason string) error { return &authError{reason: reason} }

// Authenticator checks bearer credentials.
type Authenticator struct {
	db       *sqldb.DB
	verifier *oidc.IDTokenVerifier // nil when OIDC is not configured
}

// NewAuthenticator returns an Authenticator for API tokens in db and, when
// oidcIssuer is set, JWTs from that issuer whose audience includes
// oidcAudience. It fetches the issuer's discovery document now, so a
// misconfigured issuer fails at start rather than at the first login.
// httpClient (nil for a default with a timeout) fetches discovery and keys.
func NewAuthenticator(ctx context.Context, db *sqldb.DB, oidcIssuer, oidcAudience string, httpClient *http.Client) (*Authenticator, error) {
	a := &Authenticator{db: db}
	if oidcIssuer == "" && oidcAudience == "" {
		return a, nil
	}
	if oidcIssuer == "" || oidcAudience == "" {
		return nil, errors.New("auth: OIDC needs both an issuer and an audience")
	}
	if httpClient == nil {
		httpClient = &http.Client{Timeout: 10 * time.Second}
	}
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, httpClient), oidcIssuer)
	if err != nil {
		return nil, fmt.Errorf("auth: discover OIDC issuer %s: %w", oidcIssuer, err)
	}
	// The accepted algorithms come from the discovery document, limited by
	// go-oidc to asymmetric ones (never "none" or HMAC), RS256 by default.
	a.verifier = p.Verifier(&oidc.Config{ClientID: oidcAudience})
	return a, nil
}

// Authenticate checks the request's "Authorization: Bearer" credential. A
// rejected credential is an error matching ErrUnauthenticated; any other
// error means the check itself could not run (the database is down).
func (a *Authenticator) Authenticate(r *http.Request) (Principal, error) {
	scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	tok = strings.TrimSpace(tok)
	if !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return Principal{}, unauthenticated("missing bearer token")
	}
	if strings.HasPrefix(tok, tokenPrefix) {
		return a.verifyToken(r.Context(), tok)
	}
	if a.verifier == nil {
		return Principal{}, unauthenticated("not an API token, and OIDC sign-in is not configured")
	}
	idt, err := a.verifier.Verify(r.Context(), tok)
	if err != nil {
		// go-oidc's message is not passed on: the client learns only
		// expired-or-invalid, which is all it can act on.
		var expired *oidc.TokenExpiredError
		if errors.As(err, &expired) {
			return Principal{}, unauthenticated("token expired")
		}
		return Principal{}, unauthenticated("invalid token")
	}
	if idt.Subject == "" {
		return Principal{}, unauthenticated("token has no subject")
	}
	return Principal{Kind: KindOIDC, ID: idt.Subject}, nil
}

type principalKey struct{}

// PrincipalFrom returns the caller Middleware stored in ctx.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// WithPrincipal returns ctx carrying p, as Middleware does; handlers' tests
// use it to call a handler as a given caller.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// Middleware lets only authenticated requests through to next, with the
// Principal in the request context. Rejections get 401 with a JSON body and
// a WWW-Authenticate challenge (RFC 6750); a failed check gets 503.
func (a *Authenticator) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := a.Authenticate(r)
		var ae *authError
		switch {
		case errors.As(err, &ae):
			challenge := "Bearer"
			if ae.reason != "missing bearer token" {
				challenge = `Bearer error="invalid_token"`
			}
			w.Header().Set("WWW-Authenticate", challenge)
			writeError(w, http.StatusUnauthorized, ae.reason)
		case err != nil:
			writeError(w, http.StatusServiceUnavailable, "authentication is temporarily unavailable")
		default:
			next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
		}
	})
}

func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
