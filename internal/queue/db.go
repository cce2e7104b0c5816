package queue

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/tetherhq/tether/internal/sqldb"
)

// DBOptions tunes a database-backed queue.
type DBOptions struct {
	// MaxReceives is how many deliveries a message gets before the next
	// receive moves it to the dead-letter state instead. Default 5.
	MaxReceives int
	// Clock decides visibility deadlines and ages. Default time.Now.
	// Receive's wait is measured with real timers whatever the clock says.
	Clock func() time.Time
	// PollInterval is how often a waiting Receive looks for new rows; the
	// api and worker are separate processes, so there is no in-process
	// signal to wait on. Default 200ms.
	PollInterval time.Duration
}

// DB is a queue kept in the jobs table: the embedded default. Each row is a
// message of one named queue; receive_count, visible_at and receipt carry
// SQS's delivery state, and dead_at marks the dead-letter queue.
//
// A receipt handle is "<id>.<token>", where token is random per Receive call
// and stored in the row: a redelivery overwrites it, so a handle from an
// earlier delivery no longer matches (ErrReceiptInvalid).
type DB struct {
	db          *sqldb.DB
	name        string
	maxReceives int
	now         func() time.Time
	poll        time.Duration
}

// NewDB returns the queue called name in db's jobs table.
func NewDB(db *sqldb.DB, name string, o DBOptions) *DB {
	d := &DB{db: db, name: name, maxReceives: o.MaxReceives, now: o.Clock, poll: o.PollInterval}
	if d.maxReceives <= 0 {
		d.maxReceives = 5
	}
	if d.now == nil {
		d.now = time.Now
	}
	if d.poll <= 0 {
		d.poll = 200 * time.Millisecond
	}
	return d
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand documents it)
	return hex.EncodeToString(b)
}

// Send enqueues body, visible at once.
func (d *DB) Send(ctx context.Context, body []byte) error {
	if err := checkBody(body); err != nil {
		return fmt.Errorf("queue: send: %w", err)
	}
	now := d.now().UnixMilli()
	_, err := d.db.ExecContext(ctx,
		`INSERT INTO jobs (id, queue, body, receive_count, visible_at, receipt, created_at)
		 VALUES ($1, $2, $3, 0, $4, '', $4)`,
		randomHex(16), d.name, string(body), now)
	if err != nil {
		return fmt.Errorf("queue: send: %w", err)
	}
	return nil
}

// Receive claims up to max visible messages, polling until one arrives or
// wait elapses.
func (d *DB) Receive(ctx context.Context, max int, visibility, wait time.Duration) ([]Message, error) {
	if err := checkReceive(max, visibility, wait); err != nil {
		return nil, err
	}
	// Real timers, not the clock: a test's pinned clock must not stall a
	// receive, and the wait is the caller's, not the messages'.
	waited := time.NewTimer(wait)
	defer waited.Stop()
	poll := time.NewTicker(d.poll)
	defer poll.Stop()
	for over := wait <= 0; ; {
		msgs, err := d.claim(ctx, max, visibility)
		if err != nil || len(msgs) > 0 || over {
			return msgs, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("queue: receive: %w", ctx.Err())
		case <-waited.C:
			over = true // one last look at the end of the wait
		case <-poll.C:
		}
	}
}

// lockClause makes concurrent PostgreSQL receivers skip rows another
// transaction is claiming instead of waiting for them. SQLite has no row
// locks; its write transactions (BEGIN IMMEDIATE) already run one at a time,
// across processes too.
func (d *DB) lockClause() string {
	if d.db.Dialect == sqldb.Postgres {
		return " FOR UPDATE SKIP LOCKED"
	}
	return ""
}

