package plane

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/tetherhq/tether/internal/plane/planestore"
	"github.com/tetherhq/tether/internal/release"
	"github.com/tetherhq/tether/internal/wire"
)

// AdminTokenFile is the admin token's file name inside the data directory.
const AdminTokenFile = "admin-token"

// LoadOrCreateAdminToken returns the admin token kept in dataDir, creating
// it (0600, 32 random bytes, base64url) on first start. An existing file
// readable by group or others is refused rather than trusted.
func LoadOrCreateAdminToken(dataDir string) (token string, created bool, err error) {
	path := filepath.Join(dataDir, AdminTokenFile)
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", false, fmt.Errorf("plane: admin token: create data dir: %w", err)
	}
	data, err := os.ReadFile(path)
	if err == nil {
		fi, err := os.Stat(path)
		if err != nil {
			return "", false, fmt.Errorf("plane: admin token: %w", err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			return "", false, fmt.Errorf("plane: admin token file %s is readable by others (mode %o); run chmod 600 on it", path, fi.Mode().Perm())
		}
		tok := strings.TrimSpace(string(data))
		if len(tok) < 32 {
			return "", false, fmt.Errorf("plane: admin token file %s holds fewer than 32 characters; delete it to make a new one", path)
		}
		return tok, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", false, fmt.Errorf("plane: admin token: %w", err)
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", false, fmt.Errorf("plane: admin token: %w", err)
	}
	tok := base64.RawURLEncoding.EncodeToString(b[:])
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", false, fmt.Errorf("plane: admin token: %w", err)
	}
	if _, err := f.WriteString(tok + "\n"); err != nil {
		f.Close()
		return "", false, fmt.Errorf("plane: admin token: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", false, fmt.Errorf("plane: admin token: %w", err)
	}
	return tok, true, nil
}

func (s *Server) validAdminToken(tok string) bool {
	return !s.cfg.NoAdminToken && subtle.ConstantTimeCompare([]byte(tok), []byte(s.cfg.AdminToken)) == 1
}

// actionError is a refused staff action: the status to answer and a
// message safe to show (built from IDs and rules, never request content).
type actionError struct {
	status int
	msg    string
}

func (e *actionError) Error() string { return e.msg }

// failure maps an action's error to an HTTP status and a message naming
// only the operation and the reason; unexpected errors are logged.
func (s *Server) failure(op string, err error) (int, string) {
	var ae *actionError
	switch {
	case errors.As(err, &ae):
		return ae.status, ae.msg
	case errors.Is(err, planestore.ErrNotFound):
		return http.StatusNotFound, op + ": not found"
	case errors.Is(err, planestore.ErrExists):
		return http.StatusConflict, op + ": already exists"
	case errors.Is(err, planestore.ErrWrongStatus):
		return http.StatusConflict, op + ": " + planestore.ErrWrongStatus.Error()
	case errors.Is(err, planestore.ErrRevoked):
		return http.StatusForbidden, op + ": install revoked"
	case errors.Is(err, planestore.ErrLastAdministrator):
		return http.StatusConflict, op + ": " + planestore.ErrLastAdministrator.Error()
	default:
		s.log.Error(op, "err", err)
		return http.StatusInternalServerError, op + ": internal error"
	}
}

// fail answers the admin API with failure's status and message.
func (s *Server) fail(w http.ResponseWriter, op string, err error) {
	status, msg := s.failure(op, err)
	writeError(w, status, msg)
}

func (s *Server) handleAdminInstalls(w http.ResponseWriter, r *http.Request) {
	ins, err := s.store.Installs(r.Context())
	if err != nil {
		s.fail(w, "list installs", err)
		return
	}
	views := make([]InstallView, 0, len(ins))
	for _, in := range ins {
		views = append(views, s.view(in))
	}
	writeJSON(w, http.StatusOK, views)
}

// InstallView is an install as the admin API and dashboard show it, with the
// values computed at read time (staleness, heartbeat age, license state by
// the plane's own clock).
type InstallView struct {
	planestore.Install
	StaleNow            bool   `json:"stale_now"`
	LastHeartbeatAgeSec int64  `json:"last_heartbeat_age_seconds"`
	PlaneLicenseState   string `json:"plane_license_state"`
}

// view computes what depends on now. Staleness is judged here as well as by
// the sweep so the dashboard is right between sweeps.
func (s *Server) view(in planestore.Install) InstallView {
	now := s.now()
	age := now.Sub(in.LastSeen)
	interval := max(in.IntervalSeconds, 1)
	v := InstallView{Install: in, LastHeartbeatAgeSec: int64(age.Seconds())}
	v.StaleNow = !in.Revoked && age.Seconds() > float64(int64(s.cfg.StaleAfter)*interval)
	v.PlaneLicenseState = licenseStateAt(in.LicenseExpires, in.LicenseGrace, now)
	return v
}

