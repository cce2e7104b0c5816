package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/tetherhq/tether/internal/sqldb"
)

// An API token reads "tt_<id>_<secret>": id is 16 hex characters (the row's
// primary key, safe to log), secret is 32 random bytes in unpadded base64url.
// Only the SHA-256 of the secret is stored, so a database dump does not hold
// usable tokens; the plaintext is shown once, at creation.
const (
	tokenPrefix    = "tt_"
	tokenIDBytes   = 8
	tokenSecretLen = 43 // base64.RawURLEncoding.EncodedLen(32)
	maxNameLen     = 100
)

// ErrTokenNotFound is returned when revoking an ID that does not exist.
var ErrTokenNotFound = errors.New("auth: token not found")

// TokenInfo describes a stored token; it never includes the secret.
type TokenInfo struct {
	ID        string
	Name      string
	CreatedAt time.Time
	RevokedAt time.Time // zero while the token is active
}

// Revoked reports whether the token has been revoked.
func (t TokenInfo) Revoked() bool { return !t.RevokedAt.IsZero() }

// CreateToken makes a new API token labelled name and returns its plaintext
// (to show once) and its ID (to list and revoke it by).
func CreateToken(ctx context.Context, db *sqldb.DB, name string) (plaintext string, id string, err error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > maxNameLen || strings.IndexFunc(name, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return "", "", fmt.Errorf("auth: create token: name must be 1–%d printable characters", maxNameLen)
	}
	idb := make([]byte, tokenIDBytes)
	secret := make([]byte, 32)
	if _, err := rand.Read(idb); err != nil {
		return "", "", fmt.Errorf("auth: create token: %w", err)
	}
	if _, err := rand.Read(secret); err != nil {
		return "", "", fmt.Errorf("auth: create token: %w", err)
	}
	id = hex.EncodeToString(idb)
	s := base64.RawURLEncoding.EncodeToString(secret)
	_, err = db.ExecContext(ctx,
		`INSERT INTO api_tokens (id, name, hash, created_at) VALUES ($1, $2, $3, $4)`,
		id, name, hashSecret(s), time.Now().UnixMilli())
	if err != nil {
		return "", "", fmt.Errorf("auth: create token: %w", err)
	}
	return tokenPrefix + id + "_" + s, id, nil
}

// RevokeToken stops a token from authenticating. Revoking a revoked token
// is not an error; an unknown ID is ErrTokenNotFound.
func RevokeToken(ctx context.Context, db *sqldb.DB, id string) error {
	res, err := db.ExecContext(ctx,
		`UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2`,
		time.Now().UnixMilli(), id)
	if err != nil {
		return fmt.Errorf("auth: revoke token %s: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("auth: revoke token %s: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("auth: revoke token %s: %w", id, ErrTokenNotFound)
	}
	return nil
}

// ListTokens returns every token, oldest first, revoked ones included.
func ListTokens(ctx context.Context, db *sqldb.DB) ([]TokenInfo, error) {
	rows, err := db.QueryContext(ctx,
		`SELECT id, name, created_at, revoked_at FROM api_tokens ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("auth: list tokens: %w", err)
	}
	defer rows.Close()
	var out []TokenInfo
	for rows.Next() {
		var t TokenInfo
		var created int64
		var revoked sql.NullInt64
		if err := rows.Scan(&t.ID, &t.Name, &created, &revoked); err != nil {
			return nil, fmt.Errorf("auth: list tokens: %w", err)
		}
		t.CreatedAt = time.UnixMilli(created).UTC()
		if revoked.Valid {
			t.RevokedAt = time.UnixMilli(revoked.Int64).UTC()
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("auth: list tokens: %w", err)
	}
	return out, nil
}

func hashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// parseToken splits "tt_<id>_<secret>", rejecting anything that could not
// have come from CreateToken before it reaches the database.
func parseToken(tok string) (id, secret string, ok bool) {
	rest, ok := strings.CutPrefix(tok, tokenPrefix)
	if !ok {
		return "", "", false
	}
	// The secret's alphabet includes '_', the ID's does not: cut at the first.
	id, secret, ok = strings.Cut(rest, "_")
	if !ok || len(id) != 2*tokenIDBytes || len(secret) != tokenSecretLen {
		return "", "", false
	}
	if _, err := hex.DecodeString(id); err != nil || strings.ToLower(id) != id {
		return "", "", false
	}
	if _, err := base64.RawURLEncoding.Strict().DecodeString(secret); err != nil {
		return "", "", false
	}
	return id, secret, true
}

// verifyToken checks an API token against the database.
func (a *Authenticator) verifyToken(ctx context.Context, tok string) (Principal, error) {
	id, secret, ok := parseToken(tok)
	if !ok {
		return Principal{}, unauthenticated("malformed API token")
	}
	var stored string
	var revoked sql.NullInt64
	err := a.db.QueryRowContext(ctx, `SELECT hash, revoked_at FROM api_tokens WHERE id = $1`, id).Scan(&stored, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return Principal{}, unauthenticated("unknown or revoked API token")
	}
	if err != nil {
		return Principal{}, fmt.Errorf("auth: look up token %s: %w", id, err)
	}
	// Constant-time, so response timing says nothing about how much of a
	// guessed secret was right.
	if subtle.ConstantTimeCompare([]byte(hashSecret(secret)), []byte(stored)) != 1 || revoked.Valid {
		return Principal{}, unauthenticated("unknown or revoked API token")
	}
	return Principal{Kind: KindToken, ID: id}, nil
}