// claim dead-letters the visible messages that have used up their receives,
// then marks up to max of the rest in flight, in one transaction.
func (d *DB) claim(ctx context.Context, max int, visibility time.Duration) ([]Message, error) {
	now := d.now()
	nowMs := now.UnixMilli()
	token := randomHex(16)
	var msgs []Message
	err := d.db.InTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE jobs SET dead_at = $1 WHERE id IN (
			SELECT id FROM jobs
			WHERE queue = $2 AND dead_at IS NULL AND visible_at <= $1 AND receive_count >= $3`+d.lockClause()+`)`,
			nowMs, d.name, d.maxReceives)
		if err != nil {
			return fmt.Errorf("dead-letter: %w", err)
		}
		rows, err := tx.QueryContext(ctx, `UPDATE jobs
			SET receive_count = receive_count + 1, visible_at = $1, receipt = $2
			WHERE id IN (
				SELECT id FROM jobs
				WHERE queue = $3 AND dead_at IS NULL AND visible_at <= $4
				ORDER BY visible_at, created_at
				LIMIT $5`+d.lockClause()+`)
			RETURNING id, body, receive_count, created_at`,
			now.Add(visibility).UnixMilli(), token, d.name, nowMs, max)
		if err != nil {
			return fmt.Errorf("claim: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var m Message
			var body string
			var created int64
			if err := rows.Scan(&m.ID, &body, &m.ReceiveCount, &created); err != nil {
				return fmt.Errorf("claim: %w", err)
			}
			m.Body = []byte(body)
			m.SentAt = time.UnixMilli(created)
			m.ReceiptHandle = m.ID + "." + token
			msgs = append(msgs, m)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("queue: receive: %w", err)
	}
	// RETURNING has no order; hand out the oldest first, as claimed.
	sort.Slice(msgs, func(i, j int) bool { return msgs[i].SentAt.Before(msgs[j].SentAt) })
	return msgs, nil
}

// parseReceipt splits "<id>.<token>". Handles come back from callers, so a
// malformed one is ErrReceiptInvalid, not a panic or a wildcard match.
func parseReceipt(h string) (id, token string, err error) {
	id, token, ok := strings.Cut(h, ".")
	if !ok || id == "" || token == "" || strings.Contains(token, ".") {
		return "", "", ErrReceiptInvalid
	}
	return id, token, nil
}

// Extend makes the delivery named by receiptHandle invisible for visibility
// from now. It fails with ErrReceiptInvalid once the delivery's visibility
// has lapsed, as SQS does: the message may already be someone else's.
func (d *DB) Extend(ctx context.Context, receiptHandle string, visibility time.Duration) error {
	if err := checkVisibility(visibility); err != nil {
		return fmt.Errorf("queue: extend: %w", err)
	}
	id, token, err := parseReceipt(receiptHandle)
	if err != nil {
		return fmt.Errorf("queue: extend: %w", err)
	}
	now := d.now()
	res, err := d.db.ExecContext(ctx, `UPDATE jobs SET visible_at = $1
		WHERE id = $2 AND receipt = $3 AND queue = $4 AND dead_at IS NULL AND visible_at > $5`,
		now.Add(visibility).UnixMilli(), id, token, d.name, now.UnixMilli())
	return rowChanged("extend", res, err)
}

// Delete acknowledges the delivery named by receiptHandle. A handle from a
// delivery that has since been superseded by a redelivery is refused with
// ErrReceiptInvalid; the current holder still owns the message.
func (d *DB) Delete(ctx context.Context, receiptHandle string) error {
	id, token, err := parseReceipt(receiptHandle)
	if err != nil {
		return fmt.Errorf("queue: delete: %w", err)
	}
	res, err := d.db.ExecContext(ctx,
		`DELETE FROM jobs WHERE id = $1 AND receipt = $2 AND queue = $3 AND dead_at IS NULL`,
		id, token, d.name)
	return rowChanged("delete", res, err)
}

func rowChanged(op string, res sql.Result, err error) error {
	if err != nil {
		return fmt.Errorf("queue: %s: %w", op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("queue: %s: %w", op, err)
	}
	if n == 0 {
		return fmt.Errorf("queue: %s: %w", op, ErrReceiptInvalid)
	}
	return nil
}

// Stats counts the queue's messages by state. OldestAge is measured from
// when the oldest live message was first sent.
func (d *DB) Stats(ctx context.Context) (Stats, error) {
	now := d.now().UnixMilli()
	var s Stats
	var oldest sql.NullInt64
	err := d.db.QueryRowContext(ctx, `SELECT
			COALESCE(SUM(CASE WHEN dead_at IS NULL AND visible_at <= $1 THEN 1 ELSE 0 END), 0),
			COALESCE(SUM(CASE WHEN dead_at IS NULL AND visible_at > $1 THEN 1 ELSE 0 END), 0),
			COALESCE(SUM(CASE WHEN dead_at IS NOT NULL THEN 1 ELSE 0 END), 0),
			MIN(CASE WHEN dead_at IS NULL THEN created_at END)
		FROM jobs WHERE queue = $2`, now, d.name).Scan(&s.Visible, &s.InFlight, &s.DeadLetter, &oldest)
	if err != nil {
		return Stats{}, fmt.Errorf("queue: stats: %w", err)
	}
	if oldest.Valid && oldest.Int64 < now {
		s.OldestAge = time.Duration(now-oldest.Int64) * time.Millisecond
	}
	return s, nil
}

// DeadLetters lists up to max dead-lettered messages, oldest dead first.
func (d *DB) DeadLetters(ctx context.Context, max int) ([]Message, error) {
	if max < 1 || max > maxDeadLetters {
		return nil, fmt.Errorf("queue: dead letters: max %d out of range 1..%d", max, maxDeadLetters)
	}
	rows, err := d.db.QueryContext(ctx, `SELECT id, body, receive_count, created_at FROM jobs
		WHERE queue = $1 AND dead_at IS NOT NULL ORDER BY dead_at, id LIMIT $2`, d.name, max)
	if err != nil {
		return nil, fmt.Errorf("queue: dead letters: %w", err)
	}
	defer rows.Close()
	var msgs []Message
	for rows.Next() {
		var m Message
		var body string
		var created int64
		if err := rows.Scan(&m.ID, &body, &m.ReceiveCount, &created); err != nil {
			return nil, fmt.Errorf("queue: dead letters: %w", err)
		}
		m.Body, m.SentAt = []byte(body), time.UnixMilli(created)
		msgs = append(msgs, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("queue: dead letters: %w", err)
	}
	return msgs, nil
}

// Redrive makes the dead-lettered message id visible again with a receive
// count of zero, keeping its ID and original send time.
func (d *DB) Redrive(ctx context.Context, id string) error {
	res, err := d.db.ExecContext(ctx, `UPDATE jobs SET dead_at = NULL, receive_count = 0, visible_at = $1, receipt = ''
		WHERE id = $2 AND queue = $3 AND dead_at IS NOT NULL`, d.now().UnixMilli(), id, d.name)
	if err := rowChanged("redrive", res, err); err != nil {
		if errors.Is(err, ErrReceiptInvalid) {
			return fmt.Errorf("queue: redrive %s: %w", id, ErrNotFound)
		}
		return err
	}
	return nil
}
