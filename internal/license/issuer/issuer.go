// Package issuer signs license documents with the vendor's license key, and
// holds the rest of the vendor's half of internal/license: parsing the grace
// period an operator asks for, and hashing the activation token the plane
// stores. Only tether-plane and the tests link it;
// the agent and the document service only verify (license.Verify), and the
// agent must not link this package (internal/boundary.VendorOnly).
package issuer

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/tetherhq/tether/internal/license"
)

// Issue signs l with the vendor's license key and returns the license file
// and a fresh activation token (also written into the file).
func Issue(key ed25519.PrivateKey, l license.License) (file []byte, activationToken string, err error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, "", fmt.Errorf("license: issue: private key has %d bytes, want %d", len(key), ed25519.PrivateKeySize)
	}
	// Second precision and UTC keep the payload stable and readable.
	l.IssuedAt, l.ExpiresAt = l.IssuedAt.UTC().Truncate(time.Second), l.ExpiresAt.UTC().Truncate(time.Second)
	if err := l.Validate(); err != nil {
		return nil, "", fmt.Errorf("license: issue %s: %w", l.ID, err)
	}
	payload, err := json.Marshal(l)
	if err != nil {
		return nil, "", fmt.Errorf("license: issue %s: encode payload: %w", l.ID, err)
	}
	tok := make([]byte, 32)
	if _, err := rand.Read(tok); err != nil {
		return nil, "", fmt.Errorf("license: issue %s: activation token: %w", l.ID, err)
	}
	activationToken = base64.RawURLEncoding.EncodeToString(tok)
	f := license.File{
		Payload:         payload,
		KeyID:           license.KeyID(key.Public().(ed25519.PublicKey)),
		Signature:       base64.RawURLEncoding.EncodeToString(ed25519.Sign(key, payload)),
		ActivationToken: activationToken,
	}
	// json.Marshal, not MarshalIndent: indenting would re-format the raw
	// payload and break its signature.
	file, err = json.Marshal(f)
	if err != nil {
		return nil, "", fmt.Errorf("license: issue %s: encode file: %w", l.ID, err)
	}
	return append(file, '\n'), activationToken, nil
}

var graceRe = regexp.MustCompile(`^([0-9]{1,6})([dhm])$`)

// ParseGrace parses a grace period written as a whole number of days, hours
// or minutes: "14d", "36h", "90m". Zero is allowed; ten years is the cap.
func ParseGrace(s string) (time.Duration, error) {
	m := graceRe.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("license: grace %q: want a whole number of days, hours or minutes such as 14d, 36h or 90m", s)
	}
	n, _ := strconv.ParseInt(m[1], 10, 64) // at most six digits, cannot fail
	unit := map[string]time.Duration{"d": 24 * time.Hour, "h": time.Hour, "m": time.Minute}[m[2]]
	d := time.Duration(n) * unit
	if d > license.MaxGrace {
		return 0, fmt.Errorf("license: grace %q: longer than ten years", s)
	}
	return d, nil
}

// TokenHash is what the plane stores instead of an activation token: the hex
// SHA-256. Tokens carry 256 random bits, so an unsalted hash is enough.
func TokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}
