package plane

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
	defer rows.Close()
	var out []Alert
	for rows.Next() {
		var a Alert
		var at int64
		if err := rows.Scan(&a.ID, &a.InstallID, &a.Kind, &a.Value, &at, &a.Attempts); err != nil {
			return nil, fmt.Errorf("plane: due alerts: %w", err)
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
