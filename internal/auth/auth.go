// Package auth decides who is calling the document service: an API token
// issued by the operator ("tt_…", for scripts and integrations), a JWT
// bearer token from the customer's own OIDC identity provider, or the web
// page's session cookie, which holds the ID token of a sign-in (signin.go).
//
// Tokens are checked against hashes in the database; JWTs are checked
// against the issuer's published keys (signature, issuer, expiry) with
// github.com/coreos/go-oidc, then as their kind requires: an ID token's aud
// must contain the client ID; a Cognito access token (token_use "access")
// carries the client ID in client_id and has no aud; any other access token
// must carry the configured audience in aud. Neither the token nor any claim
// other than the issuer, the subject and the configured shared groups it
// lists (groups.go) is kept, and errors never contain the presented
// credential.
package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
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
	// Issuer is the OIDC issuer that vouched for the subject (KindOIDC).
	// A subject is unique only within its issuer.
	Issuer string
	// Groups are the configured shared groups (OIDC.SharedGroups) this
	// request's verified token lists in OIDC.GroupsClaim, each as
	// "<issuer> <group>"; documents shared with one are visible to the
	// caller. Never from anything but the token, and never logged.
	Groups []string
}

// Owner is the string documents are stored under for p: "token:<id>" for
// an API token and "user:<issuer> <subject>" for a person (an issuer URL
// holds no space, so the pair reads back unambiguously). Before the
// issuer was part of it, a person's documents were stored under
// "oidc:<subject>"; see MigrateOwners.
func (p Principal) Owner() string {
	if p.Kind == KindOIDC {
		return ownerUserPrefix + p.Issuer + " " + p.ID
	}
	return p.Kind + ":" + p.ID
}

// authError is an ErrUnauthenticated with a reason safe to show the client.
type authError struct{ reason string }

func (e *authError) Error() string        { return "auth: unauthenticated: " + e.reason }
func (e *authError) Is(target error) bool { return target == ErrUnauthenticated }

func unauthenticated(reason string) error { return &authError{reason: reason} }

// OIDC names the identity provider whose tokens are accepted.
type OIDC struct {
	Issuer string
	// Audience is what a bearer access token's aud must contain.
	Audience string
	// ClientID is the web page's client at the provider: an ID token's aud
	// must contain it and a Cognito access token's client_id must equal it.
	// Empty means Audience (Cognito, and most single-client setups).
	ClientID string
	// GroupsClaim names the token claim that lists the caller's groups
	// (e.g. "groups", "cognito:groups"); SharedGroups are the groups whose
	// members see each other's documents. Both empty (the default) shares
	// nothing.
	GroupsClaim  string
	SharedGroups []string
}

// Authenticator checks bearer credentials and the web page's session.
type Authenticator struct {
	db         *sqldb.DB
	provider   *oidc.Provider        // nil when OIDC is not configured
	verifier   *oidc.IDTokenVerifier // signature, issuer and expiry only
	issuer     string
	audience   string
	clientID   string
	httpClient *http.Client
	// Now is the clock token expiry and last use are judged by; the
	// constructor sets time.Now.
	Now func() time.Time

	groupsClaim string
	shared      []string
}

// NewAuthenticator returns an Authenticator for API tokens in db and, when
// o.Issuer is set, JWTs from that issuer. It fetches the issuer's discovery
// document now, so a misconfigured issuer fails at start rather than at the
// first sign-in. httpClient (nil for a default with a timeout) fetches
// discovery, keys and, for sign-in, tokens.
func NewAuthenticator(ctx context.Context, db *sqldb.DB, o OIDC, httpClient *http.Client) (*Authenticator, error) {
	a := &Authenticator{db: db, Now: time.Now}
	if o.Issuer == "" && o.Audience == "" {
		return a, nil
	}
	if o.Issuer == "" || o.Audience == "" {
		return nil, errors.New("auth: OIDC needs both an issuer and an audience")
	}
	if (o.GroupsClaim == "") != (len(o.SharedGroups) == 0) {
		return nil, errors.New("auth: shared groups need both a groups claim and the groups to share")
	}
	for _, g := range o.SharedGroups {
		if err := ValidGroupName(g); err != nil {
			return nil, fmt.Errorf("auth: shared group %q: %w", g, err)
		}
	}
	a.groupsClaim, a.shared = o.GroupsClaim, o.SharedGroups
	if httpClient == nil {
		httpClient = &http.Client{Timeout: 10 * time.Second}
	}
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, httpClient), o.Issuer)
	if err != nil {
		return nil, fmt.Errorf("auth: discover OIDC issuer %s: %w", o.Issuer, err)
	}
	a.provider, a.issuer, a.audience, a.clientID, a.httpClient = p, o.Issuer, o.Audience, o.ClientID, httpClient
	if a.clientID == "" {
		a.clientID = o.Audience
	}
	// The accepted algorithms come from the discovery document, limited by
	// go-oidc to asymmetric ones (never "none" or HMAC), RS256 by default.
	// The audience is checked by checkJWT, which knows the token's kind.
	a.verifier = p.Verifier(&oidc.Config{SkipClientIDCheck: true, Now: func() time.Time { return a.Now() }})
	return a, nil
}

