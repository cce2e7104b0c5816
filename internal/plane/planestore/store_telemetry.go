package planestore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// RecordTelemetry keeps the latest telemetry report of an install for the
// day it covers (the agent resends a day's running totals), counting reports.
func (s *Store) RecordTelemetry(ctx context.Context, installID, day string, body json.RawMessage) error {
	now := s.now()
	_, err := s.db.ExecContext(ctx, `INSERT INTO plane_telemetry (install_id, day, body, received_at)
		VALUES ($1, $2, $3, $4)
		ON CONFLICT (install_id, day) DO UPDATE SET body = excluded.body, received_at = excluded.received_at,
		reports = plane_telemetry.reports + 1`,
		installID, day, string(body), ms(now))
	if err != nil {
		return fmt.Errorf("plane: record telemetry for %s: %w", installID, err)
	}
	return nil
}

// TelemetryDay is one install's usage report for one day.
type TelemetryDay struct {
	Day        string          `json:"day"`
	Reports    int64           `json:"reports"`
	ReceivedAt time.Time       `json:"received_at"`
	Body       json.RawMessage `json:"telemetry"`
}

// Telemetry returns an install's daily telemetry, newest day first.
func (s *Store) Telemetry(ctx context.Context, installID string) ([]TelemetryDay, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT day, reports, received_at, body FROM plane_telemetry
		WHERE install_id = $1 ORDER BY day DESC`, installID)
	if err != nil {
		return nil, fmt.Errorf("plane: telemetry of %s: %w", installID, err)
	}
	defer rows.Close()
	var out []TelemetryDay
	for rows.Next() {
		var d TelemetryDay
		var at int64
		var body string
		if err := rows.Scan(&d.Day, &d.Reports, &at, &body); err != nil {
			return nil, fmt.Errorf("plane: telemetry of %s: %w", installID, err)
		}
		d.ReceivedAt, d.Body = fromMS(at), json.RawMessage(body)
		out = append(out, d)
	}
	return out, rows.Err()
}
