package planestore

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Alert is one queued webhook notification.
type Alert struct {
	ID        string    `json:"id"`
	InstallID string    `json:"install_id"`
	Kind      string    `json:"kind"`
	Value     string    `json:"value"`
	CreatedAt time.Time `json:"created_at"`
	Attempts  int       `json:"attempts"`
}

// Alert kinds.
const (
	AlertStale  = "stale"
	AlertHealth = "health"
	AlertLedger = "ledger" // value: rewound | rewritten | missing (see nextLedger)
)

func queueAlert(ctx context.Context, tx *sql.Tx, installID, kind, value string, now int64) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO plane_alerts (id, install_id, kind, value, created_at, next_attempt_at)
		VALUES ($1, $2, $3, $4, $5, $5)`, NewID("al_"), installID, kind, value, now)
	return err
}

// DueAlerts returns up to limit undelivered alerts whose next attempt is due.
func (s *Store) DueAlerts(ctx context.Context, limit int) ([]Alert, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, install_id, kind, value, created_at, attempts FROM plane_alerts
		WHERE sent_at IS NULL AND failed_at IS NULL AND next_attempt_at <= $1
		ORDER BY created_at, id LIMIT $2`, ms(s.now()), limit)
	if err != nil {
		return nil, fmt.Errorf("plane: due alerts: %w", err)
	}
	out, err := scanAlerts(rows)
	if err != nil {
		return nil, fmt.Errorf("plane: due alerts: %w", err)
	}
	return out, nil
}

// scanAlerts reads rows of id, install_id, kind, value, created_at,
// attempts and closes them.
func scanAlerts(rows *sql.Rows) ([]Alert, error) {
	defer rows.Close()
	var out []Alert
	for rows.Next() {
		var a Alert
		var at int64
		if err := rows.Scan(&a.ID, &a.InstallID, &a.Kind, &a.Value, &at, &a.Attempts); err != nil {
			return nil, err
		}
		a.CreatedAt = fromMS(at)
		out = append(out, a)
	}
	return out, rows.Err()
}

// AlertSent marks an alert delivered.
func (s *Store) AlertSent(ctx context.Context, id string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE plane_alerts SET sent_at = $2, attempts = attempts + 1 WHERE id = $1`, id, ms(s.now()))
	if err != nil {
		return fmt.Errorf("plane: alert %s sent: %w", id, err)
	}
	return nil
}

// AlertFailed records a failed delivery; the alert is retried at next, or
// given up on when next is zero.
func (s *Store) AlertFailed(ctx context.Context, id string, next time.Time, reason string) error {
	now := ms(s.now())
	var err error
	if next.IsZero() {
		_, err = s.db.ExecContext(ctx, `UPDATE plane_alerts SET attempts = attempts + 1, failed_at = $2, last_error = $3
			WHERE id = $1`, id, now, reason)
	} else {
		_, err = s.db.ExecContext(ctx, `UPDATE plane_alerts SET attempts = attempts + 1, next_attempt_at = $2, last_error = $3
			WHERE id = $1`, id, ms(next), reason)
	}
	if err != nil {
		return fmt.Errorf("plane: alert %s failed: %w", id, err)
	}
	return nil
}

// AlertLicense is the kind of a license-expiry alert; its value is the
// threshold crossed, such as "30d".
const AlertLicense = "license"

// QueueLicenseAlerts queues a license alert for each unrevoked install whose
// license expires within one of thresholds (days), once per license per
// threshold: the alert's ID is derived from the license and the threshold,
// so the primary key makes a second sweep, or a second replica sweeping at
// the same moment, queue nothing. Only the tightest threshold crossed is
// queued, so a plane that first sees a license 5 days out does not also
// announce 30. It returns how many alerts it queued.
func (s *Store) QueueLicenseAlerts(ctx context.Context, thresholds []int) (int, error) {
	widest := 0
	for _, d := range thresholds {
		widest = max(widest, d)
	}
	if widest == 0 {
		return 0, nil
	}
	now := s.now()
	rows, err := s.db.QueryContext(ctx, `SELECT i.id, l.id, l.expires_at FROM plane_installs i
		JOIN plane_licenses l ON l.id = i.license_id
		WHERE i.revoked_at IS NULL AND l.expires_at <= $1 ORDER BY i.id`, ms(now.Add(time.Duration(widest)*24*time.Hour)))
	if err != nil {
		return 0, fmt.Errorf("plane: license alerts: %w", err)
	}
	type due struct {
		install, license string
		days             int
	}
	var todo []due
	for rows.Next() {
		var d due
		var exp int64
		if err := rows.Scan(&d.install, &d.license, &exp); err != nil {
			rows.Close()
			return 0, fmt.Errorf("plane: license alerts: %w", err)
		}
		left := fromMS(exp).Sub(now)
		for _, t := range thresholds {
			if t > 0 && left <= time.Duration(t)*24*time.Hour && (d.days == 0 || t < d.days) {
				d.days = t
			}
		}
		todo = append(todo, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("plane: license alerts: %w", err)
	}
	queued := 0
	for _, d := range todo {
		value := fmt.Sprintf("%dd", d.days)
		res, err := s.db.ExecContext(ctx, `INSERT INTO plane_alerts (id, install_id, kind, value, created_at, next_attempt_at)
			VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (id) DO NOTHING`,
			"al_license_"+d.license+"_"+value, d.install, AlertLicense, value, ms(now))
		if err != nil {
			return queued, fmt.Errorf("plane: license alert for %s: %w", d.license, err)
		}
		if n, err := res.RowsAffected(); err == nil && n > 0 {
			queued++
		}
	}
	return queued, nil
}

// AlertRecord is a queued alert with its delivery state, as an install's
// dashboard page lists it.
type AlertRecord struct {
	Alert
	State     string // pending | sent | failed
	LastError string
}

// InstallAlerts returns an install's newest alerts, up to limit.
func (s *Store) InstallAlerts(ctx context.Context, installID string, limit int) ([]AlertRecord, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, install_id, kind, value, created_at, attempts,
		CASE WHEN sent_at IS NOT NULL THEN 'sent' WHEN failed_at IS NOT NULL THEN 'failed' ELSE 'pending' END, last_error
		FROM plane_alerts WHERE install_id = $1 ORDER BY created_at DESC, id LIMIT $2`, installID, limit)
	if err != nil {
		return nil, fmt.Errorf("plane: alerts of %s: %w", installID, err)
	}
	defer rows.Close()
	var out []AlertRecord
	for rows.Next() {
		var a AlertRecord
		var at int64
		if err := rows.Scan(&a.ID, &a.InstallID, &a.Kind, &a.Value, &at, &a.Attempts, &a.State, &a.LastError); err != nil {
			return nil, fmt.Errorf("plane: alerts of %s: %w", installID, err)
		}
		a.CreatedAt = fromMS(at)
		out = append(out, a)
	}
	return out, rows.Err()
}
