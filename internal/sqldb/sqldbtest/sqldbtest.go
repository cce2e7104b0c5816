// Package sqldbtest gives each test its own migrated database: a SQLite file
// in the test's temporary directory, or a fresh schema in the PostgreSQL
// server on the machine. Tests that need PostgreSQL fail, never skip, when it
// is unreachable: a skipped database test passes while testing nothing.
package sqldbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tetherhq/tether/internal/sqldb"
)

// DefaultPostgresURL is the server scripts/test-deps.sh starts.
const DefaultPostgresURL = "postgres://tether_test:tether_test@127.0.0.1:5432/test"

// PostgresBaseURL returns TETHER_TEST_POSTGRES_URL, or DefaultPostgresURL.
func PostgresBaseURL() string {
	if u := os.Getenv("TETHER_TEST_POSTGRES_URL"); u != "" {
		return u
	}
	return DefaultPostgresURL
}

// SQLite returns a migrated database in a new file under t.TempDir, closed
// when t finishes.
func SQLite(t testing.TB) *sqldb.DB {
	t.Helper()
	return openMigrated(t, "sqlite://"+filepath.Join(t.TempDir(), "test.db"))
}

// Postgres returns a migrated database whose tables live in a schema created
// for this test and dropped when it finishes, so tests can run in parallel
// against one server without seeing each other's rows.
func Postgres(t testing.TB) *sqldb.DB {
	t.Helper()
	return openMigrated(t, PostgresURL(t))
}

// Empty returns a database with no tables of each dialect, "sqlite" and
// "postgres", closed when t finishes, for code that migrates its own schema
// (the vendor plane's store).
func Empty(t testing.TB) map[string]*sqldb.DB {
	t.Helper()
	return map[string]*sqldb.DB{
		"sqlite":   EmptySQLite(t),
		"postgres": open(t, PostgresURL(t)),
	}
}

// EmptySQLite is Empty's SQLite database alone.
func EmptySQLite(t testing.TB) *sqldb.DB {
	t.Helper()
	return open(t, "sqlite://"+filepath.Join(t.TempDir(), "test.db"))
}

// PostgresURL creates an empty schema for this test, drops it when the test
// finishes, and returns a connection URL whose search_path selects it. Use it
// to test migrations or to hand a URL to code that opens its own connection.
func PostgresURL(t testing.TB) string {
	t.Helper()
	ctx := context.Background()
	base := PostgresBaseURL()
	admin := openAdmin(t, base)

	b := make([]byte, 8)
	rand.Read(b)
	schema := "t_" + hex.EncodeToString(b) // only [0-9a-f]: safe unquoted
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("sqldbtest: create schema: %v", err)
	}
	t.Cleanup(func() {
		if _, err := admin.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("sqldbtest: drop schema %s: %v", schema, err)
		}
	})

	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("sqldbtest: parse %s: %v", sqldb.Redact(base), err)
	}
	q := u.Query()
	q.Set("search_path", schema) // pgx sends unknown parameters as session settings
	u.RawQuery = q.Encode()
	return u.String()
}

func openMigrated(t testing.TB, rawURL string) *sqldb.DB {
	t.Helper()
	db := open(t, rawURL)
	if _, err := db.Migrate(context.Background()); err != nil {
		t.Fatalf("sqldbtest: migrate: %v", err)
	}
	return db
}

func open(t testing.TB, rawURL string) *sqldb.DB {
	t.Helper()
	db, err := sqldb.Open(context.Background(), rawURL)
	if err != nil {
		t.Fatalf("sqldbtest: open: %v", err)
	}
	// Registered after PostgresURL's cleanups, so it runs before the schema
	// is dropped (cleanups run last-in, first-out).
	t.Cleanup(func() { db.Close() })
	return db
}

// PostgresRole creates a login role with the given password and an empty
// schema it may fill, both dropped when the test finishes, and returns a URL
// that names the role and selects the schema but holds no password (for code
// that supplies the password itself), and a func that changes the password,
// as a credential rotation does.
func PostgresRole(t testing.TB, password string) (rawURL string, setPassword func(string)) {
	t.Helper()
	ctx := context.Background()
	base := PostgresBaseURL()
	admin := openAdmin(t, base)
	b := make([]byte, 8)
	rand.Read(b)
	role := "r_" + hex.EncodeToString(b) // only [0-9a-z_]: safe unquoted
	setPassword = func(pw string) {
		t.Helper()
		// ALTER ROLE takes no parameters; quote the literal the SQL way.
		lit := "'" + strings.ReplaceAll(pw, "'", "''") + "'"
		if _, err := admin.ExecContext(ctx, "ALTER ROLE "+role+" PASSWORD "+lit); err != nil {
			t.Fatalf("sqldbtest: set password of %s: %v", role, err)
		}
	}
	if _, err := admin.ExecContext(ctx, "CREATE ROLE "+role+" LOGIN"); err != nil {
		t.Fatalf("sqldbtest: create role (the test role needs CREATEROLE; run scripts/test-deps.sh): %v", err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		// Its sessions first: a role with open connections cannot be dropped.
		admin.ExecContext(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", role)
		if _, err := admin.ExecContext(ctx, "DROP ROLE "+role); err != nil {
			t.Errorf("sqldbtest: drop role %s: %v", role, err)
		}
	})
	setPassword(password)
	schema := "t_" + hex.EncodeToString(b)
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("sqldbtest: create schema: %v", err)
	}
	// Registered after the role's, so it runs first: the role owns the
	// tables in it. The schema's owner may drop what others made inside.
	t.Cleanup(func() {
		if _, err := admin.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("sqldbtest: drop schema %s: %v", schema, err)
		}
	})
	if _, err := admin.ExecContext(ctx, "GRANT ALL ON SCHEMA "+schema+" TO "+role); err != nil {
		t.Fatalf("sqldbtest: grant schema: %v", err)
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("sqldbtest: parse %s: %v", sqldb.Redact(base), err)
	}
	u.User = url.User(role)
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), setPassword
}

// openAdmin connects as the test role, failing the test with the fix when
// the server is unreachable, and closes when the test finishes.
func openAdmin(t testing.TB, base string) *sqldb.DB {
	t.Helper()
	admin, err := sqldb.Open(context.Background(), base)
	if err != nil {
		t.Fatalf("sqldbtest: PostgreSQL unreachable (set TETHER_TEST_POSTGRES_URL or run scripts/test-deps.sh): %v", err)
	}
	t.Cleanup(func() { admin.Close() })
	return admin
}
