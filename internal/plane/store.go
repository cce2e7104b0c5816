package plane

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"database/sql"
	"embed"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"time"

	"github.com/tetherhq/tether/internal/sqldb"
	"github.com/tetherhq/tether/internal/wire"
)

//go:embed migrations/*.sql
var migrations embed.FS

// versionTable keeps the plane's migration history apart from the document
// service's, so both schemas can share one PostgreSQL database if a vendor
// wants that.
const versionTable = "plane_db_version"

// HistoryLimit bounds the heartbeat history kept per install; older rows are
// pruned as new ones arrive.
const HistoryLimit = 500

// Sentinel errors of the store; handlers map them to HTTP statuses.
var (
	ErrNotFound         = errors.New("not found")
	ErrExists           = errors.New("already exists")
	ErrBadToken         = errors.New("unknown activation token")
	ErrAlreadyActivated = errors.New("activation token already used")
	ErrRevoked          = errors.New("install revoked")
	ErrWrongStatus      = errors.New("diagnostic request is not awaiting a bundle")
)

// Health values the plane derives from heartbeats. Anything the agent reports
// is mapped onto these before it is stored.
const (
	HealthOK       = "ok"
	HealthDegraded = "degraded"
	HealthDown     = "down"
	HealthUnknown  = "unknown"
)

// Store is the plane's state on SQLite or PostgreSQL. The SQL is portable, so
// there is one implementation; a conformance test runs it on both.
type Store struct {
	db  *sqldb.DB
	now func() time.Time

	nonces     *batcher[nonceItem, bool]
	heartbeats *batcher[heartbeatItem, heartbeatResult]
}

// OpenStore migrates db to the plane's schema and returns a store using now
// as its clock.
func OpenStore(ctx context.Context, db *sqldb.DB, now func() time.Time) (*Store, error) {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, fmt.Errorf("plane: migrations: %w", err)
	}
	if _, err := db.MigrateFS(ctx, sub, versionTable); err != nil {
		return nil, fmt.Errorf("plane: migrate: %w", err)
	}
	s := &Store{db: db, now: now}
	// One writer per kind: measured on PostgreSQL (bench/plane-ingest), a
	// single writer whose batches grow with load beat parallel writers with
	// small batches, and SQLite has one writer anyway.
	s.nonces = &batcher[nonceItem, bool]{max: 256, workers: 1, write: s.rememberNonces}
	s.heartbeats = &batcher[heartbeatItem, heartbeatResult]{max: 128, workers: 1, write: s.recordHeartbeats}
	return s, nil
}

// DB exposes the handle for health checks.
func (s *Store) DB() *sqldb.DB { return s.db }

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
}

// HeartbeatEntry is one row of an install's health history.
type HeartbeatEntry struct {
	Seq     int64           `json:"seq"`
	At      time.Time       `json:"at"`
	Version string          `json:"version"`
	Health  string          `json:"health"`
	Body    json.RawMessage `json:"heartbeat"`
}

// Diagnostic is a vendor's request for a support bundle and its upload.
type Diagnostic struct {
	ID           string     `json:"id"`
	InstallID    string     `json:"install_id"`
	Reason       string     `json:"reason"`
	Status       string     `json:"status"`
	RequestedAt  time.Time  `json:"requested_at"`
	UploadedAt   *time.Time `json:"uploaded_at,omitempty"`
	BundleSize   int64      `json:"bundle_size"`
	BundleSHA256 string     `json:"bundle_sha256,omitempty"`
	BundlePath   string     `json:"-"`
}

