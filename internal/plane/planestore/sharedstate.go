package planestore

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// This file holds the state a plane's replicas share through the database,
// so that any replica behind the load balancer can answer any request:
// dashboard sessions, leases (one replica re-signs release metadata at a
// time), rate-limit counters and the claim that makes one replica deliver
// each alert. Nonces were shared from the start (RememberNonce).

// Dashboard logins are random IDs whose SHA-256 is kept in the database with
// their expiry, so logging out ends the session on every replica (a copied
// cookie stops working), a cookie is never derived from the admin token, and
// a database leak yields no usable cookie. sessionLifetime is how long one
// lasts.
const sessionLifetime = 12 * time.Hour

func hashSession(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:])
}

// StartSession opens a session for m, or for the admin token when m is nil,
// records the login in the audit log in the same transaction, and returns
// the session's ID (the cookie's value).
func (s *Store) StartSession(ctx context.Context, now time.Time, m *StaffMember) (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("plane: session: %w", err)
	}
	id := hex.EncodeToString(b[:])
	var err error
	if m != nil {
		err = s.staffLogin(ctx, *m, hashSession(id), now.Add(sessionLifetime))
	} else {
		err = s.audited(ctx, BreakGlass(), AuditEntry{Action: "break-glass.login"}, func(tx *sql.Tx) error {
			return insertSession(ctx, tx, hashSession(id), now.Add(sessionLifetime), "", now)
		})
	}
	if err != nil {
		return "", fmt.Errorf("plane: start session: %w", err)
	}
	return id, nil
}

// insertSession stores a session's hash; staffID "" is the admin token's.
func insertSession(ctx context.Context, tx *sql.Tx, idHash string, expires time.Time, staffID string, now time.Time) error {
	// Keep the table to live sessions.
	if _, err := tx.ExecContext(ctx, `DELETE FROM plane_sessions WHERE expires_at <= $1`, ms(now)); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO plane_sessions (id_hash, expires_at, staff_id) VALUES ($1, $2, $3)`,
		idHash, ms(expires), sql.NullString{String: staffID, Valid: staffID != ""})
	return err
}

// SessionPrincipal looks the cookie up by its hash (the lookup compares
// hashes, so it leaks nothing about the cookie through timing) and returns
// whose session it is. A staff member's role is read now, so a changed role
// applies at once and a removed member's session ends.
func (s *Store) SessionPrincipal(ctx context.Context, id string, now time.Time) (Principal, bool, error) {
	if len(id) != 64 {
		return Principal{}, false, nil
	}
	var exp int64
	var staffID sql.NullString
	err := s.db.QueryRowContext(ctx, `SELECT expires_at, staff_id FROM plane_sessions WHERE id_hash = $1`,
		hashSession(id)).Scan(&exp, &staffID)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && ms(now) >= exp) {
		return Principal{}, false, nil
	}
	if err != nil {
		return Principal{}, false, fmt.Errorf("plane: check session: %w", err)
	}
	if !staffID.Valid {
		return BreakGlass(), true, nil
	}
	m, err := s.StaffByID(ctx, staffID.String)
	if errors.Is(err, ErrNotFound) {
		return Principal{}, false, nil
	}
	if err != nil {
		return Principal{}, false, fmt.Errorf("plane: check session: %w", err)
	}
	return m.principal(), true, nil
}

// EndSession ends a session on every replica.
func (s *Store) EndSession(ctx context.Context, id string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM plane_sessions WHERE id_hash = $1`, hashSession(id)); err != nil {
		return fmt.Errorf("plane: end session: %w", err)
	}
	return nil
}

// ErrLeaseHeld is returned by WithLease when another holder has the lease.
var ErrLeaseHeld = errors.New("plane: lease held by another replica")

// ErrLeaseLost is what a lease's check returns once the holder could not
// renew it in time: another replica may take it over, so the work must not
// make its result visible.
var ErrLeaseLost = errors.New("plane: lease lost before the work finished")

// acquireLease takes or renews name for holder until now+ttl. It succeeds
// when the lease is free, expired, or already holder's; the WHERE of the
// upsert makes that one atomic statement on both dialects.
func (s *Store) acquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	now := s.now()
	rows, err := s.db.QueryContext(ctx, `INSERT INTO plane_leases (name, holder, expires_at) VALUES ($1, $2, $3)
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
		WHERE plane_leases.expires_at <= $4 OR plane_leases.holder = excluded.holder
		RETURNING holder`, name, holder, ms(now.Add(ttl)), ms(now))
	if err != nil {
		return false, fmt.Errorf("plane: lease %s: %w", name, err)
	}
	defer rows.Close()
	got := rows.Next()
	return got, rows.Err()
}

