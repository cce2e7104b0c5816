package plane

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tetherhq/tether/internal/plane/planestore"
	"github.com/tetherhq/tether/internal/wire"
)

// Admin API routes for staff, automation tokens and the audit log.

func (s *Server) handleAdminStaff(w http.ResponseWriter, r *http.Request) {
	ms, err := s.store.Staff(r.Context())
	if err != nil {
		s.fail(w, "list staff", err)
		return
	}
	writeJSON(w, http.StatusOK, ms)
}

func (s *Server) handleAdminAddStaff(w http.ResponseWriter, r *http.Request) {
	var in planestore.StaffInput
	if err := decodeStrict(r.Body, &in); err != nil {
		writeError(w, http.StatusBadRequest, "add staff: "+err.Error())
		return
	}
	if in.Issuer == "" && s.signIn != nil {
		in.Issuer = s.signIn.config.Issuer
	}
	if in.Issuer == "" {
		writeError(w, http.StatusBadRequest, "add staff: issuer is required: this plane has no staff sign-in configured (serve --oidc-issuer)")
		return
	}
	if err := in.Validate(); err != nil {
		writeError(w, http.StatusBadRequest, "add staff: "+err.Error())
		return
	}
	p, _ := principalFrom(r.Context())
	m, err := s.store.AddStaff(r.Context(), in, p)
	if err != nil {
		s.fail(w, "add staff", err)
		return
	}
	s.log.Info("staff added", "staff_id", m.ID, "role", string(m.Role), "by", p.ID)
	writeJSON(w, http.StatusCreated, m)
}

// RoleBody is POST /v1/admin/staff/{id}/role.
type RoleBody struct {
	Role planestore.Role `json:"role"`
}

// pathID returns the request's {id}, answering 400 when it is not an ID.
func pathID(w http.ResponseWriter, r *http.Request, what string) (string, bool) {
	id := r.PathValue("id")
	if !wire.ValidID(id) {
		writeError(w, http.StatusBadRequest, what+" ID must be 1-64 characters of A-Z a-z 0-9 _ -")
		return "", false
	}
	return id, true
}

func (s *Server) handleAdminSetStaffRole(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "staff")
	if !ok {
		return
	}
	var body RoleBody
	if err := decodeStrict(r.Body, &body); err != nil {
		writeError(w, http.StatusBadRequest, "set role: "+err.Error())
		return
	}
	if _, err := planestore.ParseRole(string(body.Role)); err != nil {
		writeError(w, http.StatusBadRequest, "set role: "+err.Error())
		return
	}
	p, _ := principalFrom(r.Context())
	m, err := s.store.SetStaffRole(r.Context(), id, body.Role, p)
	if err != nil {
		s.fail(w, "set role of "+id, err)
		return
	}
	writeJSON(w, http.StatusOK, m)
}

