package plane

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/tetherhq/tether/internal/plane/planestore"
)

// Permission names one kind of action on the plane.
type Permission string

const (
	PermView          Permission = "view" // read installs, heartbeats, alerts, releases, licenses, audit
	PermDiagRequest   Permission = "diagnostics.request"
	PermDiagDownload  Permission = "diagnostics.download"
	PermReleaseManage Permission = "releases.manage" // publish, promote, revoke
	PermLicenseManage Permission = "licenses.manage" // register, issue, extend
	PermInstallRevoke Permission = "installs.revoke"
	PermStaffManage   Permission = "staff.manage" // staff members and automation tokens
)

// Allows reports whether r allows p. An unknown role allows nothing.
func Allows(r planestore.Role, p Permission) bool {
	switch r {
	case planestore.RoleAdmin:
		return true
	case planestore.RoleRelease:
		return p == PermView || p == PermReleaseManage
	case planestore.RoleSupport:
		return p == PermView || p == PermDiagRequest || p == PermDiagDownload
	case planestore.RoleViewer:
		return p == PermView
	}
	return false
}

type principalKey struct{}

func withPrincipal(ctx context.Context, p planestore.Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// principalFrom returns the request's principal; ok is false on a request
// that did not pass require or the dashboard guard.
func principalFrom(ctx context.Context) (planestore.Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(planestore.Principal)
	return p, ok
}

// require guards an admin API handler: the request must carry a credential
// (Authorization: Bearer) whose principal's role allows perm. A missing or
// wrong credential answers 401, a role that does not allow perm 403.
func (s *Server) require(perm Permission, h http.HandlerFunc) http.Handler {
	return guarded{perm: perm, h: func(w http.ResponseWriter, r *http.Request) {
		// Only a presented token counts as an attempt: a request without one
		// guesses nothing, and is told what to send.
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if ok && s.authBlocked(r) {
			tooManyAttempts(w)
			return
		}
		p, found := s.bearerPrincipal(r.Context(), tok)
		if !ok || !found {
			if ok {
				s.authFailed(r)
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="tether-plane"`)
			writeError(w, http.StatusUnauthorized, "admin credential missing or wrong (send Authorization: Bearer <token>)")
			return
		}
		if p.Kind == planestore.KindBreakGlass {
			s.warnBreakGlass(w, r)
		}
		if !Allows(p.Role, perm) {
			writeError(w, http.StatusForbidden, "role "+string(p.Role)+" may not "+string(perm))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
		h(w, r.WithContext(withPrincipal(r.Context(), p)))
	}}
}

// guarded is an admin API route's handler with the permission it needs, so
// the route table can be read back (the role enforcement test does).
type guarded struct {
	perm Permission
	h    http.HandlerFunc
}

func (g guarded) ServeHTTP(w http.ResponseWriter, r *http.Request) { g.h(w, r) }

// bearerPrincipal resolves a bearer credential to its principal: the admin
// token (break-glass) or a live automation token. A database error counts
// as no principal.
func (s *Server) bearerPrincipal(ctx context.Context, tok string) (planestore.Principal, bool) {
	if tok == "" {
		return planestore.Principal{}, false
	}
	if s.validAdminToken(tok) {
		return planestore.BreakGlass(), true
	}
	p, ok, err := s.store.TokenPrincipal(ctx, tok)
	if err != nil {
		s.log.Error("admin credential", "err", err)
	}
	return p, ok
}

// BreakGlassWarning is the Tether-Warning header the admin API sets on every
// answer to a request made with the admin token.
const BreakGlassWarning = "break-glass admin token used; sign in as staff or use an automation token (tether-plane tokens create)"

// warnBreakGlass logs every use of the admin token and tells the client.
func (s *Server) warnBreakGlass(w http.ResponseWriter, r *http.Request) {
	s.log.Warn("break-glass admin token used", "method", r.Method, "path", r.URL.Path)
	w.Header().Set("Tether-Warning", BreakGlassWarning)
}

// audit records that the request's principal did e in the audit log. A
// handler calls it before the action and refuses the action when it fails,
// so nothing is done that the log does not show; actions whose store
// methods take the entry (staff, tokens, logins) record it in the action's
// own transaction instead.
func (s *Server) audit(ctx context.Context, e planestore.AuditEntry) error {
	p, ok := principalFrom(ctx)
	if !ok {
		return errors.New("plane: audit: request has no principal")
	}
	if err := s.store.AppendAudit(ctx, p, e); err != nil {
		s.log.Error("audit", "action", e.Action, "err", err)
		return err
	}
	return nil
}

// auditFirst writes e before an action, and refuses the action (a 500
// actionError) when it cannot: nothing is done that the log would not show.
func (s *Server) auditFirst(ctx context.Context, e planestore.AuditEntry) error {
	if err := s.audit(ctx, e); err != nil {
		return &actionError{http.StatusInternalServerError, e.Action + ": not done: the audit log could not be written"}
	}
	return nil
}

// audited is auditFirst for a handler: it answers the refusal itself.
func (s *Server) audited(w http.ResponseWriter, r *http.Request, e planestore.AuditEntry) bool {
	if err := s.auditFirst(r.Context(), e); err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return false
	}
	return true
}
