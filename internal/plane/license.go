package plane

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/tetherhq/tether/internal/license"
	"github.com/tetherhq/tether/internal/license/issuer"
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
	if s.cfg.LicenseKey == nil {
		writeError(w, http.StatusServiceUnavailable,
			"this plane cannot verify licenses: start tether-plane serve with --keys (or --license-pub) so it has the license public key")
		return
	}
	var body RegisterLicenseBody
	if err := decodeStrict(r.Body, &body); err != nil {
		writeError(w, http.StatusBadRequest, "register license: "+err.Error())
		return
	}
	if h, err := hex.DecodeString(body.ActivationTokenSHA256); err != nil || len(h) != 32 {
		writeError(w, http.StatusBadRequest, "activation_token_sha256 must be 64 hex characters")
		return
	}
	var f license.File
	dec := json.NewDecoder(bytes.NewReader(body.License))
	if err := dec.Decode(&f); err != nil {
		writeError(w, http.StatusBadRequest, "license must be a license file's JSON object")
		return
	}
	if f.ActivationToken != "" {
		writeError(w, http.StatusBadRequest, "license file still carries its activation token; send only the token's SHA-256 (tether-plane license register does this)")
		return
	}
	l, err := license.Verify(s.cfg.LicenseKey, body.License)
	switch {
	case errors.Is(err, license.ErrBadSignature):
		writeError(w, http.StatusBadRequest, "license signature does not verify with this plane's license key: was it issued with the same keys directory?")
		return
	case err != nil:
		writeError(w, http.StatusBadRequest, "license file is malformed")
		return
	}
	rec := LicenseRecord{ID: l.ID, Customer: l.Customer, IssuedAt: l.IssuedAt, ExpiresAt: l.ExpiresAt,
		GraceSeconds: l.GraceSeconds, Channels: l.Channels, Entitlements: l.Entitlements,
		TokenHash: body.ActivationTokenSHA256}
	if !s.audited(w, r, AuditEntry{Action: "license.register", Customer: l.Customer, Target: l.ID}) {
		return
	}
	if err := s.store.AddLicense(r.Context(), rec); err != nil {
		s.fail(w, "register license "+l.ID, err)
		return
	}
	s.log.Info("license registered", "license_id", l.ID)
	writeJSON(w, http.StatusCreated, rec)
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
