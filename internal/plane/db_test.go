package plane_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tetherhq/tether/internal/sqldb"
	"github.com/tetherhq/tether/internal/sqldb/sqldbtest"
)

// testDatabases opens a fresh, empty database for each dialect the store
// must work on.
func testDatabases(t *testing.T) map[string]*sqldb.DB {
	t.Helper()
	return map[string]*sqldb.DB{"sqlite": sqliteDB(t), "postgres": postgresDB(t)}
}

func sqliteDB(t *testing.T) *sqldb.DB {
	t.Helper()
	db, err := sqldb.Open(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "plane.db"))
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// postgresDB opens an empty schema made for this test (sqldbtest drops it
// afterwards and fails the test if PostgreSQL is unreachable). The plane
// migrates its own tables, so the document service's schema is not wanted.
func postgresDB(t *testing.T) *sqldb.DB {
	t.Helper()
	db, err := sqldb.Open(context.Background(), sqldbtest.PostgresURL(t))
	if err != nil {
		t.Fatalf("open postgres schema: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newClock() *clock { return &clock{t: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)} }
