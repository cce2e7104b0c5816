package plane

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tetherhq/tether/internal/blob"
	"github.com/tetherhq/tether/internal/license/issuer"
	"github.com/tetherhq/tether/internal/plane/planestore"
	"github.com/tetherhq/tether/internal/release/publish"
	"github.com/tetherhq/tether/internal/reqsign/reqverify"
	"github.com/tetherhq/tether/internal/wire"
)

// signed wraps an agent handler: body capped at max, then verified by
// reqverify (which puts the install ID in the context), then refused if the
// install was revoked, even while this replica still has its key cached (a
// revoke through another replica or the tether-plane command).
func (s *Server) signed(h http.HandlerFunc, max int64) http.Handler {
	return s.verified(s.unrevoked(h), max)
}

// signedWrite is signed for a handler whose store write itself refuses a
// revoked install (planestore.ErrRevoked), so it skips the extra lookup.
func (s *Server) signedWrite(h http.HandlerFunc, max int64) http.Handler {
	return s.verified(h, max)
}

func (s *Server) verified(h http.HandlerFunc, max int64) http.Handler {
	v := &reqverify.Verifier{
		Keys:    s.keys.get,
		Nonces:  nonceStore{s.store},
		MaxSkew: s.cfg.MaxSkew,
		Now:     s.now,
		Logger:  s.log,
	}
	return s.limit(v.Middleware(h), max)
}

func (s *Server) unrevoked(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		_, err := s.store.InstallKey(r.Context(), installFrom(r))
		if errors.Is(err, planestore.ErrRevoked) {
			s.keys.forget(installFrom(r))
			writeError(w, http.StatusUnauthorized, "revoked")
			return
		}
		if err != nil {
			s.fail(w, "install", err)
			return
		}
		h(w, r)
	}
}

// installKey adapts the store's sentinels to reqverify's, which decide the
// 401 reason the agent sees.
func (s *Server) installKey(ctx context.Context, installID string) (ed25519.PublicKey, error) {
	k, err := s.store.InstallKey(ctx, installID)
	switch {
	case errors.Is(err, planestore.ErrNotFound):
		return nil, errors.Join(reqverify.ErrUnknownInstall, err)
	case errors.Is(err, planestore.ErrRevoked):
		return nil, errors.Join(reqverify.ErrRevoked, err)
	}
	return k, err
}

// nonceStore is the store seen as reqverify.NonceStore.
type nonceStore struct{ s *planestore.Store }

func (n nonceStore) Remember(ctx context.Context, installID, nonce string, until time.Time) (bool, error) {
	return n.s.RememberNonce(ctx, installID, nonce, until)
}

// installFrom is the verified install; the middleware guarantees it.
func installFrom(r *http.Request) string {
	id, _ := reqverify.InstallFrom(r.Context())
	return id
}

// wireError answers a payload that failed strict decoding. wire's errors
// name the field and rule, never the value, so they are safe to return.
func (s *Server) wireError(w http.ResponseWriter, r *http.Request, what string, err error) {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		writeError(w, http.StatusRequestEntityTooLarge, what+": body too large")
		return
	}
	s.log.Warn("rejected payload", "install_id", installFrom(r), "payload", what, "err", err)
	writeError(w, http.StatusBadRequest, err.Error())
}

func (s *Server) handleActivate(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		s.wireError(w, r, "activation", err)
		return
	}
	req, err := wire.Decode[wire.ActivationRequest](body)
	if err != nil {
		s.wireError(w, r, "activation", err)
		return
	}
	pub, _ := base64.RawURLEncoding.DecodeString(req.PublicKey) // Validate checked it
	in, err := s.store.Activate(r.Context(), issuer.TokenHash(req.ActivationToken), pub, req.AgentVersion, s.cfg.HeartbeatInterval)
	switch {
	case errors.Is(err, planestore.ErrBadToken):
		writeError(w, http.StatusUnauthorized, "activation token not recognised: check it was copied whole from the license issue output")
		return
	case errors.Is(err, planestore.ErrAlreadyActivated):
		writeError(w, http.StatusConflict, "activation token already used: each token activates one install; ask the vendor for a new license")
		return
	case err != nil:
		s.fail(w, "activate", err)
		return
	}
	s.log.Info("install activated", "install_id", in.ID, "license_id", in.LicenseID)
	writeJSON(w, http.StatusOK, wire.ActivationResponse{
		InstallID:                in.ID,
		HeartbeatIntervalSeconds: int(s.cfg.HeartbeatInterval / time.Second),
		LicenseID:                in.LicenseID,
	})
}

