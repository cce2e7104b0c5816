package sqldb_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tetherhq/tether/internal/sqldb"
)

func TestMigrateSQLiteTwice(t *testing.T) {
	ctx := context.Background()
	db, err := sqldb.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "x.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	n, err := db.Migrate(ctx)
	if err != nil || n == 0 {
		t.Fatalf("first migrate: applied %d, err %v", n, err)
	}
	if n, err = db.Migrate(ctx); err != nil || n != 0 {
		t.Fatalf("second migrate: applied %d, err %v; want 0, nil", n, err)
	}
	cur, latest, err := db.SchemaVersion(ctx)
	if err != nil || cur != latest || cur < 1 {
		t.Fatalf("schema version %d/%d, err %v", cur, latest, err)
	}
}

func TestOpenRejectsBadURLs(t *testing.T) {
	for _, u := range []string{"mysql://x", "sqlite://", "::"} {
		if _, err := sqldb.Open(context.Background(), u); err == nil {
			t.Errorf("Open(%q) succeeded, want error", u)
		}
	}
}

func TestRedactHidesPassword(t *testing.T) {
	got := sqldb.Redact("postgres://app:hunter2@db.internal:5432/docs")
	if strings.Contains(got, "hunter2") || !strings.Contains(got, "db.internal:5432/docs") {
		t.Fatalf("Redact = %q", got)
	}
}

func TestOpenNeverEchoesAPassword(t *testing.T) {
	_, err := sqldb.Open(context.Background(), "postgres://plane:S3cr%zzet@db.internal/plane")
	if err == nil || strings.Contains(err.Error(), "S3cr") {
		t.Fatalf("Open error = %v; want an error without the password", err)
	}
}
