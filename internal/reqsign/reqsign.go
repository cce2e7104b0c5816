// Package reqsign signs the agent's requests to the plane, so no long-lived
// bearer secret ever exists: each install holds an Ed25519 private key that
// never leaves the customer's account, and the plane holds only the public
// half.
//
// A signature covers the method, the path with its raw query, the SHA-256 of
// the body, the time, a random nonce and the install ID (see Canonical).
// Checking signatures, the plane's middleware and its nonce store are the
// vendor's alone: they live in internal/reqsign/reqverify, which the agent
// must not link (internal/boundary.VendorOnly).
package reqsign

import (
	"cmp"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The request headers that carry a signature.
const (
	HeaderInstall   = "Tether-Install"
	HeaderTime      = "Tether-Time"
	HeaderNonce     = "Tether-Nonce"
	HeaderSignature = "Tether-Signature"
)

// NonceSize is the number of random bytes in a nonce; the header carries
// them unpadded base64url-encoded.
const NonceSize = 16

const (
	version       = "TETHER-SIG-V1"
	maxInstallLen = 128
)

// Canonical returns the exact bytes that are signed: the lines
// TETHER-SIG-V1, method, path with raw query, hex SHA-256 of the body, Unix
// time, nonce and install ID, joined by "\n". The install ID is last and
// every other line is free of "\n", so no two requests share a string.
func Canonical(method, pathQuery string, body []byte, unix int64, nonce, installID string) []byte {
	sum := sha256.Sum256(body)
	return []byte(strings.Join([]string{
		version, method, pathQuery, hex.EncodeToString(sum[:]),
		strconv.FormatInt(unix, 10), nonce, installID,
	}, "\n"))
}

// PathQuery is the request target the signature covers. Both sides use the
// escaped path, so a path with %2F signs as sent, not as decoded.
func PathQuery(r *http.Request) string {
	p := cmp.Or(r.URL.EscapedPath(), "/")
	if r.URL.RawQuery != "" {
		p += "?" + r.URL.RawQuery
	}
	return p
}

// Sign adds the signature headers to r. body must be the exact bytes r will
// send; now is the agent's clock.
func Sign(r *http.Request, body []byte, installID string, key ed25519.PrivateKey, now time.Time) error {
	if len(key) != ed25519.PrivateKeySize {
		return fmt.Errorf("reqsign: sign: private key has %d bytes, want %d", len(key), ed25519.PrivateKeySize)
	}
	if !ValidInstallID(installID) {
		return fmt.Errorf("reqsign: sign: install ID must be 1-%d printable ASCII characters", maxInstallLen)
	}
	n := make([]byte, NonceSize)
	if _, err := rand.Read(n); err != nil {
		return fmt.Errorf("reqsign: sign: nonce: %w", err)
	}
	nonce := base64.RawURLEncoding.EncodeToString(n)
	unix := now.Unix()
	sig := ed25519.Sign(key, Canonical(r.Method, PathQuery(r), body, unix, nonce, installID))
	r.Header.Set(HeaderInstall, installID)
	r.Header.Set(HeaderTime, strconv.FormatInt(unix, 10))
	r.Header.Set(HeaderNonce, nonce)
	r.Header.Set(HeaderSignature, base64.RawURLEncoding.EncodeToString(sig))
	return nil
}

// ValidInstallID reports whether id can name an install in a signature:
// 1 to 128 printable ASCII characters, no spaces.
func ValidInstallID(id string) bool {
	if id == "" || len(id) > maxInstallLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] > '~' {
			return false
		}
	}
	return true
}
