package auth

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/tetherhq/tether/internal/apitoken"
	"github.com/tetherhq/tether/internal/sqldb"
)

// API tokens have the format of package apitoken: "tt_<id>_<secret>", of
// which only the SHA-256 of the secret is stored, so a database dump does
// not hold usable tokens; the plaintext is shown once, where it was made.
const (
	tokenPrefix = apitoken.Prefix
	maxNameLen  = 100
	// lastUsedEvery is how stale a token's last-used time may get: a busy
	// script's requests write it at most once a minute.
	lastUsedEvery = time.Minute
)

// ErrTokenNotFound is returned when revoking an ID that does not exist.
var ErrTokenNotFound = errors.New("auth: token not found")

// TokenInfo describes a stored token; it never includes the secret or its hash.
type TokenInfo struct {
	ID         string
	Name       string
	CreatedAt  time.Time
	RevokedAt  time.Time // zero while the token is active
	ExpiresAt  time.Time // zero: never
	LastUsedAt time.Time // zero: never used (to the minute)
}

// Revoked reports whether the token has been revoked.
func (t TokenInfo) Revoked() bool { return !t.RevokedAt.IsZero() }

// CheckTokenName returns an error unless name (trimmed) is a usable label.
func CheckTokenName(name string) error {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > maxNameLen || strings.IndexFunc(name, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return fmt.Errorf("auth: token name must be 1–%d printable characters", maxNameLen)
	}
	return nil
}

// CreateToken makes a new API token labelled name and returns its plaintext
// (to show once) and its ID (to list and revoke it by).
func CreateToken(ctx context.Context, db *sqldb.DB, name string, now time.Time) (plaintext string, id string, err error) {
	tok, err := apitoken.New()
	if err != nil {
		return "", "", fmt.Errorf("auth: create token: %w", err)
	}
	if err := AddToken(ctx, db, name, tok.Stored(), time.Time{}, now); err != nil {
		return "", "", err
	}
	return tok.Plaintext, tok.ID, nil
}

// AddToken stores a token made elsewhere (apitoken.New on the operator's
// machine), given only its stored form "<id>:<hash>", labelled name and
// valid until expires (zero: until revoked); now is its creation time.
func AddToken(ctx context.Context, db *sqldb.DB, name, stored string, expires, now time.Time) error {
	if err := CheckTokenName(name); err != nil {
		return err
	}
	id, hash, err := apitoken.ParseStored(stored)
	if err != nil {
		return err
	}
	var exp sql.NullInt64
	if !expires.IsZero() {
		if !expires.After(now) {
			return fmt.Errorf("auth: token expiry %s is in the past; give a later time", expires.UTC().Format(time.RFC3339))
		}
		exp = sql.NullInt64{Int64: expires.UnixMilli(), Valid: true}
	}
	_, err = db.ExecContext(ctx,
		`INSERT INTO api_tokens (id, name, hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)`,
		id, strings.TrimSpace(name), hash, now.UnixMilli(), exp)
	if err != nil {
		return fmt.Errorf("auth: add token %s (an ID or hash already stored is refused; make a new token): %w", id, err)
	}
	return nil
}

// RevokeToken stops a token from authenticating. Revoking a revoked token
// is not an error; an unknown ID is ErrTokenNotFound. now is recorded as
// the revocation time.
func RevokeToken(ctx context.Context, db *sqldb.DB, id string, now time.Time) error {
	if !apitoken.ValidID(id) {
		return fmt.Errorf("auth: revoke token: %q is not a token ID (16 lowercase hex characters; see docsvc tokens list): %w", clipID(id), ErrTokenNotFound)
	}
	res, err := db.ExecContext(ctx,
		`UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2`,
		now.UnixMilli(), id)
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

// clipID keeps a bad ID short in an error: it may be a pasted token.
func clipID(id string) string {
	if strings.HasPrefix(id, tokenPrefix) {
		return tokenPrefix + "…"
	}
	if len(id) > 20 {
		return id[:20] + "…"
	}
	return id
}

// ListTokens returns every token, oldest first, revoked ones included.
func ListTokens(ctx context.Context, db *sqldb.DB) ([]TokenInfo, error) {
	rows, err := db.QueryContext(ctx,
		`SELECT id, name, created_at, revoked_at, expires_at, last_used_at FROM api_tokens ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("auth: list tokens: %w", err)
	}
	defer rows.Close()
	var out []TokenInfo
	at := func(v sql.NullInt64) time.Time {
		if !v.Valid {
			return time.Time{}
		}
		return time.UnixMilli(v.Int64).UTC()
	}
	for rows.Next() {
		var t TokenInfo
		var created int64
		var revoked, expires, used sql.NullInt64
		if err := rows.Scan(&t.ID, &t.Name, &created, &revoked, &expires, &used); err != nil {
			return nil, fmt.Errorf("auth: list tokens: %w", err)
		}
		t.CreatedAt = time.UnixMilli(created).UTC()
		t.RevokedAt, t.ExpiresAt, t.LastUsedAt = at(revoked), at(expires), at(used)
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("auth: list tokens: %w", err)
	}
	return out, nil
}

// verifyToken checks an API token against the database.
func (a *Authenticator) verifyToken(ctx context.Context, tok string) (Principal, error) {
	id, secret, ok := apitoken.Parse(tok)
	if !ok {
		return Principal{}, unauthenticated("malformed API token")
	}
	var stored string
	var revoked, expires, used sql.NullInt64
	err := a.db.QueryRowContext(ctx, `SELECT hash, revoked_at, expires_at, last_used_at FROM api_tokens WHERE id = $1`, id).
		Scan(&stored, &revoked, &expires, &used)
	if errors.Is(err, sql.ErrNoRows) {
		return Principal{}, unauthenticated("unknown or revoked API token")
	}
	if err != nil {
		return Principal{}, fmt.Errorf("auth: look up token %s: %w", id, err)
	}
	// Constant-time, so response timing says nothing about how much of a
	// guessed secret was right.
	if subtle.ConstantTimeCompare([]byte(apitoken.Hash(secret)), []byte(stored)) != 1 || revoked.Valid {
		return Principal{}, unauthenticated("unknown or revoked API token")
	}
	now := a.Now()
	if expires.Valid && now.UnixMilli() >= expires.Int64 {
		return Principal{}, unauthenticated("API token expired")
	}
	if !used.Valid || now.UnixMilli()-used.Int64 >= lastUsedEvery.Milliseconds() {
		if _, err := a.db.ExecContext(ctx, `UPDATE api_tokens SET last_used_at = $1 WHERE id = $2`, now.UnixMilli(), id); err != nil {
			return Principal{}, fmt.Errorf("auth: record use of token %s: %w", id, err)
		}
	}
	return Principal{Kind: KindToken, ID: id}, nil
}
