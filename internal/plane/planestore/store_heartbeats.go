package planestore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tetherhq/tether/internal/sqldb"
)

// HeartbeatEntry is one row of an install's health history.
type HeartbeatEntry struct {
	Seq     int64           `json:"seq"`
	At      time.Time       `json:"at"`
	Version string          `json:"version"`
	Health  string          `json:"health"`
	Body    json.RawMessage `json:"heartbeat"`
}

// HeartbeatRecord is what the plane stores of one validated heartbeat.
type HeartbeatRecord struct {
	Version      string
	Channel      string
	Health       string
	LicenseState string
	Body         json.RawMessage
	// The heartbeat's wire.LedgerHead; LedgerSHA256 is empty when it
	// carried none (an agent from before ledger heads).
	LedgerCount  int64
	LedgerSHA256 string
}

// ledgerState is an install's recorded ledger head and problem.
type ledgerState struct {
	count   int64
	sha256  string // "" until a head is reported
	problem string // "" while every head followed the last
}

// nextLedger folds one heartbeat's head into st. A head that follows (a
// higher count, or the same count and hash) is recorded; one that went back,
// changed the hash at the recorded count, or vanished is evidence that the
// ledger was cut and rewritten (or the agent rolled back to a version
// without heads): the first such evidence is kept as the problem, returned
// as an alert value, and from then on the recorded head stays put, so
// `egress verify --expect-head` with it keeps failing on the rewritten
// ledger. The plane accepts the heartbeat either way: refusing it would
// only blind the vendor to the install's health.
func nextLedger(st ledgerState, count int64, sha256 string) (next ledgerState, alert string) {
	var value, problem string
	switch {
	case sha256 == "" && st.sha256 == "":
		return st, ""
	case sha256 == "":
		value, problem = "missing", fmt.Sprintf("a heartbeat carried no ledger head after head %d:%s (agent rolled back, or its ledger replaced)", st.count, st.sha256)
	case st.sha256 == "":
	case count < st.count:
		value, problem = "rewound", fmt.Sprintf("the ledger head went back from %d:%s to %d:%s (entries cut off and rewritten)", st.count, st.sha256, count, sha256)
	case count == st.count && sha256 != st.sha256:
		value, problem = "rewritten", fmt.Sprintf("entry %d's hash changed from %s to %s (the ledger was rewritten)", count, st.sha256, sha256)
	}
	if problem == "" {
		if st.problem == "" {
			st.count, st.sha256 = count, sha256
		}
		return st, ""
	}
	if st.problem != "" {
		return st, ""
	}
	st.problem = problem
	return st, value
}

type heartbeatItem struct {
	installID string
	hb        HeartbeatRecord
}

type heartbeatResult struct {
	pending int
	err     error // per install: ErrNotFound or ErrRevoked
}

// RecordHeartbeat stores a heartbeat, updates the install's derived columns,
// clears its stale flag, prunes history beyond HistoryLimit and, when health
// newly became degraded or down, queues one alert in the same transaction.
// It returns how many diagnostic requests await the install. Concurrent
// heartbeats share a transaction (see batcher).
func (s *Store) RecordHeartbeat(ctx context.Context, installID string, hb HeartbeatRecord) (pending int, err error) {
	res, err := s.heartbeats.do(ctx, heartbeatItem{installID: installID, hb: hb})
	if err == nil {
		err = res.err
	}
	if err != nil {
		return 0, fmt.Errorf("plane: record heartbeat for %s: %w", installID, err)
	}
	return res.pending, nil
}