func (s *Store) releaseLease(ctx context.Context, name, holder string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM plane_leases WHERE name = $1 AND holder = $2`, name, holder)
	return err
}

// WithLease runs fn while holding the lease name for holder (a replica's
// unique ID), renewing it every ttl/3. If another holder has it, fn does not
// run and WithLease returns ErrLeaseHeld. fn's context ends if a renewal
// fails; held reports, with the database's word, whether the lease is still
// this holder's, and fn calls it right before making its work visible (the
// release mirror does, before moving timestamp.json). A holder that dies
// leaves the lease to expire after ttl.
func (s *Store) WithLease(ctx context.Context, name, holder string, ttl time.Duration,
	fn func(ctx context.Context, held func(context.Context) error) error) error {
	if ttl < 3*time.Second {
		return fmt.Errorf("plane: lease %s: ttl %s is too short to renew; want at least 3s", name, ttl)
	}
	ok, err := s.acquireLease(ctx, name, holder, ttl)
	if err != nil {
		return err
	}
	if !ok {
		return ErrLeaseHeld
	}
	workCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := make(chan struct{})
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		t := time.NewTicker(ttl / 3)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			if ok, err := s.acquireLease(workCtx, name, holder, ttl); err != nil || !ok {
				cancel(errors.Join(ErrLeaseLost, err))
				return
			}
		}
	}()
	held := func(ctx context.Context) error {
		if err := context.Cause(workCtx); err != nil {
			return err
		}
		ok, err := s.acquireLease(ctx, name, holder, ttl)
		if err != nil {
			return errors.Join(ErrLeaseLost, err)
		}
		if !ok {
			return ErrLeaseLost
		}
		return nil
	}
	err = fn(workCtx, held)
	close(stop)
	<-renewed
	// Release with the caller's context: the work's may have been cancelled.
	return errors.Join(err, s.releaseLease(context.WithoutCancel(ctx), name, holder))
}

// Allow counts one event against bucket in a fixed window and reports
// whether the bucket is still within limit events for the window. Replicas
// share the counter, so a client cannot multiply its budget by spreading
// attempts over them.
func (s *Store) Allow(ctx context.Context, bucket string, limit int64, window time.Duration) (bool, error) {
	now := ms(s.now())
	var count int64
	err := s.db.QueryRowContext(ctx, `INSERT INTO plane_rate_limits (bucket, window_start, count) VALUES ($1, $2, 1)
		ON CONFLICT (bucket) DO UPDATE SET
			count = CASE WHEN plane_rate_limits.window_start <= $3 THEN 1 ELSE plane_rate_limits.count + 1 END,
			window_start = CASE WHEN plane_rate_limits.window_start <= $3 THEN $2 ELSE plane_rate_limits.window_start END
		RETURNING count`, bucket, now, now-window.Milliseconds()).Scan(&count)
	if err != nil {
		return false, fmt.Errorf("plane: rate limit: %w", err)
	}
	return count <= limit, nil
}

// PruneRateLimits deletes counters whose window ended long ago.
func (s *Store) PruneRateLimits(ctx context.Context, olderThan time.Duration) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM plane_rate_limits WHERE window_start < $1`, ms(s.now().Add(-olderThan)))
	return err
}

// RateCount returns how many events bucket counted in its current window,
// if that window started after since; 0 otherwise.
func (s *Store) RateCount(ctx context.Context, bucket string, since time.Time) (int64, error) {
	var count int64
	err := s.db.QueryRowContext(ctx, `SELECT count FROM plane_rate_limits WHERE bucket = $1 AND window_start > $2`,
		bucket, ms(since)).Scan(&count)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return count, err
	}
	return count, nil
}

// alertClaim is how long a replica has to deliver an alert it claimed
// before another replica may claim it again.
const alertClaim = 2 * time.Minute

// ClaimDueAlerts returns up to limit undelivered alerts whose next attempt
// is due and, in the same statement, pushes their next attempt alertClaim
// into the future, so a second replica sweeping at the same moment does not
// get them too: each alert is posted once unless its claimer dies, when it
// is retried after the claim runs out (delivery stays at-least-once). The
// outer WHERE repeats the due condition so that, on PostgreSQL, a statement
// that waited for another's row lock re-checks the row and skips it.
func (s *Store) ClaimDueAlerts(ctx context.Context, limit int) ([]Alert, error) {
	now := s.now()
	rows, err := s.db.QueryContext(ctx, `UPDATE plane_alerts SET next_attempt_at = $3
		WHERE id IN (SELECT id FROM plane_alerts
			WHERE sent_at IS NULL AND failed_at IS NULL AND next_attempt_at <= $1
			ORDER BY created_at, id LIMIT $2)
		AND sent_at IS NULL AND failed_at IS NULL AND next_attempt_at <= $1
		RETURNING id, install_id, kind, value, created_at, attempts`, ms(now), limit, ms(now.Add(alertClaim)))
	if err != nil {
		return nil, fmt.Errorf("plane: claim alerts: %w", err)
	}
	out, err := scanAlerts(rows)
	if err != nil {
		return nil, fmt.Errorf("plane: claim alerts: %w", err)
	}
	// RETURNING order is unspecified; deliver oldest first.
	slices.SortFunc(out, func(a, b Alert) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), strings.Compare(a.ID, b.ID))
	})
	return out, nil
}
