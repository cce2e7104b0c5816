package planestore

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/tetherhq/tether/internal/wire"
)

// Install is one activated agent and what its last heartbeat said.
type Install struct {
	ID               string          `json:"id"`
	LicenseID        string          `json:"license_id"`
	Customer         string          `json:"customer"`
	PublicKey        []byte          `json:"public_key"`
	AgentVersion     string          `json:"agent_version"`
	Revoked          bool            `json:"revoked"`
	RevokedAt        *time.Time      `json:"revoked_at,omitempty"`
	FirstSeen        time.Time       `json:"first_seen"`
	LastSeen         time.Time       `json:"last_seen"`
	Heartbeats       int64           `json:"heartbeats"`
	IntervalSeconds  int64           `json:"heartbeat_interval_seconds"`
	Version          string          `json:"version"`
	Channel          string          `json:"channel"`
	Health           string          `json:"health"`
	LicenseState     string          `json:"license_state"`
	LicenseExpires   time.Time       `json:"license_expires"`
	LicenseGrace     int64           `json:"license_grace_seconds"`
	LicenseChannels  []string        `json:"license_channels"`
	Stale            bool            `json:"stale"`
	LastHeartbeat    json.RawMessage `json:"last_heartbeat,omitempty"`
	PendingDiagCount int             `json:"pending_diagnostics"`
	// LedgerHead is the highest egress-ledger head the install's heartbeats
	// reported, as COUNT:SHA256 for `tetherctl egress verify --expect-head`;
	// empty until one is. Once LedgerProblem is set it stays at the last
	// head before the evidence.
	LedgerHead      string     `json:"ledger_head,omitempty"`
	LedgerProblem   string     `json:"ledger_problem,omitempty"` // the first evidence of a cut or rewritten ledger
	LedgerProblemAt *time.Time `json:"ledger_problem_at,omitempty"`
	// Release and LastUpgrade are what the last heartbeat said of the
	// install's release record (wire.Heartbeat).
	Release     string              `json:"release,omitempty"`
	LastUpgrade wire.UpgradeAttempt `json:"last_upgrade,omitzero"`
	// Warnings are the capacity alarms the last heartbeat said were firing.
	Warnings []string `json:"warnings,omitempty"`
	// RekeyedAt is when the install last replaced its key (POST /v1/rekey);
	// nil while it signs with its activation key. Not in the admin API's
	// document yet, so not in its JSON.
	RekeyedAt *time.Time `json:"-"`
}

