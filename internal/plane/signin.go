package plane

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/tetherhq/tether/internal/oidcflow"
	"github.com/tetherhq/tether/internal/plane/planestore"
	"golang.org/x/oauth2"
)

// Staff sign in to the dashboard through the vendor's OpenID Connect
// provider: the plane is a confidential client doing the authorization code
// flow with PKCE (S256), state and nonce, and then looks the ID token's
// issuer and subject up in plane_staff. Nobody the plane does not know gets
// a session, whatever the provider says about them.

// CallbackPath is the redirect URI's path, which the provider's client
// registration must list.
const CallbackPath = "/login/callback"

// OIDCConfig is the vendor's identity provider for staff sign-in.
type OIDCConfig struct {
	// Issuer is the provider's issuer URL; its discovery document
	// (/.well-known/openid-configuration) names everything else.
	Issuer       string
	ClientID     string
	ClientSecret string
	// RedirectURL is the plane's public URL ending in CallbackPath.
	RedirectURL string
	// HTTPClient reaches the provider; nil uses a client with a 30s timeout.
	HTTPClient *http.Client
}

// staffSignIn is the configured provider; oauth and verifier are set by
// the first successful ready.
type staffSignIn struct {
	config OIDCConfig
	client *http.Client
	secure bool

	mu       sync.Mutex
	oauth    oauth2.Config
	verifier *oidc.IDTokenVerifier
}

// signInCookie carries the pending sign-in (oidcflow) between /login/oidc
// and the provider's redirect back, for at most oidcflow.MaxAge.
const signInCookie = "tether_plane_signin"

func newStaffSignIn(c OIDCConfig) (*staffSignIn, error) {
	cb, err := url.Parse(c.RedirectURL)
	if err != nil || cb.Host == "" || (cb.Scheme != "https" && cb.Scheme != "http") || !strings.HasSuffix(cb.Path, CallbackPath) {
		return nil, fmt.Errorf("plane: OIDC redirect URL %q must be the plane's absolute URL ending in %s", c.RedirectURL, CallbackPath)
	}
	if c.ClientID == "" {
		return nil, errors.New("plane: OIDC client ID is required with an issuer")
	}
	client := c.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	return &staffSignIn{config: c, client: client, secure: cb.Scheme == "https"}, nil
}

// ready finds the provider's endpoints and keys (OIDC discovery) on first
// use, not at start: a provider that is down keeps staff out of the
// dashboard, never agents out of the plane. A failure is tried again at the
// next sign-in.
func (si *staffSignIn) ready(ctx context.Context) error {
	si.mu.Lock()
	defer si.mu.Unlock()
	if si.verifier != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(oidc.ClientContext(ctx, si.client), 30*time.Second)
	defer cancel()
	p, err := oidc.NewProvider(ctx, si.config.Issuer)
	if err != nil {
		return fmt.Errorf("plane: OIDC issuer %s: discovery failed (is the URL the provider's issuer, reachable from the plane?): %w", si.config.Issuer, err)
	}
	c := si.config
	ep := p.Endpoint()
	ep.AuthStyle = oauth2.AuthStyleInParams
	if c.ClientSecret != "" {
		ep.AuthStyle = oauth2.AuthStyleAutoDetect
	}
	si.oauth = oauth2.Config{ClientID: c.ClientID, ClientSecret: c.ClientSecret, Endpoint: ep,
		RedirectURL: c.RedirectURL, Scopes: []string{oidc.ScopeOpenID, "email", "profile"}}
	si.verifier = p.Verifier(&oidc.Config{ClientID: c.ClientID})
	return nil
}

func (si *staffSignIn) cookie(value string, maxAge int) *http.Cookie {
	// Lax: the provider's redirect back is a cross-site top-level GET.
	return &http.Cookie{Name: signInCookie, Value: value, Path: CallbackPath, MaxAge: maxAge, HttpOnly: true,
		Secure: si.secure, SameSite: http.SameSiteLaxMode}
}

// handleSignInStart sends the browser to the provider.
func (s *Server) handleSignInStart(w http.ResponseWriter, r *http.Request) {
	si := s.signIn
	if si == nil {
		http.Error(w, "staff sign-in is not configured on this plane (tether-plane serve --oidc-issuer)", http.StatusNotFound)
		return
	}
	if err := si.ready(r.Context()); err != nil {
		s.log.Error("staff sign-in", "err", err)
		s.refuse(w, http.StatusBadGateway, refusedPage{Reason: "the identity provider cannot be reached now; try again shortly"})
		return
	}
	cookie, redirect := oidcflow.Start(&si.oauth, safeNext(r.URL.Query().Get("next")))
	http.SetCookie(w, si.cookie(cookie, int(oidcflow.MaxAge.Seconds())))
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, redirect, http.StatusFound)
}

type refusedPage struct {
	page
	Reason  string
	Issuer  string
	Subject string
	Name    string
}

// refuse shows why a sign-in failed. The reasons are fixed phrases.
func (s *Server) refuse(w http.ResponseWriter, status int, p refusedPage) {
	s.log.Warn("staff sign-in refused", "reason", p.Reason)
	p.page = page{Title: "Sign-in refused", Now: s.now()}
	s.render(w, "signin-refused", status, p)
}

// handleSignInCallback finishes the sign-in: state, code exchange with the
// PKCE verifier, ID token signature, audience, expiry and nonce, then the
// staff table.
func (s *Server) handleSignInCallback(w http.ResponseWriter, r *http.Request) {
	si := s.signIn
	if si == nil {
		http.Error(w, "staff sign-in is not configured on this plane", http.StatusNotFound)
		return
	}
	http.SetCookie(w, si.cookie("", -1))
	var pending string
	if c, err := r.Cookie(signInCookie); err == nil {
		pending = c.Value
	}
	ctx, cancel := context.WithTimeout(oidc.ClientContext(r.Context(), si.client), 30*time.Second)
	defer cancel()
	if err := si.ready(ctx); err != nil {
		s.log.Error("staff sign-in", "err", err)
		s.refuse(w, http.StatusBadGateway, refusedPage{Reason: "the identity provider cannot be reached now; try again shortly"})
		return
	}
	p, raw, err := oidcflow.Finish(ctx, &si.oauth, pending, r.URL.Query())
	var refusal *oidcflow.Refusal
	if errors.As(err, &refusal) {
		s.refuse(w, refusal.Status, refusedPage{Reason: refusal.Reason})
		return
	}
	idt, err := si.verifier.Verify(ctx, raw)
	if err != nil {
		s.refuse(w, http.StatusBadRequest, refusedPage{Reason: "the identity provider's ID token was not accepted"})
		return
	}
	if err := p.CheckNonce(idt.Nonce); errors.As(err, &refusal) {
		s.refuse(w, refusal.Status, refusedPage{Reason: refusal.Reason})
		return
	}
	m, err := s.store.StaffBySubject(r.Context(), idt.Issuer, idt.Subject)
	if errors.Is(err, planestore.ErrNotFound) {
		var claims struct {
			Email string `json:"email"`
		}
		_ = idt.Claims(&claims)
		s.refuse(w, http.StatusForbidden, refusedPage{Reason: "you are not on this plane's staff list",
			Issuer: idt.Issuer, Subject: idt.Subject, Name: claims.Email})
		return
	}
	if err != nil {
		s.log.Error("staff sign-in", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if err := s.setSession(w, r, &m); err != nil {
		s.log.Error("staff sign-in", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	s.log.Info("staff signed in", "staff_id", m.ID, "role", string(m.Role))
	http.Redirect(w, r, safeNext(p.Next), http.StatusSeeOther)
}
