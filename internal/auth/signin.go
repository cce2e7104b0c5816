package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/tetherhq/tether/internal/oidcflow"
	"golang.org/x/oauth2"
)

// The web page's sign-in runs on the server (a "backend for frontend"):
// docsvc is the OIDC client, does the authorization code flow with PKCE
// (S256), checks state and nonce, and keeps the resulting ID token in an
// HttpOnly, SameSite=Strict cookie, so no token is ever readable by the
// page's JavaScript. docs/architecture.md says why.

// CallbackPath is the redirect URI's path, which the identity provider's
// client registration must list (DOCSVC_OIDC_CALLBACK_URL).
const CallbackPath = "/auth/callback"

// Cookie names. On https the __Host- prefix makes the browser refuse them
// unless Secure, Path=/ and without Domain: no sibling subdomain can set
// or read them.
const (
	sessionName = "docsvc-session"
	loginName   = "docsvc-signin"
	hostPrefix  = "__Host-"
	// maxSessionCookie leaves room for the cookie's name and attributes
	// within the 4096 bytes every browser keeps.
	maxSessionCookie = 3900
)

// sessionCookie returns the request's session cookie, under either name.
func sessionCookie(r *http.Request) (*http.Cookie, error) {
	if c, err := r.Cookie(hostPrefix + sessionName); err == nil {
		return c, nil
	}
	return r.Cookie(sessionName)
}

// SignInOptions configures the web page's sign-in.
type SignInOptions struct {
	// CallbackURL is the redirect URI registered with the provider; its
	// path must end in CallbackPath. https, or http on a loopback host.
	CallbackURL string
	// PostLogoutURL is where the provider sends the browser after sign-out
	// (the page; Cognito's client must list it as a sign-out URL).
	PostLogoutURL string
	// ClientSecret is for a confidential client; empty for a public
	// client (Cognito's, which PKCE alone protects).
	ClientSecret string
	// Scopes requested; "openid" is always among them.
	Scopes []string
	// Log, when set, gets one line per refused sign-in with the reason
	// (fixed phrases: never a token, code or identity).
	Log *slog.Logger
}

// SignIn serves the sign-in routes. Its zero value (nil) serves them too,
// answering that sign-in is not configured.
type SignIn struct {
	a          *Authenticator
	oauth      oauth2.Config
	secure     bool   // cookies get Secure and the __Host- prefix
	endSession string // the provider's sign-out URL, "" when it publishes none
	postLogout string
	log        *slog.Logger
}

// NewSignIn returns the web page's sign-in for a's issuer.
func (a *Authenticator) NewSignIn(o SignInOptions) (*SignIn, error) {
	if a.provider == nil {
		return nil, errors.New("auth: sign-in needs an OIDC issuer (DOCSVC_OIDC_ISSUER)")
	}
	cb, err := url.Parse(o.CallbackURL)
	if err != nil || cb.Host == "" || !strings.HasSuffix(cb.Path, CallbackPath) {
		return nil, fmt.Errorf("auth: sign-in callback URL %q must be an absolute URL whose path ends in %s", o.CallbackURL, CallbackPath)
	}
	scopes := []string{oidc.ScopeOpenID}
	for _, s := range o.Scopes {
		if s != oidc.ScopeOpenID {
			scopes = append(scopes, s)
		}
	}
	style := oauth2.AuthStyleInParams // a public client sends only client_id
	if o.ClientSecret != "" {
		style = oauth2.AuthStyleAutoDetect
	}
	ep := a.provider.Endpoint()
	ep.AuthStyle = style
	s := &SignIn{
		a: a,
		oauth: oauth2.Config{
			ClientID: a.clientID, ClientSecret: o.ClientSecret, Endpoint: ep,
			RedirectURL: o.CallbackURL, Scopes: scopes,
		},
		secure:     cb.Scheme == "https",
		postLogout: o.PostLogoutURL,
		log:        o.Log,
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	var meta struct {
		EndSession string `json:"end_session_endpoint"`
	}
	if err := a.provider.Claims(&meta); err == nil && meta.EndSession != "" {
		s.endSession = meta.EndSession
	} else if isCognito(a.issuer) {
		// Cognito publishes no end_session_endpoint; its hosted UI's
		// /logout, on the domain of its authorization endpoint, is it.
		if au, err := url.Parse(ep.AuthURL); err == nil && au.Scheme == "https" {
			s.endSession = (&url.URL{Scheme: "https", Host: au.Host, Path: "/logout"}).String()
		}
	}
	return s, nil
}

// isCognito reports whether issuer is a Cognito user pool's: its host is
// the region's cognito-idp endpoint and its path the pool ID.
func isCognito(issuer string) bool {
	u, err := url.Parse(issuer)
	return err == nil && u.Scheme == "https" && strings.HasPrefix(u.Host, "cognito-idp.") && strings.Count(u.Path, "/") == 1
}

// Register adds the sign-in routes to mux: GET /auth/config (public: what
// the page needs to offer sign-in), GET /auth/login, GET /auth/callback and
// POST /auth/logout. s may be nil (sign-in not configured). mux is an
// *http.ServeMux, or anything that registers routes as one does.
func (s *SignIn) Register(mux interface {
	HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request))
}) {
	mux.HandleFunc("GET /auth/config", s.config)
	mux.HandleFunc("GET /auth/login", s.login)
	mux.HandleFunc("GET "+CallbackPath, s.callback)
	mux.HandleFunc("POST /auth/logout", s.logout)
}

