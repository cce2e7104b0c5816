package planestore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync/atomic"
	"time"
)

// AuditRecord is one row of the audit log: who did what, when.
type AuditRecord struct {
	ID    string    `json:"id"`
	At    time.Time `json:"at"`
	Actor Principal `json:"actor"`
	AuditEntry
}

// AuditFilter selects audit records; zero fields match everything.
type AuditFilter struct {
	Customer  string
	InstallID string
	// Actor matches the actor's ID or name exactly.
	Actor  string
	Action string
	Since  time.Time
	// Limit caps the rows returned, newest first; 0 means DefaultAuditLimit.
	Limit int
}

// Audit log listing bounds.
const (
	DefaultAuditLimit = 100
	MaxAuditLimit     = 1000
)

var auditSeq atomic.Uint64

// execer is a *sql.Tx or the store's database.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// The audit log is append-only: the store has an INSERT for plane_audit and
// no UPDATE or DELETE, and nothing outside this file writes the table.
func (s *Store) appendAudit(ctx context.Context, q execer, actor Principal, e AuditEntry) error {
	now := s.now()
	// The ID starts with the time and this process's count, so records list
	// in the order they were written (across replicas, to the millisecond).
	id := fmt.Sprintf("au_%013d_%012d_%s", ms(now), auditSeq.Add(1)%1e12, NewID(""))
	_, err := q.ExecContext(ctx, `INSERT INTO plane_audit
		(id, at, actor_kind, actor_id, actor_name, actor_role, action, customer, install_id, target, reason)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		id, ms(now), actor.Kind, actor.ID, actor.Name, string(actor.Role),
		e.Action, e.Customer, e.InstallID, e.Target, e.Reason)
	if err != nil {
		return fmt.Errorf("plane: write audit record: %w", err)
	}
	return nil
}

// AppendAudit records that actor did e, on its own.
func (s *Store) AppendAudit(ctx context.Context, actor Principal, e AuditEntry) error {
	return s.appendAudit(ctx, s.db, actor, e)
}

// audited runs fn and records e in the same transaction: the action and its
// audit record are written together or not at all.
func (s *Store) audited(ctx context.Context, actor Principal, e AuditEntry, fn func(tx *sql.Tx) error) error {
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		return s.appendAudit(ctx, tx, actor, e)
	})
}

// Audit lists audit records matching f, newest first.
func (s *Store) Audit(ctx context.Context, f AuditFilter) ([]AuditRecord, error) {
	var where []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	if f.Customer != "" {
		add("customer = $%d", f.Customer)
	}
	if f.InstallID != "" {
		add("install_id = $%d", f.InstallID)
	}
	if f.Action != "" {
		add("action = $%d", f.Action)
	}
	if f.Actor != "" {
		args = append(args, f.Actor)
		where = append(where, fmt.Sprintf("(actor_id = $%d OR actor_name = $%d)", len(args), len(args)))
	}
	if !f.Since.IsZero() {
		add("at >= $%d", ms(f.Since))
	}
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultAuditLimit
	}
	limit = min(limit, MaxAuditLimit)
	q := `SELECT id, at, actor_kind, actor_id, actor_name, actor_role, action, customer, install_id, target, reason
		FROM plane_audit`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	args = append(args, limit)
	q += fmt.Sprintf(" ORDER BY at DESC, id DESC LIMIT $%d", len(args))
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("plane: audit log: %w", err)
	}
	defer rows.Close()
	out := []AuditRecord{}
	for rows.Next() {
		var r AuditRecord
		var at int64
		var role string
		if err := rows.Scan(&r.ID, &at, &r.Actor.Kind, &r.Actor.ID, &r.Actor.Name, &role, &r.Action,
			&r.Customer, &r.InstallID, &r.Target, &r.Reason); err != nil {
			return nil, fmt.Errorf("plane: audit log: %w", err)
		}
		r.At, r.Actor.Role = fromMS(at), Role(role)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("plane: audit log: %w", err)
	}
	return out, nil
}
