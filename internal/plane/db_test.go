package plane_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/tetherhq/tether/internal/sqldb"
	"github.com/tetherhq/tether/internal/sqldb/sqldbtest"
	"github.com/tetherhq/tether/internal/testtime"
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

// clock is the settable test clock every plane test shares.
type clock = testtime.Clock

func newClock() *clock { return testtime.NewClock(time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)) }