// handleRekey replaces the install's key: the request is signed with the
// current key (so replay protection and revocation apply), and the body
// carries the new key with its signature over wire.RekeyMessage, proving the
// agent holds the new private key. Once the store swapped the key, this
// replica's cache forgets the old one; other replicas drop it within
// keyCacheTTL, and the store's conditional update refuses a second re-key
// signed with the old key whichever replica verified it.
func (s *Server) handleRekey(w http.ResponseWriter, r *http.Request) {
	id := installFrom(r)
	oldKey, _ := reqverify.KeyFrom(r.Context())
	body, err := io.ReadAll(r.Body)
	if err != nil {
		s.wireError(w, r, "rekey", err)
		return
	}
	req, err := wire.Decode[wire.RekeyRequest](body)
	if err != nil {
		s.wireError(w, r, "rekey", err)
		return
	}
	newKey, _ := base64.RawURLEncoding.DecodeString(req.PublicKey) // Validate checked both
	proof, _ := base64.RawURLEncoding.DecodeString(req.Proof)
	if !ed25519.Verify(newKey, wire.RekeyMessage(id, req.PublicKey), proof) {
		s.log.Warn("rekey refused: bad proof", "install_id", id)
		writeError(w, http.StatusBadRequest, "rekey_request.proof: does not verify with public_key over "+wire.RekeyContext+", the install ID and public_key")
		return
	}
	err = s.store.Rekey(r.Context(), id, oldKey, newKey)
	s.keys.forget(id)
	switch {
	case errors.Is(err, planestore.ErrRevoked):
		writeError(w, http.StatusUnauthorized, "revoked")
		return
	case errors.Is(err, planestore.ErrKeyChanged):
		writeError(w, http.StatusConflict, "the install's key changed since this request was signed: sign again with the key the plane now has")
		return
	case err != nil:
		s.fail(w, "rekey", err)
		return
	}
	s.log.Info("install re-keyed", "install_id", id)
	w.WriteHeader(http.StatusNoContent)
}

// OverallHealth folds a heartbeat into one health value: the worst of its
// components and its AI provider. "unknown" outranks ok but raises no alert;
// a heartbeat with no components says nothing, so it is unknown.
func OverallHealth(hb *wire.Heartbeat) string {
	rank := map[string]int{planestore.HealthOK: 0, planestore.HealthUnknown: 1, planestore.HealthDegraded: 2, planestore.HealthDown: 3}
	if len(hb.Components) == 0 {
		return planestore.HealthUnknown
	}
	worst := planestore.HealthOK
	for _, st := range append([]string{hb.AIProvider.Status}, componentStatuses(hb)...) {
		if r, ok := rank[st]; ok && r > rank[worst] {
			worst = st
		}
	}
	return worst
}

func componentStatuses(hb *wire.Heartbeat) []string {
	out := make([]string, len(hb.Components))
	for i, c := range hb.Components {
		out[i] = c.Status
	}
	return out
}

