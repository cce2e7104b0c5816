// Package license verifies the vendor's signed license documents; issuing
// them is the vendor's alone (internal/license/issuer, which the agent must
// not link: internal/boundary.VendorOnly).
//
// A license file is JSON: the license itself (the payload), the ID of the
// vendor key that signed it, and an Ed25519 signature over the payload bytes
// exactly as they appear in the file. Verification needs only the vendor's
// public key, so the agent and the document service check licenses offline.
//
// The file may also carry the install's one-time activation token. The token
// is not signed content: it is a secret for the activation request, and the
// plane stores only its SHA-256 (issuer.TokenHash).
//
// What a license controls is deliberately narrow: past expiry plus grace,
// uploads are refused; reading keeps working and nothing is ever deleted.
package license

import (
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/tetherhq/tether/internal/wire"
)

// Verification failures. A file that parses but whose signature (or key ID)
// does not match the trusted key is ErrBadSignature; anything that is not a
// well-formed license file is ErrMalformed.
var (
	ErrBadSignature = errors.New("license: signature does not verify")
	ErrMalformed    = errors.New("license: malformed license file")
	ErrBadKey       = errors.New("license: not an Ed25519 public key in PEM form")
)

// MaxFile bounds the license file Verify parses.
const MaxFile = 1 << 20

// License is the signed content.
type License struct {
	ID           string           `json:"id"`
	Customer     string           `json:"customer"`
	IssuedAt     time.Time        `json:"issued_at"`
	ExpiresAt    time.Time        `json:"expires_at"`
	GraceSeconds int64            `json:"grace_seconds"`
	Channels     []string         `json:"channels"`
	Entitlements map[string]int64 `json:"entitlements,omitempty"` // e.g. "pages_per_month": 100000
}

// File is the license file on disk.
type File struct {
	Payload         json.RawMessage `json:"payload"`
	KeyID           string          `json:"key_id"`
	Signature       string          `json:"signature"` // unpadded base64url Ed25519 signature over Payload
	ActivationToken string          `json:"activation_token,omitempty"`
}

// State is where a license is in its life.
type State string

const (
	Valid   State = "valid"   // before ExpiresAt
	Grace   State = "grace"   // from ExpiresAt until ExpiresAt+GraceSeconds
	Expired State = "expired" // from ExpiresAt+GraceSeconds on
)

var entitlementRe = regexp.MustCompile(`^[a-z][a-z0-9_.-]{0,63}$`)

const maxCustomerLen = 200

// MaxGrace is the longest grace period a license may carry.
const MaxGrace = 3650 * 24 * time.Hour

// Validate checks the license's fields. issuer.Issue calls it, and so does
// Verify after the signature checks out (a vendor bug should not become a
// customer outage, but nor should an unusable license be silently accepted).
func (l License) Validate() error {
	switch {
	case !wire.ValidID(l.ID):
		return errors.New("license: id must be 1-64 characters of A-Z a-z 0-9 _ -")
	case l.Customer == "" || len(l.Customer) > maxCustomerLen:
		return fmt.Errorf("license: customer must be 1-%d bytes", maxCustomerLen)
	case l.IssuedAt.IsZero() || l.ExpiresAt.IsZero():
		return errors.New("license: issued_at and expires_at are required")
	case !l.ExpiresAt.After(l.IssuedAt):
		return errors.New("license: expires_at must be after issued_at")
	case l.GraceSeconds < 0 || l.GraceSeconds > int64(MaxGrace/time.Second):
		return errors.New("license: grace_seconds must be between 0 and ten years")
	case len(l.Channels) == 0:
		return errors.New("license: at least one channel is required")
	}
	for i, ch := range l.Channels {
		if !wire.ValidChannel(ch) {
			return fmt.Errorf("license: channels[%d] must be 1-32 characters of a-z 0-9 -", i)
		}
	}
	for k, v := range l.Entitlements {
		if !entitlementRe.MatchString(k) || v < 0 {
			return errors.New("license: entitlement names must match [a-z][a-z0-9_.-]{0,63} with values >= 0")
		}
	}
	return nil
}

// Verify checks file against the vendor's public key and returns the
// license. Only after the signature verifies is the payload parsed, and then
// strictly (unknown fields rejected).
func Verify(pub ed25519.PublicKey, file []byte) (License, error) {
	if len(pub) != ed25519.PublicKeySize {
		return License{}, fmt.Errorf("license: verify: public key has %d bytes, want %d", len(pub), ed25519.PublicKeySize)
	}
	if len(file) > MaxFile {
		return License{}, fmt.Errorf("license: verify: %w: over %d bytes", ErrMalformed, MaxFile)
	}
	var f File
	if err := strictDecode(file, &f); err != nil {
		return License{}, fmt.Errorf("license: verify: %w: %v", ErrMalformed, err)
	}
	sig, err := base64.RawURLEncoding.Strict().DecodeString(f.Signature)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return License{}, fmt.Errorf("license: verify: %w: signature is not a base64url Ed25519 signature", ErrMalformed)
	}
	if f.KeyID != KeyID(pub) {
		return License{}, fmt.Errorf("license: verify: signed by key %q, trusted key is %q: %w", f.KeyID, KeyID(pub), ErrBadSignature)
	}
	if !ed25519.Verify(pub, f.Payload, sig) {
		return License{}, fmt.Errorf("license: verify: %w", ErrBadSignature)
	}
	var l License
	if err := strictDecode(f.Payload, &l); err != nil {
		return License{}, fmt.Errorf("license: verify: payload: %w: %v", ErrMalformed, err)
	}
	if err := l.Validate(); err != nil {
		return License{}, fmt.Errorf("license: verify: %w: %w", ErrMalformed, err)
	}
	return l, nil
}

// strictDecode decodes exactly one JSON value whose fields are each known
// and given once (JSON v2's defaults, as in wire.Decode). Its errors may
// quote the file: license files are the vendor's, not customer content.
func strictDecode(data []byte, v any) error {
	return jsonv2.Unmarshal(data, v, jsonv2.RejectUnknownMembers(true))
}

// StateAt is the license's state at now. The boundaries are exact: at
// ExpiresAt the license is in grace, at ExpiresAt+grace it is expired.
func (l License) StateAt(now time.Time) State {
	switch {
	case now.Before(l.ExpiresAt):
		return Valid
	case now.Before(l.ExpiresAt.Add(time.Duration(l.GraceSeconds) * time.Second)):
		return Grace
	default:
		return Expired
	}
}

// AllowsChannel reports whether the license includes release channel ch.
func (l License) AllowsChannel(ch string) bool { return slices.Contains(l.Channels, ch) }

// KeyID names a public key: the first 8 bytes of its SHA-256, in hex. It lets
// Verify say "signed by another key" instead of just "bad signature".
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// ParsePublicKey parses a PKIX PEM Ed25519 public key.
func ParsePublicKey(data []byte) (ed25519.PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PUBLIC KEY" {
		return nil, fmt.Errorf("not a PEM PUBLIC KEY: %w", ErrBadKey)
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadKey, err)
	}
	ek, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("not an Ed25519 key: %w", ErrBadKey)
	}
	return ek, nil
}