// InstallDetail is GET /v1/admin/installs/{id}.
type InstallDetail struct {
	Install     InstallView                 `json:"install"`
	History     []planestore.HeartbeatEntry `json:"history"`
	Diagnostics []planestore.Diagnostic     `json:"diagnostics"`
	Telemetry   []planestore.TelemetryDay   `json:"telemetry"`
}

func (s *Server) installDetail(r *http.Request, id string, historyLimit int) (InstallDetail, error) {
	ctx := r.Context()
	in, err := s.store.Install(ctx, id)
	if err != nil {
		return InstallDetail{}, err
	}
	d := InstallDetail{Install: s.view(in)}
	if d.History, err = s.store.History(ctx, id, historyLimit); err != nil {
		return InstallDetail{}, err
	}
	if d.Diagnostics, err = s.store.Diagnostics(ctx, id, ""); err != nil {
		return InstallDetail{}, err
	}
	if d.Telemetry, err = s.store.Telemetry(ctx, id); err != nil {
		return InstallDetail{}, err
	}
	// An install with none of them has empty lists, not nulls: clients
	// generated from the API's document expect arrays.
	if d.History == nil {
		d.History = []planestore.HeartbeatEntry{}
	}
	if d.Diagnostics == nil {
		d.Diagnostics = []planestore.Diagnostic{}
	}
	if d.Telemetry == nil {
		d.Telemetry = []planestore.TelemetryDay{}
	}
	return d, nil
}