// Diagnostic statuses.
const (
	DiagRequested = "requested"
	DiagUploaded  = "uploaded"
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

func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

func fromNullMS(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := fromMS(v.Int64)
	return &t
}

// NewID returns a random identifier with a type prefix ("in_", "dg_", ...).
// 80 bits of randomness make collisions irrelevant and guessing useless.
func NewID(prefix string) string {
	var b [10]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("plane: crypto/rand failed: " + err.Error()) // cannot happen on supported platforms
	}
	return prefix + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
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

// RememberNonce records nonce for installID until the given time. It reports
// false when the nonce is already recorded and unexpired: a replay.
// Concurrent calls share one INSERT (see batcher); each commits before it
// returns, so a restart cannot forget a nonce it accepted.
func (s *Store) RememberNonce(ctx context.Context, installID, nonce string, until time.Time) (fresh bool, err error) {
	fresh, err = s.nonces.do(ctx, nonceItem{installID: installID, nonce: nonce, until: until})
	if err != nil {
		return false, fmt.Errorf("plane: remember nonce: %w", err)
	}
	return fresh, nil
}

type nonceItem struct {
	installID, nonce string
	until            time.Time
}

func (s *Store) rememberNonces(ctx context.Context, items []nonceItem) ([]bool, error) {
	fresh := make([]bool, len(items))
	type key struct{ install, nonce string }
	first := make(map[key]int, len(items))
	var sb strings.Builder
	args := []any{ms(s.now())}
	sb.WriteString(`INSERT INTO plane_nonces (install_id, nonce, expires_at) VALUES `)
	for i, it := range items {
		k := key{it.installID, it.nonce}
		if _, dup := first[k]; dup {
			continue // the same nonce twice in one batch: the later one is a replay
		}
		first[k] = i
		if len(args) > 1 {
			sb.WriteString(", ")
		}
		n := len(args)
		fmt.Fprintf(&sb, "($%d, $%d, $%d)", n+1, n+2, n+3)
		args = append(args, it.installID, it.nonce, ms(it.until))
	}
	// An expired row may be reused; the WHERE on the update keeps live
	// ones, and RETURNING names exactly the rows written: the fresh nonces.
	sb.WriteString(` ON CONFLICT (install_id, nonce) DO UPDATE SET expires_at = excluded.expires_at
		WHERE plane_nonces.expires_at < $1 RETURNING install_id, nonce`)
	rows, err := s.db.QueryContext(ctx, sb.String(), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var k key
		if err := rows.Scan(&k.install, &k.nonce); err != nil {
			return nil, err
		}
		if i, ok := first[k]; ok {
			fresh[i] = true
		}
	}
	return fresh, rows.Err()
}

// PruneNonces deletes nonces that expired before now; it returns how many.
func (s *Store) PruneNonces(ctx context.Context) (int64, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM plane_nonces WHERE expires_at < $1`, ms(s.now()))
	if err != nil {
		return 0, fmt.Errorf("plane: prune nonces: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
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

func queueAlert(ctx context.Context, tx *sql.Tx, installID, kind, value string, now int64) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO plane_alerts (id, install_id, kind, value, created_at, next_attempt_at)
		VALUES ($1, $2, $3, $4, $5, $5)`, NewID("al_"), installID, kind, value, now)
	return err
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
	i.ledger_count, i.ledger_sha256, i.ledger_problem, i.ledger_problem_at,
	(SELECT COUNT(*) FROM plane_diagnostics d WHERE d.install_id = i.id AND d.status = 'requested')`

func scanInstall(sc interface{ Scan(...any) error }) (Install, error) {
	var in Install
	var key, chans, last string
	var revoked sql.NullInt64
	var first, lastSeen, expires int64
	var stale int
	var ledgerCount int64
	var ledgerSHA string
	var problemAt sql.NullInt64
	if err := sc.Scan(&in.ID, &in.LicenseID, &in.Customer, &key, &in.AgentVersion, &revoked,
		&first, &lastSeen, &in.Heartbeats, &in.IntervalSeconds, &in.Version, &in.Channel, &in.Health,
		&in.LicenseState, &expires, &in.LicenseGrace, &chans, &stale, &last,
		&ledgerCount, &ledgerSHA, &in.LedgerProblem, &problemAt, &in.PendingDiagCount); err != nil {
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
		}
		if json.Unmarshal([]byte(last), &hb) == nil {
			in.Release, in.LastUpgrade = hb.Release, hb.LastUpgrade
		}
	}
	if ledgerSHA != "" {
		in.LedgerHead = fmt.Sprintf("%d:%s", ledgerCount, ledgerSHA)
	}
	in.LedgerProblemAt = fromNullMS(problemAt)
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

// RequestDiagnostic records the vendor's request for a bundle from an install.
func (s *Store) RequestDiagnostic(ctx context.Context, installID, reason string) (Diagnostic, error) {
	if _, err := s.Install(ctx, installID); err != nil {
		return Diagnostic{}, fmt.Errorf("plane: request diagnostic: %w", err)
	}
	d := Diagnostic{ID: NewID("dg_"), InstallID: installID, Reason: reason, Status: DiagRequested,
		RequestedAt: fromMS(ms(s.now()))}
	_, err := s.db.ExecContext(ctx, `INSERT INTO plane_diagnostics (id, install_id, reason, status, requested_at)
		VALUES ($1, $2, $3, $4, $5)`, d.ID, d.InstallID, d.Reason, d.Status, ms(d.RequestedAt))
	if err != nil {
		return Diagnostic{}, fmt.Errorf("plane: request diagnostic: %w", err)
	}
	return d, nil
}

const diagColumns = `id, install_id, reason, status, requested_at, uploaded_at, bundle_size, bundle_sha256, bundle_path`

func scanDiag(sc interface{ Scan(...any) error }) (Diagnostic, error) {
	var d Diagnostic
	var req int64
	var up sql.NullInt64
	if err := sc.Scan(&d.ID, &d.InstallID, &d.Reason, &d.Status, &req, &up, &d.BundleSize, &d.BundleSHA256, &d.BundlePath); err != nil {
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

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}
