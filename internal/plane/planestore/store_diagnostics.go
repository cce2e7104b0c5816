package planestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tetherhq/tether/internal/wire"
)

// Diagnostic is a vendor's request for a support bundle and its upload.
type Diagnostic struct {
	ID        string `json:"id"`
	InstallID string `json:"install_id"`
	Reason    string `json:"reason"`
	// RequestedBy and RequestedByKind are the requesting principal's Name
	// and Kind; the customer sees both.
	RequestedBy     string     `json:"requested_by"`
	RequestedByKind string     `json:"requested_by_kind"`
	Status          string     `json:"status"`
	RequestedAt     time.Time  `json:"requested_at"`
	UploadedAt      *time.Time `json:"uploaded_at,omitempty"`
	BundleSize      int64      `json:"bundle_size"`
	BundleSHA256    string     `json:"bundle_sha256,omitempty"`
	BundlePath      string     `json:"-"`
}

// Diagnostic statuses.
const (
	DiagRequested = "requested"
	DiagUploaded  = "uploaded"
)

const diagPrefix = "dg_"

// NewDiagnosticID makes the ID of a new diagnostics request.
func NewDiagnosticID() string { return NewID(diagPrefix) }

// ErrNoRequester is returned for a diagnostics request that names no one:
// nothing is requested anonymously.
var ErrNoRequester = errors.New("a diagnostics request must name who asked")

// RequestDiagnostic records the vendor's request id (NewDiagnosticID) for
// a bundle from an install, and who asked. The caller makes the ID so that
// the audit record written before the request can name it.
func (s *Store) RequestDiagnostic(ctx context.Context, id, installID, reason string, by Principal) (Diagnostic, error) {
	if by.Name == "" || by.Kind == "" {
		return Diagnostic{}, fmt.Errorf("plane: request diagnostic: %w", ErrNoRequester)
	}
	if !strings.HasPrefix(id, diagPrefix) || !wire.ValidID(id) {
		return Diagnostic{}, fmt.Errorf("plane: request diagnostic: ID %q is not one NewDiagnosticID made", id)
	}
	if _, err := s.Install(ctx, installID); err != nil {
		return Diagnostic{}, fmt.Errorf("plane: request diagnostic: %w", err)
	}
	d := Diagnostic{ID: id, InstallID: installID, Reason: reason, Status: DiagRequested,
		RequestedAt: fromMS(ms(s.now())), RequestedBy: by.Name, RequestedByKind: by.Kind}
	_, err := s.db.ExecContext(ctx, `INSERT INTO plane_diagnostics (id, install_id, reason, status, requested_at,
		requested_by, requested_by_kind) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		d.ID, d.InstallID, d.Reason, d.Status, ms(d.RequestedAt), d.RequestedBy, d.RequestedByKind)
	if err != nil {
		return Diagnostic{}, fmt.Errorf("plane: request diagnostic: %w", err)
	}
	return d, nil
}

const diagColumns = `id, install_id, reason, status, requested_at, uploaded_at, bundle_size, bundle_sha256, bundle_path,
	requested_by, requested_by_kind`

func scanDiag(sc interface{ Scan(...any) error }) (Diagnostic, error) {
	var d Diagnostic
	var req int64
	var up sql.NullInt64
	if err := sc.Scan(&d.ID, &d.InstallID, &d.Reason, &d.Status, &req, &up, &d.BundleSize, &d.BundleSHA256, &d.BundlePath,
		&d.RequestedBy, &d.RequestedByKind); err != nil {
		return Diagnostic{}, err
	}
	d.RequestedAt, d.UploadedAt = fromMS(req), fromNullMS(up)
	return d, nil
}

// Diagnostics lists diagnostic requests, newest first. An empty installID
// lists every install's; a non-empty status filters.
func (s *Store) Diagnostics(ctx context.Context, installID, status string) ([]Diagnostic, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+diagColumns+` FROM plane_diagnostics
		WHERE ($1 = '' OR install_id = $1) AND ($2 = '' OR status = $2) ORDER BY requested_at DESC, id`,
		installID, status)
	if err != nil {
		return nil, fmt.Errorf("plane: list diagnostics: %w", err)
	}
	defer rows.Close()
	var out []Diagnostic
	for rows.Next() {
		d, err := scanDiag(rows)
		if err != nil {
			return nil, fmt.Errorf("plane: list diagnostics: %w", err)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// Diagnostic returns one diagnostic request.
func (s *Store) Diagnostic(ctx context.Context, id string) (Diagnostic, error) {
	d, err := scanDiag(s.db.QueryRowContext(ctx, `SELECT `+diagColumns+` FROM plane_diagnostics WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Diagnostic{}, fmt.Errorf("plane: diagnostic %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Diagnostic{}, fmt.Errorf("plane: diagnostic %s: %w", id, err)
	}
	return d, nil
}

// MarkUploaded records that installID uploaded the bundle for diagnostic id.
// Only the install the request was addressed to may upload, and only once.
func (s *Store) MarkUploaded(ctx context.Context, id, installID string, size int64, sha256Hex, path string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE plane_diagnostics SET status = $3, uploaded_at = $4,
		bundle_size = $5, bundle_sha256 = $6, bundle_path = $7
		WHERE id = $1 AND install_id = $2 AND status = $8`,
		id, installID, DiagUploaded, ms(s.now()), size, sha256Hex, path, DiagRequested)
	if err != nil {
		return fmt.Errorf("plane: mark diagnostic %s uploaded: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("plane: mark diagnostic %s uploaded: %w", id, ErrWrongStatus)
	}
	return nil
}
