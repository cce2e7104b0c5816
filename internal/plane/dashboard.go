package plane

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tetherhq/tether/internal/wire"
)

//go:embed templates/*.html
var templateFS embed.FS

// sessionCookie holds a dashboard session's random ID.
const sessionCookie = "tether_plane_session"

func parseTemplates() (map[string]*template.Template, error) {
	funcs := template.FuncMap{"age": formatAge}
	out := map[string]*template.Template{}
	for _, page := range []string{"index", "install", "login", "audit", "signin-refused"} {
		t, err := template.New(page).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+page+".html")
		if err != nil {
			return nil, fmt.Errorf("plane: parse template %s: %w", page, err)
		}
		out[page] = t
	}
	return out, nil
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
	// Principal is who is signed in; the layout warns while it is the
	// break-glass admin token.
	Principal Principal
}

// BreakGlass reports whether the page is shown to an admin token session.
func (p page) BreakGlass() bool { return p.Principal.Kind == KindBreakGlass }

// pageFor is the page header of a guarded dashboard request.
func (s *Server) pageFor(r *http.Request, title string) page {
	p, _ := principalFrom(r.Context())
	return page{Title: title, Now: s.now(), LoggedIn: true, Principal: p}
}

func (s *Server) render(w http.ResponseWriter, name string, status int, data any) {
	var buf bytes.Buffer
	if err := s.templates[name].ExecuteTemplate(&buf, name+".html", data); err != nil {
		s.log.Error("render dashboard", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	// The dashboard needs no script and no framing; say so to the browser.
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// dashboard guards a page: a valid session cookie passes with its
// principal (a staff member, or the admin token); anything else goes to the
// login form. The admin token is accepted only in a POSTed form, never in a
// URL, where proxies and load balancers would log it.
func (s *Server) dashboard(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if c, err := r.Cookie(sessionCookie); err == nil {
			p, ok, err := s.sessions.principal(r.Context(), c.Value, s.now())
			if err != nil {
				s.log.Error("dashboard session", "err", err)
			}
			// An admin token session from before --no-admin-token ends with it.
			if ok && (p.Kind != KindBreakGlass || !s.cfg.NoAdminToken) {
				h(w, r.WithContext(withPrincipal(r.Context(), p)))
				return
			}
		}
		http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.Path), http.StatusSeeOther)
	}
}

// setSession starts a session for m, or for the admin token when m is nil.
func (s *Server) setSession(w http.ResponseWriter, r *http.Request, m *StaffMember) error {
	id, err := s.sessions.start(r.Context(), s.now(), m)
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
		p.Issuer = s.signIn.issuer
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
		if err := s.sessions.end(r.Context(), c.Value); err != nil {
			s.log.Error("dashboard logout", "err", err)
		}
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

type indexPage struct {
	page
	Installs   []InstallView
	StaleCount int
	Pending    []Diagnostic
}

func (s *Server) handleDashboard(w http.ResponseWriter, r *http.Request) {
	ins, err := s.store.Installs(r.Context())
	if err != nil {
		s.log.Error("dashboard", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	p := indexPage{page: s.pageFor(r, "Fleet")}
	for _, in := range ins {
		v := s.view(in)
		if v.StaleNow {
			p.StaleCount++
		}
		p.Installs = append(p.Installs, v)
	}
	if p.Pending, err = s.store.Diagnostics(r.Context(), "", DiagRequested); err != nil {
		s.log.Error("dashboard", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	s.render(w, "index", http.StatusOK, p)
}

type historyRow struct {
	HeartbeatEntry
	Heartbeat wire.Heartbeat
}

type installPage struct {
	page
	Detail  InstallDetail
	History []historyRow
}

// dashboardHistory is how many heartbeats the install page shows.
const dashboardHistory = 100

func (s *Server) handleDashboardInstall(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !wire.ValidID(id) {
		http.Error(w, "install ID must be 1-64 characters of A-Z a-z 0-9 _ -", http.StatusBadRequest)
		return
	}
	d, err := s.installDetail(r, id, dashboardHistory)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			http.Error(w, "no install "+id, http.StatusNotFound)
			return
		}
		s.log.Error("dashboard install", "install_id", id, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	p := installPage{page: s.pageFor(r, "Install "+id), Detail: d}
	for _, e := range d.History {
		row := historyRow{HeartbeatEntry: e}
		// The body was re-encoded from a validated wire.Heartbeat, so this
		// only fails if the database was edited by hand; show the row anyway.
		_ = json.Unmarshal(e.Body, &row.Heartbeat)
		p.History = append(p.History, row)
	}
	s.render(w, "install", http.StatusOK, p)
}