func (s *SignIn) config(w http.ResponseWriter, r *http.Request) {
	if s == nil {
		writeJSON(w, http.StatusOK, map[string]any{"sign_in": false})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"sign_in": true, "issuer": s.a.issuer, "client_id": s.oauth.ClientID,
		"redirect_uri": s.oauth.RedirectURL, "scopes": s.oauth.Scopes,
		"login": "/auth/login", "logout": "/auth/logout",
	})
}

// cookie is one of the sign-in's cookies: the session, or the pending
// sign-in (oidcflow) between /auth/login and the provider's redirect back.
func (s *SignIn) cookie(name, value string, maxAge int, sameSite http.SameSite) *http.Cookie {
	c := &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge, HttpOnly: true, SameSite: sameSite, Secure: s.secure}
	if s.secure {
		c.Name = hostPrefix + name
	}
	return c
}

func (s *SignIn) login(w http.ResponseWriter, r *http.Request) {
	if s == nil {
		notConfigured(w)
		return
	}
	cookie, redirect := oidcflow.Start(&s.oauth, "")
	http.SetCookie(w, s.cookie(loginName, cookie, int(oidcflow.MaxAge.Seconds()), http.SameSiteLaxMode))
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, redirect, http.StatusFound)
}

func (s *SignIn) callback(w http.ResponseWriter, r *http.Request) {
	if s == nil {
		notConfigured(w)
		return
	}
	http.SetCookie(w, s.cookie(loginName, "", -1, http.SameSiteLaxMode))
	var pending string
	if c, err := r.Cookie(s.cookie(loginName, "", 0, 0).Name); err == nil {
		pending = c.Value
	}
	p, raw, err := oidcflow.Finish(oidc.ClientContext(r.Context(), s.a.httpClient), &s.oauth, pending, r.URL.Query())
	if err != nil {
		s.refuse(w, err.Error())
		return
	}
	_, idt, err := s.a.checkJWT(r.Context(), raw, idToken)
	if err != nil {
		s.refuse(w, "the ID token was not accepted ("+strings.TrimPrefix(err.Error(), "auth: unauthenticated: ")+")")
		return
	}
	if err := p.CheckNonce(idt.Nonce); err != nil {
		s.refuse(w, err.Error())
		return
	}
	if len(raw) > maxSessionCookie {
		s.refuse(w, fmt.Sprintf("the ID token is %d bytes, more than a browser keeps in a cookie (%d): have the provider put fewer claims (groups, custom attributes) in it", len(raw), maxSessionCookie))
		return
	}
	maxAge := int(idt.Expiry.Sub(s.a.Now()).Seconds())
	http.SetCookie(w, s.cookie(sessionName, raw, maxAge, http.SameSiteStrictMode))
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// logout ends the session here and answers where the page should send the
// browser to end it at the provider too.
func (s *SignIn) logout(w http.ResponseWriter, r *http.Request) {
	// The header first: a request without it is refused the same way
	// whether or not sign-in is configured.
	if r.Header.Get(CSRFHeader) != "docsvc" {
		writeError(w, http.StatusForbidden, "sign-out needs the page's "+CSRFHeader+" header")
		return
	}
	if s == nil {
		notConfigured(w)
		return
	}
	var hint string
	if c, err := sessionCookie(r); err == nil {
		hint = c.Value
	}
	http.SetCookie(w, s.cookie(sessionName, "", -1, http.SameSiteStrictMode))
	if hint != "" {
		if _, _, err := s.a.checkJWT(r.Context(), hint, idToken); err != nil {
			hint = "" // only a valid ID token of ours is worth passing on
		}
	}
	next := logoutURL(s.endSession, isCognito(s.a.issuer), s.oauth.ClientID, s.postLogout, hint)
	writeJSON(w, http.StatusOK, map[string]string{"redirect": next})
}

// logoutURL is where the browser goes to end the session at the provider:
// its end_session_endpoint with client_id, post_logout_redirect_uri and the
// ID token as id_token_hint (OpenID RP-Initiated Logout), or Cognito's
// /logout with client_id and logout_uri; "/" when it publishes neither.
func logoutURL(endSession string, cognito bool, clientID, postLogout, idTokenHint string) string {
	u, err := url.Parse(endSession)
	if endSession == "" || err != nil {
		return "/"
	}
	v := u.Query()
	v.Set("client_id", clientID)
	if cognito {
		v.Set("logout_uri", postLogout)
	} else {
		v.Set("post_logout_redirect_uri", postLogout)
		if idTokenHint != "" {
			v.Set("id_token_hint", idTokenHint)
		}
	}
	u.RawQuery = v.Encode()
	return u.String()
}

func notConfigured(w http.ResponseWriter) {
	writeError(w, http.StatusNotFound, "sign-in is not configured (DOCSVC_OIDC_ISSUER)")
}

// refuse ends a sign-in that must not go on, as a short page that says why
// and how to start again.
func (s *SignIn) refuse(w http.ResponseWriter, why string) {
	s.log.Warn("sign-in refused", "reason", why)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusBadRequest)
	fmt.Fprintf(w, "Sign-in refused: %s.\nOpen the page again to start a new sign-in.\n", why)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
