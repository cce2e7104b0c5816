package planestore

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// LicenseRecord is what the plane keeps of an issued license.
type LicenseRecord struct {
	ID               string           `json:"id"`
	Customer         string           `json:"customer"`
	IssuedAt         time.Time        `json:"issued_at"`
	ExpiresAt        time.Time        `json:"expires_at"`
	GraceSeconds     int64            `json:"grace_seconds"`
	Channels         []string         `json:"channels"`
	Entitlements     map[string]int64 `json:"entitlements,omitempty"`
	TokenHash        string           `json:"-"`
	ActivatedInstall string           `json:"activated_install,omitempty"`
}

// AddLicense registers an issued license so its activation token works.
func (s *Store) AddLicense(ctx context.Context, l LicenseRecord) error {
	ents, err := json.Marshal(l.Entitlements)
	if err != nil {
		return fmt.Errorf("plane: add license %s: %w", l.ID, err)
	}
	if l.Entitlements == nil {
		ents = []byte("{}")
	}
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx,
			`SELECT COUNT(*) FROM plane_licenses WHERE id = $1 OR token_hash = $2`, l.ID, l.TokenHash).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return ErrExists
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO plane_licenses
			(id, customer, issued_at, expires_at, grace_seconds, channels, entitlements, token_hash, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			l.ID, l.Customer, ms(l.IssuedAt), ms(l.ExpiresAt), l.GraceSeconds,
			strings.Join(l.Channels, ","), string(ents), l.TokenHash, ms(s.now()))
		return err
	})
	if err != nil {
		return fmt.Errorf("plane: add license %s: %w", l.ID, err)
	}
	return nil
}

// Licenses lists every registered license, newest first.
func (s *Store) Licenses(ctx context.Context) ([]LicenseRecord, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, customer, issued_at, expires_at, grace_seconds,
		channels, entitlements, token_hash, COALESCE(activated_install, '')
		FROM plane_licenses ORDER BY created_at DESC, id`)
	if err != nil {
		return nil, fmt.Errorf("plane: list licenses: %w", err)
	}
	defer rows.Close()
	var out []LicenseRecord
	for rows.Next() {
		var l LicenseRecord
		var issued, expires int64
		var chans, ents string
		if err := rows.Scan(&l.ID, &l.Customer, &issued, &expires, &l.GraceSeconds,
			&chans, &ents, &l.TokenHash, &l.ActivatedInstall); err != nil {
			return nil, fmt.Errorf("plane: list licenses: %w", err)
		}
		l.IssuedAt, l.ExpiresAt, l.Channels = fromMS(issued), fromMS(expires), splitList(chans)
		if err := json.Unmarshal([]byte(ents), &l.Entitlements); err != nil {
			return nil, fmt.Errorf("plane: list licenses: entitlements of %s: %w", l.ID, err)
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

// Activate binds a new install with publicKey to the license whose activation
// token hashes to tokenHash. A token activates exactly one install, once.
func (s *Store) Activate(ctx context.Context, tokenHash string, publicKey ed25519.PublicKey, agentVersion string, interval time.Duration) (Install, error) {
	id := NewID("in_")
	now := ms(s.now())
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		var licID, activated string
		err := tx.QueryRowContext(ctx, `SELECT id, COALESCE(activated_install, '') FROM plane_licenses WHERE token_hash = $1`,
			tokenHash).Scan(&licID, &activated)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrBadToken
		}
		if err != nil {
			return err
		}
		if activated != "" {
			return ErrAlreadyActivated
		}
		// The conditional update is what makes the token one-time even when
		// two activations race: only one of them changes a row.
		res, err := tx.ExecContext(ctx, `UPDATE plane_licenses SET activated_install = $1
			WHERE id = $2 AND activated_install IS NULL`, id, licID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return errors.Join(ErrAlreadyActivated, err)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO plane_installs
			(id, license_id, public_key, agent_version, first_seen_at, last_seen_at, interval_seconds)
			VALUES ($1, $2, $3, $4, $5, $5, $6)`,
			id, licID, base64.StdEncoding.EncodeToString(publicKey), agentVersion, now, int64(interval/time.Second))
		return err
	})
	if err != nil {
		return Install{}, fmt.Errorf("plane: activate: %w", err)
	}
	return s.Install(ctx, id)
}