// InstallKey returns the public key an install signs with; revoked installs
// get ErrRevoked, unknown ones ErrNotFound.
func (s *Store) InstallKey(ctx context.Context, installID string) (ed25519.PublicKey, error) {
	var key string
	var revoked sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT public_key, revoked_at FROM plane_installs WHERE id = $1`, installID).
		Scan(&key, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("plane: install key %s: %w", installID, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("plane: install key %s: %w", installID, err)
	}
	if revoked.Valid {
		return nil, fmt.Errorf("plane: install key %s: %w", installID, ErrRevoked)
	}
	raw, err := base64.StdEncoding.DecodeString(key)
	if err != nil || len(raw) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("plane: install key %s: stored key is malformed", installID)
	}
	return ed25519.PublicKey(raw), nil
}

// MarkStale flags every unrevoked install whose last heartbeat is older than
// missed heartbeat intervals, queues one alert for each newly stale install,
// and returns their IDs. A heartbeat clears the flag, so the next silence
// alerts again. Each install is flagged in its own short transaction, so the
// sweep never holds locks on many rows that heartbeat batches also need.
func (s *Store) MarkStale(ctx context.Context, missed int64) ([]string, error) {
	now := ms(s.now())
	rows, err := s.db.QueryContext(ctx, `SELECT id FROM plane_installs
		WHERE stale = 0 AND revoked_at IS NULL AND last_seen_at < $1 - $2 * interval_seconds * 1000 ORDER BY id`, now, missed)
	if err != nil {
		return nil, fmt.Errorf("plane: mark stale: %w", err)
	}
	var candidates []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, fmt.Errorf("plane: mark stale: %w", err)
		}
		candidates = append(candidates, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("plane: mark stale: %w", err)
	}
	var ids []string
	for _, id := range candidates {
		err := s.db.InTx(ctx, func(tx *sql.Tx) error {
			// Re-check inside the update: a heartbeat may have arrived since
			// the SELECT.
			res, err := tx.ExecContext(ctx, `UPDATE plane_installs SET stale = 1
				WHERE id = $1 AND stale = 0 AND revoked_at IS NULL AND last_seen_at < $2 - $3 * interval_seconds * 1000`,
				id, now, missed)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil || n == 0 {
				return err
			}
			ids = append(ids, id)
			return queueAlert(ctx, tx, id, AlertStale, AlertStale, now)
		})
		if err != nil {
			return ids, fmt.Errorf("plane: mark stale %s: %w", id, err)
		}
	}
	return ids, nil
}

const installColumns = `i.id, i.license_id, l.customer, i.public_key, i.agent_version, i.revoked_at,
	i.first_seen_at, i.last_seen_at, i.heartbeats, i.interval_seconds, i.version, i.channel, i.health,
	i.license_state, l.expires_at, l.grace_seconds, l.channels, i.stale, i.last_heartbeat,
	i.ledger_count, i.ledger_sha256, i.ledger_problem, i.ledger_problem_at, i.rekeyed_at,
	(SELECT COUNT(*) FROM plane_diagnostics d WHERE d.install_id = i.id AND d.status = 'requested')`

func scanInstall(sc interface{ Scan(...any) error }) (Install, error) {
	var in Install
	var key, chans, last string
	var revoked sql.NullInt64
	var first, lastSeen, expires int64
	var stale int
	var ledgerCount int64
	var ledgerSHA string
	var problemAt, rekeyedAt sql.NullInt64
	if err := sc.Scan(&in.ID, &in.LicenseID, &in.Customer, &key, &in.AgentVersion, &revoked,
		&first, &lastSeen, &in.Heartbeats, &in.IntervalSeconds, &in.Version, &in.Channel, &in.Health,
		&in.LicenseState, &expires, &in.LicenseGrace, &chans, &stale, &last,
		&ledgerCount, &ledgerSHA, &in.LedgerProblem, &problemAt, &rekeyedAt, &in.PendingDiagCount); err != nil {
		return Install{}, err
	}
	pk, err := base64.StdEncoding.DecodeString(key)
	if err != nil {
		return Install{}, fmt.Errorf("stored key of %s is malformed", in.ID)
	}
	in.PublicKey = pk
	in.RevokedAt = fromNullMS(revoked)
	in.Revoked = revoked.Valid
	in.FirstSeen, in.LastSeen, in.LicenseExpires = fromMS(first), fromMS(lastSeen), fromMS(expires)
	in.LicenseChannels = splitList(chans)
	in.Stale = stale != 0
	if last != "" {
		in.LastHeartbeat = json.RawMessage(last)
		// Stored from a validated wire.Heartbeat; a body edited by hand
		// just shows no release.
		var hb struct {
			Release     string              `json:"release"`
			LastUpgrade wire.UpgradeAttempt `json:"last_upgrade"`
			Warnings    []string            `json:"warnings"`
		}
		if json.Unmarshal([]byte(last), &hb) == nil {
			in.Release, in.LastUpgrade, in.Warnings = hb.Release, hb.LastUpgrade, hb.Warnings
		}
	}
	if ledgerSHA != "" {
		in.LedgerHead = fmt.Sprintf("%d:%s", ledgerCount, ledgerSHA)
	}
	in.LedgerProblemAt = fromNullMS(problemAt)
	in.RekeyedAt = fromNullMS(rekeyedAt)
	return in, nil
}

// Installs lists every install with its license's customer, oldest first.
func (s *Store) Installs(ctx context.Context) ([]Install, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+installColumns+`
		FROM plane_installs i JOIN plane_licenses l ON l.id = i.license_id ORDER BY i.first_seen_at, i.id`)
	if err != nil {
		return nil, fmt.Errorf("plane: list installs: %w", err)
	}
	defer rows.Close()
	var out []Install
	for rows.Next() {
		in, err := scanInstall(rows)
		if err != nil {
			return nil, fmt.Errorf("plane: list installs: %w", err)
		}
		out = append(out, in)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("plane: list installs: %w", err)
	}
	return out, nil
}

// Install returns one install.
func (s *Store) Install(ctx context.Context, id string) (Install, error) {
	in, err := scanInstall(s.db.QueryRowContext(ctx, `SELECT `+installColumns+`
		FROM plane_installs i JOIN plane_licenses l ON l.id = i.license_id WHERE i.id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Install{}, fmt.Errorf("plane: install %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Install{}, fmt.Errorf("plane: install %s: %w", id, err)
	}
	return in, nil
}

// Revoke marks an install revoked: its signed requests fail from now on.
// Revoking twice is not an error; the first time is kept.
func (s *Store) Revoke(ctx context.Context, installID string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE plane_installs SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1`,
		installID, ms(s.now()))
	if err != nil {
		return fmt.Errorf("plane: revoke %s: %w", installID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("plane: revoke %s: %w", installID, ErrNotFound)
	}
	return nil
}

// ErrKeyChanged means a re-key named a current key the install no longer
// has: another re-key won the race.
var ErrKeyChanged = errors.New("install key changed since the request was verified")

// Rekey replaces installID's public key with newKey and records when, in one
// conditional update: only while the install is unrevoked and still has
// oldKey (the key its request was verified with), so two re-keys cannot both
// win and a revoke in between is honoured. Re-keying to the key it already
// has changes nothing and is not an error (an agent that crashed before
// promoting its new key asks again). Errors match ErrNotFound, ErrRevoked or
// ErrKeyChanged.
func (s *Store) Rekey(ctx context.Context, installID string, oldKey, newKey ed25519.PublicKey) error {
	oldB64, newB64 := base64.StdEncoding.EncodeToString(oldKey), base64.StdEncoding.EncodeToString(newKey)
	res, err := s.db.ExecContext(ctx, `UPDATE plane_installs SET public_key = $3, rekeyed_at = $4
		WHERE id = $1 AND public_key = $2 AND revoked_at IS NULL AND public_key <> $3`, installID, oldB64, newB64, ms(s.now()))
	if err != nil {
		return fmt.Errorf("plane: rekey %s: %w", installID, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 1 {
		return err
	}
	cur, err := s.InstallKey(ctx, installID) // why nothing changed
	switch {
	case err != nil:
		return fmt.Errorf("plane: rekey: %w", err)
	case !cur.Equal(ed25519.PublicKey(newKey)):
		return fmt.Errorf("plane: rekey %s: %w", installID, ErrKeyChanged)
	}
	return nil
}
