// Package apitoken is the format of docsvc's API tokens and of their stored
// hash, shared by docsvc (which stores and checks them) and tetherctl (which
// makes one on the operator's machine, so that only its hash ever reaches
// the deployment). It imports nothing of the document service.
//
// A token reads "tt_<id>_<secret>": id is 16 lowercase hex characters (the
// row's key, safe to log), secret is 32 random bytes in unpadded base64url.
// Only the SHA-256 of the secret is stored. A token's stored form, which
// `docsvc tokens add --hash` takes, is "<id>:<64 hex of that SHA-256>".
package apitoken

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Prefix starts every API token.
const Prefix = "tt_"

const (
	idBytes   = 8
	secretLen = 43 // base64.RawURLEncoding.EncodedLen(32)
)

// Listed is one token in `docsvc tokens list --output json`, which prints
// {"tokens": [Listed...]} on one line and tetherctl reads back from the
// task's log: never the token or its hash. Absent times are null.
type Listed struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  *time.Time `json:"expires_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
}

// Token is a new API token: the plaintext (shown once), its ID and the
// hash of its secret.
type Token struct {
	Plaintext string
	ID        string
	Hash      string // hex SHA-256 of the secret
}

// Stored is what the deployment keeps of t: "<id>:<hash>".
func (t Token) Stored() string { return t.ID + ":" + t.Hash }

// New makes a token from the system's random source.
func New() (Token, error) {
	idb := make([]byte, idBytes)
	secret := make([]byte, 32)
	if _, err := rand.Read(idb); err != nil {
		return Token{}, fmt.Errorf("apitoken: %w", err)
	}
	if _, err := rand.Read(secret); err != nil {
		return Token{}, fmt.Errorf("apitoken: %w", err)
	}
	id := hex.EncodeToString(idb)
	s := base64.RawURLEncoding.EncodeToString(secret)
	return Token{Plaintext: Prefix + id + "_" + s, ID: id, Hash: Hash(s)}, nil
}

// Hash is the stored hash of a token's secret: lowercase hex SHA-256.
func Hash(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// Parse splits "tt_<id>_<secret>", rejecting anything New could not have
// made.
func Parse(tok string) (id, secret string, ok bool) {
	rest, ok := strings.CutPrefix(tok, Prefix)
	if !ok {
		return "", "", false
	}
	// The secret's alphabet includes '_', the ID's does not: cut at the first.
	id, secret, ok = strings.Cut(rest, "_")
	if !ok || !validID(id) || len(secret) != secretLen {
		return "", "", false
	}
	if _, err := base64.RawURLEncoding.Strict().DecodeString(secret); err != nil {
		return "", "", false
	}
	return id, secret, true
}

// ParseStored splits a stored form "<id>:<hash>" (Token.Stored), with an
// error that names what is wrong but never repeats the value.
func ParseStored(s string) (id, hash string, err error) {
	id, hash, ok := strings.Cut(strings.TrimSpace(s), ":")
	switch {
	case !ok:
		return "", "", fmt.Errorf("apitoken: a stored token reads <id>:<sha256 hex> (tetherctl tokens create prints it); this has no ':'")
	case !validID(id):
		return "", "", fmt.Errorf("apitoken: the ID before ':' must be %d lowercase hex characters", 2*idBytes)
	case len(hash) != 2*sha256.Size || !isLowerHex(hash):
		return "", "", fmt.Errorf("apitoken: the hash after ':' must be %d lowercase hex characters (SHA-256)", 2*sha256.Size)
	}
	return id, hash, nil
}

// ValidID reports whether id could be a token's ID.
func ValidID(id string) bool { return validID(id) }

func validID(id string) bool { return len(id) == 2*idBytes && isLowerHex(id) }

func isLowerHex(s string) bool {
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// ParseExpiry reads an --expires value: empty (never: the zero time), an
// RFC 3339 time, or a duration from now in hours or days ("720h", "90d").
// It must lie after now; errors name --expires and the accepted forms.
func ParseExpiry(v string, now time.Time) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	var t time.Time
	if days, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 1 || n > 3650 {
			return time.Time{}, fmt.Errorf("--expires %q: a number of days must be 1 to 3650, e.g. 90d", v)
		}
		t = now.AddDate(0, 0, n)
	} else if d, err := time.ParseDuration(v); err == nil {
		t = now.Add(d)
	} else if t, err = time.Parse(time.RFC3339, v); err != nil {
		return time.Time{}, fmt.Errorf("--expires %q is neither an RFC 3339 time (2027-01-31T00:00:00Z) nor a duration (720h, 90d)", v)
	}
	if !t.After(now) {
		return time.Time{}, fmt.Errorf("--expires %q is not in the future", v)
	}
	return t, nil
}