// CSRFHeader is the header (with value "docsvc") the web page sends with
// every API call. A request authenticated by the session cookie must carry
// it: another site cannot send a custom header without a CORS preflight,
// which docsvc does not grant for it.
const CSRFHeader = "X-Requested-With"

// Authenticate checks the request's "Authorization: Bearer" credential or,
// without one, the web page's session cookie. A rejected credential is an
// error matching ErrUnauthenticated; any other error means the check itself
// could not run (the database is down).
func (a *Authenticator) Authenticate(r *http.Request) (Principal, error) {
	if r.Header.Get("Authorization") == "" {
		if c, err := sessionCookie(r); err == nil && c.Value != "" {
			if r.Header.Get(CSRFHeader) != "docsvc" {
				return Principal{}, unauthenticated("session cookie without the page's " + CSRFHeader + " header")
			}
			if a.verifier == nil {
				return Principal{}, unauthenticated("OIDC sign-in is not configured")
			}
			p, _, err := a.checkJWT(r.Context(), c.Value, idToken)
			return p, err
		}
	}
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
	p, _, err := a.checkJWT(r.Context(), tok, bearerToken)
	return p, err
}

// How a JWT reached checkJWT decides what it must be.
const (
	bearerToken = iota // an access token (or an ID token whose aud is the audience)
	idToken            // the session cookie or a sign-in's token response: an ID token for the client
)

// checkJWT verifies raw's signature, issuer and expiry, then its audience
// as its kind requires (see the package comment).
func (a *Authenticator) checkJWT(ctx context.Context, raw string, as int) (Principal, *oidc.IDToken, error) {
	t, err := a.verifier.Verify(ctx, raw)
	if err != nil {
		// go-oidc's message is not passed on: the client learns only
		// expired-or-invalid, which is all it can act on.
		var expired *oidc.TokenExpiredError
		if errors.As(err, &expired) {
			return Principal{}, nil, unauthenticated("token expired")
		}
		return Principal{}, nil, unauthenticated("invalid token")
	}
	var c struct {
		TokenUse string `json:"token_use"` // Cognito: "id" or "access"
		ClientID string `json:"client_id"` // Cognito access tokens
	}
	var all map[string]json.RawMessage
	if err := t.Claims(&c); err != nil {
		return Principal{}, nil, unauthenticated("invalid token")
	}
	if err := t.Claims(&all); err != nil {
		return Principal{}, nil, unauthenticated("invalid token")
	}
	switch {
	case as == idToken:
		if c.TokenUse != "" && c.TokenUse != "id" {
			return Principal{}, nil, unauthenticated("not an ID token")
		}
		if !slices.Contains(t.Audience, a.clientID) {
			return Principal{}, nil, unauthenticated("token audience is not this service")
		}
	case c.TokenUse == "access":
		// Cognito's access token: no aud; the client it was issued to.
		if c.ClientID != a.clientID {
			return Principal{}, nil, unauthenticated("token was issued to another client")
		}
	case c.TokenUse != "" && c.TokenUse != "id":
		return Principal{}, nil, unauthenticated("invalid token")
	default:
		if !slices.Contains(t.Audience, a.audience) {
			return Principal{}, nil, unauthenticated("token audience is not this service")
		}
	}
	if t.Subject == "" {
		return Principal{}, nil, unauthenticated("token has no subject")
	}
	groups, err := a.sharedGroups(t.Issuer, all)
	if err != nil {
		return Principal{}, nil, unauthenticated("token's " + a.groupsClaim + " claim is not a list of group names (DOCSVC_OIDC_GROUPS_CLAIM)")
	}
	return Principal{Kind: KindOIDC, ID: t.Subject, Issuer: t.Issuer, Groups: groups}, t, nil
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
			if err := a.adoptLegacyOwner(r.Context(), p); err != nil {
				writeError(w, http.StatusServiceUnavailable, "authentication is temporarily unavailable")
				return
			}
			next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
		}
	})
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