func (s *Server) handleHeartbeat(w http.ResponseWriter, r *http.Request) {
	id := installFrom(r)
	body, err := io.ReadAll(r.Body)
	if err != nil {
		s.wireError(w, r, "heartbeat", err)
		return
	}
	hb, err := wire.Decode[wire.Heartbeat](body)
	if err != nil {
		s.wireError(w, r, "heartbeat", err)
		return
	}
	// Store the re-encoded struct, not the bytes received: only fields wire
	// knows can reach the database.
	clean, err := json.Marshal(hb)
	if err != nil {
		s.fail(w, "heartbeat", err)
		return
	}
	pending, err := s.store.RecordHeartbeat(r.Context(), id, planestore.HeartbeatRecord{
		Version:      hb.Versions.Docsvc,
		Channel:      hb.Channel,
		Health:       OverallHealth(&hb),
		LicenseState: hb.License.State,
		Body:         clean,
		LedgerCount:  hb.LedgerHead.Count,
		LedgerSHA256: hb.LedgerHead.SHA256,
	})
	if errors.Is(err, planestore.ErrRevoked) {
		s.keys.forget(id)
		writeError(w, http.StatusUnauthorized, "revoked")
		return
	}
	if err != nil {
		s.fail(w, "heartbeat", err)
		return
	}
	writeJSON(w, http.StatusOK, wire.HeartbeatResponse{
		NextIntervalSeconds: int(s.cfg.HeartbeatInterval / time.Second),
		PendingDiagnostics:  pending,
	})
}

func (s *Server) handleTelemetry(w http.ResponseWriter, r *http.Request) {
	id := installFrom(r)
	body, err := io.ReadAll(r.Body)
	if err != nil {
		s.wireError(w, r, "telemetry", err)
		return
	}
	t, err := wire.Decode[wire.Telemetry](body)
	if err != nil {
		s.wireError(w, r, "telemetry", err)
		return
	}
	clean, err := json.Marshal(t)
	if err != nil {
		s.fail(w, "telemetry", err)
		return
	}
	if err := s.store.RecordTelemetry(r.Context(), id, t.Day, clean); err != nil {
		s.fail(w, "telemetry", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// maxPendingAnswer matches wire's bound on one GET /v1/diagnostics answer;
// older requests wait for the next poll.
const maxPendingAnswer = 100

func (s *Server) handleAgentDiagnostics(w http.ResponseWriter, r *http.Request) {
	ds, err := s.store.Diagnostics(r.Context(), installFrom(r), planestore.DiagRequested)
	if err != nil {
		s.fail(w, "diagnostics", err)
		return
	}
	// Oldest first, so a backlog drains in order.
	slices.Reverse(ds)
	// Only an agent that asks is told who requested: older agents refuse
	// fields they do not know.
	withBy := r.URL.Query().Get("with") == "requested_by"
	out := wire.DiagnosticRequests{}
	for _, d := range ds[:min(len(ds), maxPendingAnswer)] {
		if !withBy {
			d.RequestedBy, d.RequestedByKind = "", ""
		}
		out = append(out, wireDiagRequest(d))
	}
	writeJSON(w, http.StatusOK, out)
}

func wireDiagRequest(d planestore.Diagnostic) wire.DiagnosticRequest {
	return wire.DiagnosticRequest{ID: d.ID, Reason: d.Reason, RequestedAt: d.RequestedAt,
		RequestedBy: d.RequestedBy, RequestedByKind: d.RequestedByKind}
}

// checkDiagRequest checks a new request's reason and requester by the rules
// the agent will apply, rather than have the agent reject it later. A
// principal without a printable name is refused: nothing is requested
// anonymously.
func (s *Server) checkDiagRequest(reason string, by planestore.Principal) error {
	probe := wireDiagRequest(planestore.Diagnostic{ID: "dg_probe", Reason: reason, RequestedAt: s.now(),
		RequestedBy: by.Name, RequestedByKind: by.Kind})
	err := probe.Validate()
	if err == nil && (by.Name == "" || by.Kind == "") {
		err = planestore.ErrNoRequester
	}
	var fe *wire.FieldError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &fe) && fe.Field == "reason":
		return errors.New("reason must be 1-1000 bytes of printable text on one line")
	default:
		return fmt.Errorf("the requesting principal %q (%s) cannot be named to the customer: %w", by.Name, by.Kind, err)
	}
}

// ErrBadBundle is matched by CheckBundle's failures.
var ErrBadBundle = errors.New("diagnostic bundle is not a readable zip archive")

// maxBundleEntries bounds how many files a bundle may list; the agent's
// collectors write a handful.
const maxBundleEntries = 1000

// CheckBundle checks that data is a zip archive the vendor's tools can open:
// a readable central directory with at most 1000 entries, none of them with
// a name that could escape a directory when extracted. It does not
// decompress anything, so a zip bomb costs nothing here.
func CheckBundle(data []byte) error {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadBundle, err)
	}
	if len(zr.File) > maxBundleEntries {
		return fmt.Errorf("%w: more than %d entries", ErrBadBundle, maxBundleEntries)
	}
	for i, f := range zr.File {
		// Stricter than "extracts somewhere local": no ".." at all, no
		// backslashes, valid UTF-8, so every unzip tool agrees on the name.
		if !filepath.IsLocal(f.Name) || !utf8.ValidString(f.Name) || strings.Contains(f.Name, "\\") ||
			slices.Contains(strings.Split(f.Name, "/"), "..") {
			return fmt.Errorf("%w: entry %d has a name that is not a plain relative path", ErrBadBundle, i)
		}
	}
	return nil
}

