package planestore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"embed"
	"encoding/base32"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/tetherhq/tether/internal/sqldb"
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
// Each entity's types and queries are in their own file: store_licenses.go,
// store_installs.go, store_heartbeats.go, store_nonces.go,
// store_telemetry.go, store_diagnostics.go, store_alerts.go, store_staff.go
// and store_audit.go; what replicas share is in sharedstate.go.
type Store struct {
	db  *sqldb.DB
	now func() time.Time

	nonces     *batcher[nonceItem, bool]
	heartbeats *batcher[heartbeatItem, heartbeatResult]
}

// Open migrates db to the plane's schema and returns a store using now
// as its clock.
func Open(ctx context.Context, db *sqldb.DB, now func() time.Time) (*Store, error) {
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

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}