func (s *Server) handleAdminInstall(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !wire.ValidID(id) {
		writeError(w, http.StatusBadRequest, "install ID must be 1-64 characters of A-Z a-z 0-9 _ -")
		return
	}
	d, err := s.installDetail(r, id, planestore.HistoryLimit)
	if err != nil {
		s.fail(w, "install "+id, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

func (s *Server) handleAdminRevoke(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	in, err := s.revokeInstall(r.Context(), id)
	if err != nil {
		s.fail(w, "revoke "+id, err)
		return
	}
	writeJSON(w, http.StatusOK, s.view(in))
}

// revokeInstall revokes an install for the request's principal; the admin
// API and the dashboard both call it.
func (s *Server) revokeInstall(ctx context.Context, id string) (planestore.Install, error) {
	if !wire.ValidID(id) {
		return planestore.Install{}, &actionError{http.StatusBadRequest, "install ID must be 1-64 characters of A-Z a-z 0-9 _ -"}
	}
	in, err := s.store.Install(ctx, id)
	if err != nil {
		return planestore.Install{}, err
	}
	if err := s.auditFirst(ctx, planestore.AuditEntry{Action: "install.revoke", Customer: in.Customer, InstallID: id}); err != nil {
		return planestore.Install{}, err
	}
	if err := s.store.Revoke(ctx, id); err != nil {
		return planestore.Install{}, err
	}
	s.keys.forget(id)
	s.log.Warn("install revoked", "install_id", id)
	return s.store.Install(ctx, id)
}

// DiagnosticRequestBody is POST /v1/admin/diagnostics.
type DiagnosticRequestBody struct {
	InstallID string `json:"install_id"`
	Reason    string `json:"reason"`
}

func (s *Server) handleAdminRequestDiag(w http.ResponseWriter, r *http.Request) {
	var body DiagnosticRequestBody
	if err := decodeStrict(r.Body, &body); err != nil {
		writeError(w, http.StatusBadRequest, "diagnostic request: "+err.Error())
		return
	}
	d, err := s.requestDiagnostics(r.Context(), body.InstallID, body.Reason)
	if err != nil {
		s.fail(w, "request diagnostics from "+body.InstallID, err)
		return
	}
	writeJSON(w, http.StatusCreated, d)
}

// requestDiagnostics asks an install for a bundle on behalf of the
// request's principal; the admin API and the dashboard both call it.
func (s *Server) requestDiagnostics(ctx context.Context, installID, reason string) (planestore.Diagnostic, error) {
	if !wire.ValidID(installID) {
		return planestore.Diagnostic{}, &actionError{http.StatusBadRequest, "install_id must be 1-64 characters of A-Z a-z 0-9 _ -"}
	}
	// The reason travels to the customer as a wire.DiagnosticRequest; check
	// it by the same rules now rather than have the agent reject it later.
	by, _ := principalFrom(ctx)
	if err := s.checkDiagRequest(reason, by); err != nil {
		return planestore.Diagnostic{}, &actionError{http.StatusBadRequest, err.Error()}
	}
	in, err := s.store.Install(ctx, installID)
	if err != nil {
		return planestore.Diagnostic{}, err
	}
	id := planestore.NewDiagnosticID()
	if err := s.auditFirst(ctx, planestore.AuditEntry{Action: "diagnostics.request", Customer: in.Customer, InstallID: in.ID, Target: id, Reason: reason}); err != nil {
		return planestore.Diagnostic{}, err
	}
	d, err := s.store.RequestDiagnostic(ctx, id, installID, reason, by)
	if err != nil {
		return planestore.Diagnostic{}, err
	}
	s.log.Info("diagnostics requested", "diagnostic_id", d.ID, "install_id", d.InstallID)
	return d, nil
}

func (s *Server) handleAdminDiagnostics(w http.ResponseWriter, r *http.Request) {
	install, status := r.URL.Query().Get("install"), r.URL.Query().Get("status")
	if install != "" && !wire.ValidID(install) {
		writeError(w, http.StatusBadRequest, "install must be 1-64 characters of A-Z a-z 0-9 _ -")
		return
	}
	if status != "" && status != planestore.DiagRequested && status != planestore.DiagUploaded {
		writeError(w, http.StatusBadRequest, "status must be requested or uploaded")
		return
	}
	ds, err := s.store.Diagnostics(r.Context(), install, status)
	if err != nil {
		s.fail(w, "list diagnostics", err)
		return
	}
	if ds == nil {
		ds = []planestore.Diagnostic{}
	}
	writeJSON(w, http.StatusOK, ds)
}

func (s *Server) handleAdminBundle(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := s.serveBundle(w, r, id); err != nil {
		s.fail(w, "diagnostic "+id, err)
	}
}

// serveBundle sends diagnostic id's uploaded bundle for the request's
// principal; the admin API and the dashboard both call it. It writes
// nothing when it returns an error.
func (s *Server) serveBundle(w http.ResponseWriter, r *http.Request, id string) error {
	if !wire.ValidID(id) {
		return &actionError{http.StatusBadRequest, "diagnostic ID must be 1-64 characters of A-Z a-z 0-9 _ -"}
	}
	d, err := s.store.Diagnostic(r.Context(), id)
	if err != nil {
		return err
	}
	if d.Status != planestore.DiagUploaded {
		return &actionError{http.StatusConflict, "diagnostic " + id + ": no bundle uploaded yet (status " + d.Status + ")"}
	}
	// The record names the customer, so a per-customer audit query finds it.
	in, err := s.store.Install(r.Context(), d.InstallID)
	if err != nil {
		return err
	}
	if err := s.auditFirst(r.Context(), planestore.AuditEntry{Action: "diagnostics.download", Customer: in.Customer, InstallID: d.InstallID, Target: id}); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(r.Context(), objectTimeout)
	defer cancel()
	f, err := s.cfg.Bundles.Get(ctx, filepath.Base(d.BundlePath))
	if err != nil {
		return err
	}
	defer f.Close()
	w.Header().Set("Content-Type", "application/zip")
	w.Header().Set("Content-Disposition", `attachment; filename="`+id+`.zip"`)
	w.Header().Set("Tether-Bundle-Sha256", d.BundleSHA256)
	w.Header().Set("Content-Length", fmt.Sprint(d.BundleSize))
	if _, err := io.Copy(w, f); err != nil {
		s.log.Warn("send bundle", "diagnostic_id", id, "err", err)
	}
	return nil
}

// ChannelReleases is one channel's entry in GET /v1/admin/releases.
type ChannelReleases struct {
	Channel  string             `json:"channel"`
	Releases []release.Manifest `json:"releases"`
}

func (s *Server) handleAdminReleases(w http.ResponseWriter, r *http.Request) {
	rs, err := s.releases()
	if err != nil {
		s.fail(w, "list releases", err)
		return
	}
	writeJSON(w, http.StatusOK, rs)
}

func (s *Server) handleAdminLicenses(w http.ResponseWriter, r *http.Request) {
	ls, err := s.store.Licenses(r.Context())
	if err != nil {
		s.fail(w, "list licenses", err)
		return
	}
	if ls == nil {
		ls = []planestore.LicenseRecord{}
	}
	writeJSON(w, http.StatusOK, ls)
}

// decodeStrict decodes one JSON value, refusing unknown fields and trailing
// data, with an error that does not repeat the input.
func decodeStrict(r io.Reader, v any) error {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return fmt.Errorf("body over %d bytes", mbe.Limit)
		}
		return errors.New("body must be one JSON object with only the documented fields")
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("body has data after the JSON object")
	}
	return nil
}
