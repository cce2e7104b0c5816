package plane

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"time"

	"github.com/tetherhq/tether/internal/license"
	"github.com/tetherhq/tether/internal/license/issuer"
	"github.com/tetherhq/tether/internal/plane/planestore"
)

// licenseStateAt is the plane's own view of a license (the agent reports its
// own, computed offline), by the same rule the agent uses.
func licenseStateAt(expires time.Time, graceSeconds int64, now time.Time) string {
	return string(license.License{ExpiresAt: expires, GraceSeconds: graceSeconds}.StateAt(now))
}

// RegisterLicenseBody is POST /v1/admin/licenses: the signed license file
// with its activation token removed, and the token's SHA-256. The token
// itself never reaches the plane, so neither its logs nor its database can
// leak one.
type RegisterLicenseBody struct {
	License               json.RawMessage `json:"license"`
	ActivationTokenSHA256 string          `json:"activation_token_sha256"`
}

func (s *Server) handleAdminRegisterLicense(w http.ResponseWriter, r *http.Request) {
	var body RegisterLicenseBody
	if err := decodeStrict(r.Body, &body); err != nil {
		writeError(w, http.StatusBadRequest, "register license: "+err.Error())
		return
	}
	rec, err := s.registerLicense(r.Context(), body)
	if err != nil {
		s.fail(w, "register license "+rec.ID, err)
		return
	}
	writeJSON(w, http.StatusCreated, rec)
}

// registerLicense verifies and registers a license for the request's
// principal; the admin API and the dashboard both call it. On a store
// error the returned record still names the license.
func (s *Server) registerLicense(ctx context.Context, body RegisterLicenseBody) (planestore.LicenseRecord, error) {
	bad := func(msg string) error { return &actionError{http.StatusBadRequest, msg} }
	if s.cfg.LicenseKey == nil {
		return planestore.LicenseRecord{}, &actionError{http.StatusServiceUnavailable,
			"this plane cannot verify licenses: start tether-plane serve with --keys (or --license-pub) so it has the license public key"}
	}
	if h, err := hex.DecodeString(body.ActivationTokenSHA256); err != nil || len(h) != 32 {
		return planestore.LicenseRecord{}, bad("activation_token_sha256 must be 64 hex characters")
	}
	var f license.File
	dec := json.NewDecoder(bytes.NewReader(body.License))
	if err := dec.Decode(&f); err != nil {
		return planestore.LicenseRecord{}, bad("license must be a license file's JSON object")
	}
	if f.ActivationToken != "" {
		return planestore.LicenseRecord{}, bad("license file still carries its activation token; send only the token's SHA-256 (tether-plane license register does this)")
	}
	l, err := license.Verify(s.cfg.LicenseKey, body.License)
	switch {
	case errors.Is(err, license.ErrBadSignature):
		return planestore.LicenseRecord{}, bad("license signature does not verify with this plane's license key: was it issued with the same keys directory?")
	case err != nil:
		return planestore.LicenseRecord{}, bad("license file is malformed")
	}
	rec := planestore.LicenseRecord{ID: l.ID, Customer: l.Customer, IssuedAt: l.IssuedAt, ExpiresAt: l.ExpiresAt,
		GraceSeconds: l.GraceSeconds, Channels: l.Channels, Entitlements: l.Entitlements,
		TokenHash: body.ActivationTokenSHA256}
	if err := s.auditFirst(ctx, planestore.AuditEntry{Action: "license.register", Customer: l.Customer, Target: l.ID}); err != nil {
		return planestore.LicenseRecord{ID: l.ID}, err
	}
	if err := s.store.AddLicense(ctx, rec); err != nil {
		return planestore.LicenseRecord{ID: l.ID}, err
	}
	s.log.Info("license registered", "license_id", l.ID)
	return rec, nil
}

// RegistrationBody turns a license file as issued (token included) into the
// registration request: the token is replaced by its hash. The signed
// payload is kept byte for byte, so the signature still verifies.
func RegistrationBody(file []byte) (RegisterLicenseBody, error) {
	var f license.File
	if err := json.Unmarshal(file, &f); err != nil {
		return RegisterLicenseBody{}, errors.New("plane: license file is not JSON: pass the file tether-plane license issue wrote")
	}
	if f.ActivationToken == "" {
		return RegisterLicenseBody{}, errors.New("plane: license file has no activation token: it was registered already, or stripped; issue a new one")
	}
	hash := issuer.TokenHash(f.ActivationToken)
	f.ActivationToken = ""
	stripped, err := json.Marshal(f)
	if err != nil {
		return RegisterLicenseBody{}, err
	}
	return RegisterLicenseBody{License: stripped, ActivationTokenSHA256: hash}, nil
}

// daysLeft is how many whole days remain until t; negative once t passed.
func daysLeft(t, now time.Time) int {
	return int(math.Floor(t.Sub(now).Hours() / 24))
}

// licenseThresholds are the days before expiry at which a license is
// alerted on: the configured warning and 7 and 1 days, once each.
func (s *Server) licenseThresholds() []int {
	out := []int{s.cfg.LicenseWarnDays}
	for _, d := range []int{7, 1} {
		if d < s.cfg.LicenseWarnDays {
			out = append(out, d)
		}
	}
	return out
}