// recordHeartbeats writes a batch in one transaction with one UPDATE for
// all installs and one INSERT for all history rows, so a batch costs the
// same few round trips whatever its size. An install may appear more than
// once in a batch; its row ends up as its last heartbeat says, and health
// transitions are walked in order so none is missed.
func (s *Store) recordHeartbeats(ctx context.Context, items []heartbeatItem) ([]heartbeatResult, error) {
	out := make([]heartbeatResult, len(items))
	now := ms(s.now())

	// Group by install, keeping arrival order within each; sorted install
	// IDs also give concurrent writers one row-lock order.
	byInstall := map[string][]int{}
	for i, it := range items {
		byInstall[it.installID] = append(byInstall[it.installID], i)
	}
	ids := make([]string, 0, len(byInstall))
	for id := range byInstall {
		ids = append(ids, id)
	}
	slices.Sort(ids)

	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		if s.db.Dialect == sqldb.Postgres {
			// A heartbeat is resent every interval, so losing the last few
			// hundred milliseconds of them in a database crash costs
			// nothing, while waiting for the WAL flush is most of a
			// heartbeat's cost. Nonces and everything else stay
			// synchronous. (SQLite has no per-transaction equivalent.)
			if _, err := tx.ExecContext(ctx, `SET LOCAL synchronous_commit = off`); err != nil {
				return err
			}
		}

		if s.db.Dialect == sqldb.Postgres {
			// Lock the rows in ID order before updating. Without it, two
			// transactions touching the same installs (another writer, a
			// revoke) can deadlock, and under READ COMMITTED an
			// UPDATE ... FROM silently skips a row another transaction
			// changed first. SQLite has a single writer and needs neither.
			in := make([]string, len(ids))
			lockArgs := make([]any, len(ids))
			for i, id := range ids {
				in[i] = fmt.Sprintf("$%d", i+1)
				lockArgs[i] = id
			}
			rows, err := tx.QueryContext(ctx, `SELECT id FROM plane_installs WHERE id IN (`+strings.Join(in, ", ")+`)
				ORDER BY id FOR UPDATE`, lockArgs...)
			if err != nil {
				return err
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
		}

		// The new values per install come in as a derived table of SELECTs
		// (portable, unlike column-aliased VALUES). SET expressions see the
		// old row, which is how prev_health keeps the health before this
		// batch.
		var src strings.Builder
		args := []any{now, DiagRequested}
		for n, id := range ids {
			idx := byInstall[id]
			last := items[idx[len(idx)-1]].hb
			if n > 0 {
				src.WriteString(" UNION ALL ")
			}
			p := len(args)
			fmt.Fprintf(&src, `SELECT $%d AS id, CAST($%d AS BIGINT) AS n, $%d AS version, $%d AS channel,
				$%d AS health, $%d AS license_state, $%d AS body`, p+1, p+2, p+3, p+4, p+5, p+6, p+7)
			args = append(args, id, int64(len(idx)), last.Version, last.Channel, last.Health, last.LicenseState, string(last.Body))
		}
		rows, err := tx.QueryContext(ctx, `UPDATE plane_installs SET heartbeats = plane_installs.heartbeats + v.n, last_seen_at = $1,
			version = v.version, channel = v.channel, prev_health = plane_installs.health, health = v.health,
			license_state = v.license_state, last_heartbeat = v.body, stale = 0
			FROM (`+src.String()+`) AS v
			WHERE plane_installs.id = v.id AND plane_installs.revoked_at IS NULL
			RETURNING plane_installs.id, plane_installs.heartbeats, plane_installs.prev_health,
				plane_installs.ledger_count, plane_installs.ledger_sha256, plane_installs.ledger_problem,
				(SELECT COUNT(*) FROM plane_diagnostics d WHERE d.install_id = plane_installs.id AND d.status = $2)`,
			args...)
		if err != nil {
			return err
		}
		type updated struct {
			seq        int64 // sequence of the install's last heartbeat in this batch
			prevHealth string
			ledger     ledgerState // as recorded before this batch
			pending    int
		}
		done := map[string]updated{}
		for rows.Next() {
			var id string
			var u updated
			if err := rows.Scan(&id, &u.seq, &u.prevHealth, &u.ledger.count, &u.ledger.sha256, &u.ledger.problem, &u.pending); err != nil {
				rows.Close()
				return err
			}
			done[id] = u
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}

		var hist strings.Builder
		hist.WriteString(`INSERT INTO plane_heartbeats (install_id, seq, at, version, health, body) VALUES `)
		var histArgs []any
		var heads strings.Builder // the new ledger heads, as a derived table
		headArgs := []any{now}
		for _, id := range ids {
			idx := byInstall[id]
			u, ok := done[id]
			if !ok {
				// Not updated: unknown or revoked. Rare, so ask which.
				var revoked sql.NullInt64
				why := ErrRevoked
				err := tx.QueryRowContext(ctx, `SELECT revoked_at FROM plane_installs WHERE id = $1`, id).Scan(&revoked)
				if errors.Is(err, sql.ErrNoRows) {
					why = ErrNotFound
				} else if err != nil {
					return err
				}
				for _, i := range idx {
					out[i].err = why
				}
				continue
			}
			first := u.seq - int64(len(idx)) + 1
			prev := u.prevHealth
			led := u.ledger
			for k, i := range idx {
				hb := items[i].hb
				var alert string
				if led, alert = nextLedger(led, hb.LedgerCount, hb.LedgerSHA256); alert != "" {
					if err := queueAlert(ctx, tx, id, AlertLedger, alert, now); err != nil {
						return err
					}
				}
				out[i].pending = u.pending
				if len(histArgs) > 0 {
					hist.WriteString(", ")
				}
				p := len(histArgs)
				fmt.Fprintf(&hist, "($%d, $%d, $%d, $%d, $%d, $%d)", p+1, p+2, p+3, p+4, p+5, p+6)
				histArgs = append(histArgs, id, first+int64(k), now, hb.Version, hb.Health, string(hb.Body))
				if hb.Health != prev && (hb.Health == HealthDegraded || hb.Health == HealthDown) {
					if err := queueAlert(ctx, tx, id, AlertHealth, hb.Health, now); err != nil {
						return err
					}
				}
				prev = hb.Health
			}
			if led != u.ledger {
				if len(headArgs) > 1 {
					heads.WriteString(" UNION ALL ")
				}
				p := len(headArgs)
				fmt.Fprintf(&heads, `SELECT $%d AS id, CAST($%d AS BIGINT) AS n, $%d AS sha256, $%d AS problem, CAST($%d AS INTEGER) AS new_problem`,
					p+1, p+2, p+3, p+4, p+5)
				newProblem := 0 // stamps ledger_problem_at once
				if u.ledger.problem == "" && led.problem != "" {
					newProblem = 1
				}
				headArgs = append(headArgs, id, led.count, led.sha256, led.problem, newProblem)
			}
			// Prune when the sequence crosses a multiple of 16: the bound
			// holds within 16 rows while most batches skip the delete.
			if u.seq > HistoryLimit && (first-1)/16 != u.seq/16 {
				if _, err := tx.ExecContext(ctx, `DELETE FROM plane_heartbeats WHERE install_id = $1 AND seq <= $2`,
					id, u.seq-HistoryLimit); err != nil {
					return err
				}
			}
		}
		if len(headArgs) > 1 {
			if _, err := tx.ExecContext(ctx, `UPDATE plane_installs SET ledger_count = v.n, ledger_sha256 = v.sha256,
				ledger_problem = v.problem, ledger_problem_at = CASE WHEN v.new_problem = 1 THEN $1 ELSE plane_installs.ledger_problem_at END
				FROM (`+heads.String()+`) AS v WHERE plane_installs.id = v.id`, headArgs...); err != nil {
				return err
			}
		}
		if len(histArgs) == 0 {
			return nil
		}
		_, err = tx.ExecContext(ctx, hist.String(), histArgs...)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// History returns up to limit of an install's most recent heartbeats, newest
// first.
func (s *Store) History(ctx context.Context, installID string, limit int) ([]HeartbeatEntry, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT seq, at, version, health, body FROM plane_heartbeats
		WHERE install_id = $1 ORDER BY seq DESC LIMIT $2`, installID, limit)
	if err != nil {
		return nil, fmt.Errorf("plane: history of %s: %w", installID, err)
	}
	defer rows.Close()
	var out []HeartbeatEntry
	for rows.Next() {
		var e HeartbeatEntry
		var at int64
		var body string
		if err := rows.Scan(&e.Seq, &at, &e.Version, &e.Health, &body); err != nil {
			return nil, fmt.Errorf("plane: history of %s: %w", installID, err)
		}
		e.At, e.Body = fromMS(at), json.RawMessage(body)
		out = append(out, e)
	}
	return out, rows.Err()
}
