package ctl_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tetherhq/tether/internal/ctl"
	"github.com/tetherhq/tether/internal/devstack"
	"github.com/tetherhq/tether/internal/document"
	"github.com/tetherhq/tether/internal/queue"
	"github.com/tetherhq/tether/internal/sqldb"
)

// tetherctl jobs runs the local runtime's own docsvc on its data dir: a
// job dead-lettered by the jobs table is listed by ID and reason and comes
// back with redrive, after a confirmation that a "no" refuses.
func TestJobsLocal(t *testing.T) {
	t.Parallel()
	dir := localDataDir(t)
	ctx := context.Background()
	db, err := sqldb.Open(ctx, "sqlite://"+filepath.Join(dir, devstack.DatabaseFile))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	store := document.NewStore(db, time.Now)
	id := document.NewID()
	if err := store.Create(ctx, document.Document{ID: id, Filename: "Board-Minutes-Private.pdf", MediaType: "application/pdf", Size: 3}); err != nil {
		t.Fatal(err)
	}
	if err := store.Fail(ctx, id, "gave up after 1 attempts: AI provider unavailable"); err != nil {
		t.Fatal(err)
	}
	q := queue.NewDB(db, "jobs", queue.DBOptions{MaxReceives: 1})
	if err := q.Send(ctx, []byte(`{"document_id":"`+id+`"}`)); err != nil {
		t.Fatal(err)
	}
	msgs, err := q.Receive(ctx, 1, time.Minute, 0)
	if err != nil || len(msgs) != 1 {
		t.Fatal(msgs, err)
	}
	if err := q.Extend(ctx, msgs[0].ReceiptHandle, 0); err != nil {
		t.Fatal(err)
	}
	if again, err := q.Receive(ctx, 1, time.Minute, 0); err != nil || len(again) != 0 { // dead-letters it
		t.Fatal(again, err)
	}

	runIn := inDataDir(dir)
	out, _, err := runIn("", "jobs", "dead-letters")
	if err != nil || !strings.Contains(out, id) || !strings.Contains(out, "ai_provider_unavailable") || strings.Contains(out, "Board") {
		t.Fatalf("jobs dead-letters = %q, %v; want %s with reason ai_provider_unavailable and no filename", out, err, id)
	}
	if out, _, err := runIn("", "jobs", "dead-letters", "--output", "json"); err != nil || !strings.Contains(out, `"document_id":"`+id+`"`) {
		t.Fatalf("jobs dead-letters --output json = %q, %v", out, err)
	}
	for _, bad := range [][]string{{"jobs", "redrive"}, {"jobs", "redrive", "--all", id}, {"jobs", "redrive", "a/b"}, {"jobs", "dead-letters", "--max", "0"}, {"jobs", "nope"}} {
		if _, _, err := runIn("", bad...); !ctl.IsUsage(err) {
			t.Errorf("tetherctl %s = %v, want a usage error", strings.Join(bad, " "), err)
		}
	}
	_, plan, err := runIn("n\n", "jobs", "redrive", id)
	if err == nil || !strings.Contains(plan, id) {
		t.Fatalf("redrive answered no = %v, plan %q; want a refusal after a plan naming %s", err, plan, id)
	}
	if s, _ := q.Stats(ctx); s.DeadLetter != 1 {
		t.Fatalf("a refused redrive moved the job: %+v", s)
	}
	if _, _, err := runIn("", "jobs", "redrive", document.NewID(), "--yes"); err == nil || errors.Is(err, context.Canceled) {
		t.Fatalf("redrive of an unknown ID: %v", err)
	}
	out, _, err = runIn("y\n", "jobs", "redrive", id)
	if err != nil || !strings.Contains(out, "1 job(s) back on the queue") {
		t.Fatalf("redrive = %q, %v", out, err)
	}
	if d, err := store.Get(ctx, id); err != nil || d.Status != document.Queued {
		t.Fatalf("after redrive the document is %+v, %v; want queued", d, err)
	}
	if s, _ := q.Stats(ctx); s.DeadLetter != 0 || s.Visible != 1 {
		t.Fatalf("after redrive the queue is %+v; want the job visible again", s)
	}
}