func (s *Server) handleAdminRemoveStaff(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "staff")
	if !ok {
		return
	}
	p, _ := principalFrom(r.Context())
	if err := s.store.RemoveStaff(r.Context(), id, p); err != nil {
		s.fail(w, "remove staff "+id, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleAdminTokens(w http.ResponseWriter, r *http.Request) {
	ts, err := s.store.Tokens(r.Context())
	if err != nil {
		s.fail(w, "list tokens", err)
		return
	}
	writeJSON(w, http.StatusOK, ts)
}

// CreatedToken is the answer to POST /v1/admin/tokens: the only time the
// secret is shown.
type CreatedToken struct {
	Token  planestore.Token `json:"token"`
	Secret string           `json:"secret"`
}

func (s *Server) handleAdminCreateToken(w http.ResponseWriter, r *http.Request) {
	var in planestore.TokenInput
	if err := decodeStrict(r.Body, &in); err != nil {
		writeError(w, http.StatusBadRequest, "create token: "+err.Error())
		return
	}
	if err := in.Validate(s.now()); err != nil {
		writeError(w, http.StatusBadRequest, "create token: "+err.Error())
		return
	}
	p, _ := principalFrom(r.Context())
	t, secret, err := s.store.CreateToken(r.Context(), in, p)
	if err != nil {
		s.fail(w, "create token", err)
		return
	}
	s.log.Info("automation token created", "token_id", t.ID, "role", string(t.Role), "by", p.ID)
	writeJSON(w, http.StatusCreated, CreatedToken{Token: t, Secret: secret})
}

func (s *Server) handleAdminRevokeToken(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "token")
	if !ok {
		return
	}
	p, _ := principalFrom(r.Context())
	t, err := s.store.RevokeToken(r.Context(), id, p)
	if err != nil {
		s.fail(w, "revoke token "+id, err)
		return
	}
	s.log.Info("automation token revoked", "token_id", t.ID, "by", p.ID)
	writeJSON(w, http.StatusOK, t)
}

// ParseAuditQuery reads GET /v1/admin/audit's filters: customer, install,
// actor, action, since (RFC 3339) and limit (1-1000).
func ParseAuditQuery(q url.Values) (planestore.AuditFilter, error) {
	f := planestore.AuditFilter{Customer: q.Get("customer"), InstallID: q.Get("install"), Actor: q.Get("actor"), Action: q.Get("action")}
	if f.Customer != "" {
		if err := planestore.CheckText("customer", f.Customer, 200); err != nil {
			return planestore.AuditFilter{}, err
		}
	}
	if f.InstallID != "" && !wire.ValidID(f.InstallID) {
		return planestore.AuditFilter{}, errors.New("install must be 1-64 characters of A-Z a-z 0-9 _ -")
	}
	if f.Actor != "" {
		if err := planestore.CheckText("actor", f.Actor, 255); err != nil {
			return planestore.AuditFilter{}, err
		}
	}
	if f.Action != "" && (len(f.Action) > 64 || strings.Trim(f.Action, "abcdefghijklmnopqrstuvwxyz.-") != "") {
		return planestore.AuditFilter{}, errors.New("action must be an action name such as install.revoke (a-z . -)")
	}
	// since and limit, when present, must hold a value: an empty one is a
	// mistake, not "no filter".
	if _, ok := q["since"]; ok {
		t, err := time.Parse(time.RFC3339, q.Get("since"))
		if err != nil {
			return planestore.AuditFilter{}, errors.New("since must be an RFC 3339 time such as 2026-11-01T00:00:00Z")
		}
		f.Since = t
	}
	if _, ok := q["limit"]; ok {
		n, err := strconv.Atoi(q.Get("limit"))
		if err != nil || n < 1 || n > planestore.MaxAuditLimit {
			return planestore.AuditFilter{}, errors.New("limit must be a whole number from 1 to 1000")
		}
		f.Limit = n
	}
	return f, nil
}

func (s *Server) handleAdminAudit(w http.ResponseWriter, r *http.Request) {
	f, err := ParseAuditQuery(r.URL.Query())
	if err != nil {
		writeError(w, http.StatusBadRequest, "audit log: "+err.Error())
		return
	}
	recs, err := s.store.Audit(r.Context(), f)
	if err != nil {
		s.fail(w, "audit log", err)
		return
	}
	writeJSON(w, http.StatusOK, recs)
}

// ReleaseAuditBody is POST /v1/admin/audit/releases: a release command
// run on the vendor's side (where the release keys are) reports what it
// did, so the audit log names who did it.
type ReleaseAuditBody struct {
	// Action is release.publish, release.revoke or release.promote.
	Action  string `json:"action"`
	Channel string `json:"channel"`
	Version string `json:"version"`
	Reason  string `json:"reason,omitempty"`
}

// Validate checks a release audit report.
func (b ReleaseAuditBody) Validate() error {
	switch b.Action {
	case "release.publish", "release.revoke", "release.promote":
	default:
		return errors.New("action must be release.publish, release.revoke or release.promote")
	}
	if !wire.ValidChannel(b.Channel) {
		return errors.New("channel must be a channel name such as stable")
	}
	if !wire.ValidSemver(b.Version) {
		return errors.New("version must be a semantic version such as 1.4.0")
	}
	if b.Reason != "" {
		return planestore.CheckText("reason", b.Reason, 1000)
	}
	return nil
}

func (s *Server) handleAdminAuditRelease(w http.ResponseWriter, r *http.Request) {
	var body ReleaseAuditBody
	if err := decodeStrict(r.Body, &body); err != nil {
		writeError(w, http.StatusBadRequest, "release audit: "+err.Error())
		return
	}
	if err := body.Validate(); err != nil {
		writeError(w, http.StatusBadRequest, "release audit: "+err.Error())
		return
	}
	e := planestore.AuditEntry{Action: body.Action, Target: body.Channel + "/" + body.Version, Reason: body.Reason}
	if !s.audited(w, r, e) {
		return
	}
	writeJSON(w, http.StatusCreated, e)
}

type auditPage struct {
	page
	Customer string
	Records  []planestore.AuditRecord
	Error    string
}

// handleDashboardAudit shows the audit log, newest first, optionally for
// one customer.
func (s *Server) handleDashboardAudit(w http.ResponseWriter, r *http.Request) {
	p := auditPage{page: s.pageFor(r, "Audit log")}
	f, err := ParseAuditQuery(url.Values{"customer": {r.URL.Query().Get("customer")}})
	if err != nil {
		p.Error = err.Error()
		s.render(w, "audit", http.StatusBadRequest, p)
		return
	}
	p.Customer = f.Customer
	if p.Records, err = s.store.Audit(r.Context(), f); err != nil {
		s.log.Error("dashboard audit", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	s.render(w, "audit", http.StatusOK, p)
}
