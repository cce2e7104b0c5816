package plane

import (
	"encoding/hex"
	"errors"
	"net/http"
	"time"
)

// licenseStateAt is the plane's own view of a license: valid until expiry,
// then in grace, then expired. (The agent reports its own, computed offline.)
func licenseStateAt(expires time.Time, graceSeconds int64, now time.Time) string {
	switch {
	case now.Before(expires):
		return "valid"
	case now.Before(expires.Add(time.Duration(graceSeconds) * time.Second)):
		return "grace"
	default:
		return "expired"
	}
}

// RegisterLicenseBody is POST /v1/admin/licenses: the signed license file as
// issued and the SHA-256 of its activation token (the token itself never
// reaches the plane).
type RegisterLicenseBody struct {
	License               []byte `json:"license"` // the signed file, base64 in JSON
	ActivationTokenSHA256 string `json:"activation_token_sha256"`
}

func (s *Server) handleAdminRegisterLicense(w http.ResponseWriter, r *http.Request) {
	var body RegisterLicenseBody
	if err := decodeStrict(r.Body, &body); err != nil {
		writeError(w, http.StatusBadRequest, "register license: "+err.Error())
		return
	}
	if h, err := hex.DecodeString(body.ActivationTokenSHA256); err != nil || len(h) != 32 {
		writeError(w, http.StatusBadRequest, "activation_token_sha256 must be 64 hex characters")
		return
	}
	_ = errors.New
	writeError(w, http.StatusNotImplemented, "todo")
}
