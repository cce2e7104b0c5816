package sqldbtest_test

import (
	"context"
	"testing"

	"github.com/tetherhq/tether/internal/sqldb"
	"github.com/tetherhq/tether/internal/sqldb/sqldbtest"
)

func TestDatabasesAreMigratedAndIsolated(t *testing.T) {
	for name, open := range map[string]func(testing.TB) *sqldb.DB{
		"sqlite":   sqldbtest.SQLite,
		"postgres": sqldbtest.Postgres,
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			a, b := open(t), open(t)
			if _, err := a.ExecContext(ctx, `INSERT INTO jobs (id, queue, body, visible_at, created_at) VALUES ('x', 'q', '{}', 0, 0)`); err != nil {
				t.Fatalf("insert into a migrated table: %v", err)
			}
			var n int
			if err := b.QueryRowContext(ctx, `SELECT COUNT(*) FROM jobs`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != 0 {
				t.Fatalf("second database sees %d rows of the first", n)
			}
		})
	}
}

func TestPostgresSchemaDroppedAtCleanup(t *testing.T) {
	var url string
	t.Run("owner", func(t *testing.T) {
		url = sqldbtest.PostgresURL(t)
		if n := schemasNamedIn(t, url); n != 1 {
			t.Fatalf("%d schemas named in %s exist, want 1", n, url)
		}
	})
	if n := schemasNamedIn(t, url); n != 0 {
		t.Fatalf("schema from %s still exists after its test", url)
	}
}

func schemasNamedIn(t *testing.T, url string) int {
	ctx := context.Background()
	db, err := sqldb.Open(ctx, sqldbtest.PostgresBaseURL())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	err = db.QueryRowContext(ctx, `SELECT COUNT(*) FROM information_schema.schemata WHERE $1 LIKE '%search_path=' || schema_name || '%'`, url).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