func (s *Server) handleBundleUpload(w http.ResponseWriter, r *http.Request) {
	installID, diagID := installFrom(r), r.PathValue("id")
	if !wire.ValidID(diagID) {
		writeError(w, http.StatusBadRequest, "diagnostic ID must be 1-64 characters of A-Z a-z 0-9 _ -")
		return
	}
	d, err := s.store.Diagnostic(r.Context(), diagID)
	if err != nil || d.InstallID != installID {
		// Another install's request looks exactly like a missing one.
		writeError(w, http.StatusNotFound, "diagnostic request "+diagID+" not found for this install")
		return
	}
	if d.Status != planestore.DiagRequested {
		writeError(w, http.StatusConflict, "diagnostic request "+diagID+" already has a bundle")
		return
	}
	data, err := io.ReadAll(r.Body)
	if err != nil {
		s.wireError(w, r, "bundle", err)
		return
	}
	if err := CheckBundle(data); err != nil {
		s.log.Warn("rejected bundle", "install_id", installID, "diagnostic_id", diagID, "bytes", len(data))
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	sum := sha256.Sum256(data)
	name, err := s.putBundle(r.Context(), diagID, sum, data)
	if err != nil {
		s.fail(w, "store bundle", err)
		return
	}
	if err := s.store.MarkUploaded(r.Context(), diagID, installID, int64(len(data)), hex.EncodeToString(sum[:]), name); err != nil {
		_ = s.cfg.Bundles.Delete(context.WithoutCancel(r.Context()), name)
		s.fail(w, "store bundle", err)
		return
	}
	s.log.Info("diagnostic bundle uploaded", "install_id", installID, "diagnostic_id", diagID, "bytes", len(data))
	w.WriteHeader(http.StatusNoContent)
}

// handleTUF serves one channel's signed repository files to installs whose
// license allows that channel. publish.RepoFile refuses any name that could
// leave the channel's directory.
func (s *Server) handleTUF(area string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		channel, file := r.PathValue("channel"), r.PathValue("file")
		if s.cfg.Repo == nil {
			writeError(w, http.StatusNotFound, "this plane serves no releases")
			return
		}
		if _, err := publish.RepoKey(channel, area, file); err != nil {
			writeError(w, http.StatusBadRequest, "bad channel or file name")
			return
		}
		in, err := s.store.Install(r.Context(), installFrom(r))
		if err != nil {
			s.fail(w, "tuf", err)
			return
		}
		if !slices.Contains(in.LicenseChannels, channel) {
			s.log.Warn("channel refused", "install_id", in.ID, "license_id", in.LicenseID, "channel", channel)
			writeError(w, http.StatusForbidden, "channel "+channel+" is not allowed by license "+in.LicenseID)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), objectTimeout)
		defer cancel()
		rc, err := s.openRepoFile(ctx, channel, area, file)
		if errors.Is(err, blob.ErrNotFound) {
			writeError(w, http.StatusNotFound, "no such file in channel "+channel)
			return
		}
		if err != nil {
			s.fail(w, "tuf", err)
			return
		}
		s.serveRepoFile(w, r, rc, area)
	}
}
