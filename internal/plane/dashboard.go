package plane

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tetherhq/tether/internal/plane/planestore"
)

//go:embed templates/*.html templates/partials/*.html
var templateFS embed.FS

// sessionCookie holds a dashboard session's random ID.
const sessionCookie = "tether_plane_session"

func parseTemplates() (map[string]*template.Template, error) {
	funcs := template.FuncMap{"age": formatAge, "days": formatDaysLeft}
	out := map[string]*template.Template{}
	for _, page := range []string{"index", "install", "login", "rows", "error", "revoke", "licenses", "audit", "signin-refused"} {
		t, err := template.New(page).Funcs(funcs).ParseFS(templateFS,
			"templates/layout.html", "templates/partials/*.html", "templates/"+page+".html")
		if err != nil {
			return nil, fmt.Errorf("plane: parse template %s: %w", page, err)
		}
		out[page] = t
	}
	return out, nil
}

// formatDaysLeft renders a license's days left as "12 days left",
// "expires today" or "expired 3 days ago".
func formatDaysLeft(d int) string {
	switch {
	case d == 1:
		return "1 day left"
	case d > 0:
		return fmt.Sprintf("%d days left", d)
	case d == 0:
		return "expires today"
	case d == -1:
		return "expired 1 day ago"
	}
	return fmt.Sprintf("expired %d days ago", -d)
}

// formatAge renders a heartbeat age as "42s", "5m", "3h" or "2d".
func formatAge(sec int64) string {
	switch {
	case sec < 0:
		return "0s"
	case sec < 120:
		return fmt.Sprintf("%ds", sec)
	case sec < 2*3600:
		return fmt.Sprintf("%dm", sec/60)
	case sec < 2*86400:
		return fmt.Sprintf("%dh", sec/3600)
	default:
		return fmt.Sprintf("%dd", sec/86400)
	}
}

// page is what every template gets.
type page struct {
	Title    string
	Now      time.Time
	LoggedIn bool
	Who      planestore.Principal // who is signed in, when LoggedIn
	CSRF     string               // the session's form token (dashboard_actions.go)
}

// Can reports whether the signed-in principal's role allows perm; the
// templates show only the actions it does.
func (p page) Can(perm string) bool {
	return p.LoggedIn && Allows(p.Who.Role, Permission(perm))
}

// BreakGlass reports whether the page is shown to an admin token session;
// the layout warns.
func (p page) BreakGlass() bool { return p.LoggedIn && p.Who.Kind == planestore.KindBreakGlass }

// pageFor is the page of a request that passed the dashboard guard.
func (s *Server) pageFor(r *http.Request, title string) page {
	who, ok := principalFrom(r.Context())
	return page{Title: title, Now: s.now(), LoggedIn: ok, Who: who, CSRF: csrfToken(sessionID(r))}
}

func (s *Server) render(w http.ResponseWriter, name string, status int, data any) {
	var buf bytes.Buffer
	if err := s.templates[name].ExecuteTemplate(&buf, name+".html", data); err != nil {
		s.log.Error("render dashboard", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	securityHeaders(w)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// securityHeaders: the only script is the plane's own (/static), fetching
// only from the plane; no framing, no third parties.
func securityHeaders(w http.ResponseWriter) {
	w.Header().Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; connect-src 'self'; "+
		"style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "no-referrer")
}

// dashboard guards a page: a valid session cookie passes with its
// principal (a staff member, or the admin token); anything else goes to the
// login form. The admin token is accepted only in a POSTed form, never in a
// URL, where proxies and load balancers would log it.
func (s *Server) dashboard(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if c, err := r.Cookie(sessionCookie); err == nil {
			p, ok, err := s.store.SessionPrincipal(r.Context(), c.Value, s.now())
			if err != nil {
				s.log.Error("dashboard session", "err", err)
			}
			if ok && s.sessionPrincipal != nil {
				if tp, found := s.sessionPrincipal(c.Value); found {
					p = tp
				}
			}
			// An admin token session from before --no-admin-token ends with it.
			if ok && (p.Kind != planestore.KindBreakGlass || !s.cfg.NoAdminToken) {
				h(w, r.WithContext(withPrincipal(r.Context(), p)))
				return
			}
		}
		http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.Path), http.StatusSeeOther)
	}
}

// setSession starts a session for m, or for the admin token when m is nil.
func (s *Server) setSession(w http.ResponseWriter, r *http.Request, m *planestore.StaffMember) error {
	id, err := s.store.StartSession(r.Context(), s.now(), m)
	if err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{
		Name:     sessionCookie,
		Value:    id,
		Path:     "/",
		HttpOnly: true,
		Secure:   r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https",
		SameSite: http.SameSiteStrictMode,
		MaxAge:   12 * 3600,
	})
	return nil
}

// safeNext keeps post-login redirects on this site.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") {
		return "/"
	}
	// Only printable ASCII other than a backslash: browsers drop tabs and
	// newlines, so "/\t/evil.example" would become "//evil.example".
	for _, c := range []byte(next) {
		if c < 0x21 || c > 0x7e || c == '\\' {
			return "/"
		}
	}
	return next
}

type loginPage struct {
	page
	Error string
	Next  string
	// Issuer is the staff sign-in's provider; empty offers only the admin
	// token.
	Issuer string
	// AdminToken is whether the break-glass token's form is offered.
	AdminToken bool
}

func (s *Server) loginPage(next, errMsg string) loginPage {
	p := loginPage{page: page{Title: "Log in", Now: s.now()}, Next: safeNext(next), Error: errMsg, AdminToken: !s.cfg.NoAdminToken}
	if s.signIn != nil {
		p.Issuer = s.signIn.config.Issuer
	}
	return p
}

func (s *Server) handleLoginForm(w http.ResponseWriter, r *http.Request) {
	s.render(w, "login", http.StatusOK, s.loginPage(r.URL.Query().Get("next"), ""))
}

func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	if s.authBlocked(r) {
		tooManyAttempts(w)
		return
	}
	if err := r.ParseForm(); err != nil || !s.validAdminToken(strings.TrimSpace(r.PostForm.Get("token"))) {
		s.authFailed(r)
		s.log.Warn("dashboard login failed")
		s.render(w, "login", http.StatusUnauthorized, s.loginPage(r.PostForm.Get("next"), "That is not the admin token."))
		return
	}
	s.log.Warn("break-glass admin token used to log in to the dashboard")
	if err := s.setSession(w, r, nil); err != nil {
		s.log.Error("dashboard login", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	http.Redirect(w, r, safeNext(r.PostForm.Get("next")), http.StatusSeeOther)
}

func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		if err := s.store.EndSession(r.Context(), c.Value); err != nil {
			s.log.Error("dashboard logout", "err", err)
		}
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}
