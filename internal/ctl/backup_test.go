package ctl_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tetherhq/tether/internal/blob"
	"github.com/tetherhq/tether/internal/ctl"
	"github.com/tetherhq/tether/internal/devstack"
	"github.com/tetherhq/tether/internal/document"
	"github.com/tetherhq/tether/internal/queue"
	"github.com/tetherhq/tether/internal/sqldb"
)

// tetherctl backup and restore on a local runtime's data dir: a document
// uploaded after the backup is gone after the restore, one from before is
// back, and the restore asks first and refuses a "no".
func TestBackupRestoreLocal(t *testing.T) {
	t.Parallel()
	dir := localDataDir(t)
	ctx := context.Background()
	upload := func(text string) string {
		db, err := sqldb.Open(ctx, "sqlite://"+filepath.Join(dir, devstack.DatabaseFile))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		blobs, err := blob.NewFile(filepath.Join(dir, devstack.BlobDir))
		if err != nil {
			t.Fatal(err)
		}
		u := &document.Uploads{Store: document.NewStore(db, time.Now), Blobs: blobs, Queue: queue.NewDB(db, "jobs", queue.DBOptions{}),
			MaxBytes: 1 << 20, TempDir: t.TempDir(), Log: slog.New(slog.DiscardHandler)}
		d, err := u.Upload(ctx, "owner", "a.txt", strings.NewReader(text))
		if err != nil {
			t.Fatal(err)
		}
		return d.ID
	}
	exists := func(id string) bool {
		_, err := os.Stat(filepath.Join(dir, devstack.BlobDir, "documents", id))
		return err == nil
	}
	runIn := inDataDir(dir)

	before := upload("kept\n")
	backup := filepath.Join(t.TempDir(), "b1")
	if out, _, err := runIn("", "backup", "--out", backup, "--output", "json"); err != nil || !strings.Contains(out, `"documents": 1`) {
		t.Fatalf("backup = %q, %v", out, err)
	}
	after := upload("lost\n")
	for _, bad := range [][]string{{"backup"}, {"restore"}, {"backup", "--out", backup, "extra"}, {"restore", "--from", backup, "--output", "yaml"}} {
		if _, _, err := runIn("", bad...); !ctl.IsUsage(err) {
			t.Errorf("tetherctl %s = %v, want a usage error", strings.Join(bad, " "), err)
		}
	}
	if _, plan, err := runIn("n\n", "restore", "--from", backup); err == nil || !strings.Contains(plan, "1 documents") {
		t.Fatalf("restore answered no = %v, plan %q", err, plan)
	}
	if !exists(after) {
		t.Fatal("a refused restore changed the data")
	}
	out, _, err := runIn("", "restore", "--from", backup, "--yes")
	if err != nil || !strings.Contains(out, "restored 1 documents") {
		t.Fatalf("restore = %q, %v", out, err)
	}
	if !exists(before) || exists(after) {
		t.Fatalf("after restore: document from before the backup present %v, from after %v; want true, false", exists(before), exists(after))
	}
	b, err := os.ReadFile(filepath.Join(dir, devstack.BlobDir, "documents", before))
	if err != nil || string(b) != "kept\n" {
		t.Fatalf("restored document reads %q, %v", b, err)
	}
}
