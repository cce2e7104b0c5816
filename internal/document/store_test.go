package document_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tetherhq/tether/internal/document"
	"github.com/tetherhq/tether/internal/sqldb"
	"github.com/tetherhq/tether/internal/sqldb/sqldbtest"
)

// The store's suite runs against both databases the service supports.
func TestStore(t *testing.T) {
	for name, open := range map[string]func(testing.TB) *sqldb.DB{
		"sqlite":   sqldbtest.SQLite,
		"postgres": sqldbtest.Postgres,
	} {
		t.Run(name, func(t *testing.T) { runStoreSuite(t, open) })
	}
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func runStoreSuite(t *testing.T, open func(testing.TB) *sqldb.DB) {
	setup := func(t *testing.T) (*document.Store, *clock) {
		c := &clock{t: time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)}
		return document.NewStore(open(t), c.now), c
	}
	ctx := context.Background()

	t.Run("lifecycle", func(t *testing.T) {
		s, c := setup(t)
		id := document.NewID()
		if err := s.Create(ctx, document.NewForTest(id, "a.txt", "text/plain", 12)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Result(ctx, document.TestOwner, id); !errors.Is(err, document.ErrNotFinished) {
			t.Fatalf("Result before finishing: err = %v, want ErrNotFinished", err)
		}
		c.t = c.t.Add(time.Second)
		d, err := s.Start(ctx, id)
		if err != nil || d.Status != document.Processing || d.Attempts != 1 {
			t.Fatalf("Start = %+v, %v", d, err)
		}
		want := document.Result{DocumentID: id, Text: "hello", Summary: "hi", Keywords: []string{"hello"}, Pages: 1, Provider: "local"}
		if err := s.Succeed(ctx, want); err != nil {
			t.Fatal(err)
		}
		// A redelivered job must not restart a finished document.
		if d, err = s.Start(ctx, id); err != nil || d.Status != document.Succeeded || d.Attempts != 1 {
			t.Fatalf("Start after success = %+v, %v; want unchanged", d, err)
		}
		// Storing the same result again is harmless (idempotent by document ID).
		if err := s.Succeed(ctx, want); err != nil {
			t.Fatal(err)
		}
		got, err := s.Result(ctx, document.TestOwner, id)
		if err != nil || got.Text != "hello" || len(got.Keywords) != 1 || got.Keywords[0] != "hello" || got.Pages != 1 {
			t.Fatalf("Result = %+v, %v", got, err)
		}
		if _, err := s.Delete(ctx, document.TestOwner, id); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(ctx, id); !errors.Is(err, document.ErrNotFound) {
			t.Fatalf("Get after delete: %v", err)
		}
		if _, err := s.Delete(ctx, document.TestOwner, id); !errors.Is(err, document.ErrNotFound) {
			t.Fatalf("second Delete: %v, want ErrNotFound", err)
		}
	})

	t.Run("failed documents have no result and stay failed", func(t *testing.T) {
		s, _ := setup(t)
		id := document.NewID()
		if err := s.Create(ctx, document.NewForTest(id, "b.pdf", "application/pdf", 1)); err != nil {
			t.Fatal(err)
		}
		if err := s.Fail(ctx, id, "the document is encrypted"); err != nil {
			t.Fatal(err)
		}
		d, _ := s.Get(ctx, id)
		if d.Status != document.Failed || d.Error != "the document is encrypted" {
			t.Fatalf("after Fail: %+v", d)
		}
		if _, err := s.Result(ctx, document.TestOwner, id); !errors.Is(err, document.ErrNoResult) {
			t.Fatalf("Result of failed: %v", err)
		}
		if err := s.Succeed(ctx, document.Result{DocumentID: id}); err == nil {
			t.Fatal("Succeed on a failed document succeeded")
		}
	})

	t.Run("list pages newest first", func(t *testing.T) {
		s, c := setup(t)
		var ids []string
		for i := 0; i < 7; i++ {
			c.t = c.t.Add(time.Second)
			id := document.NewID()
			ids = append(ids, id)
			if err := s.Create(ctx, document.NewForTest(id, "x.txt", "text/plain", 1)); err != nil {
				t.Fatal(err)
			}
		}
		var seen []string
		cursor := ""
		for pages := 0; ; pages++ {
			docs, next, err := s.List(ctx, document.TestOwner, 3, cursor)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range docs {
				seen = append(seen, d.ID)
			}
			if next == "" {
				break
			}
			if pages > 5 {
				t.Fatal("pagination does not end")
			}
			cursor = next
		}
		if len(seen) != len(ids) {
			t.Fatalf("listed %d documents, want %d", len(seen), len(ids))
		}
		for i := range ids {
			if seen[i] != ids[len(ids)-1-i] {
				t.Fatalf("order: got %v, want newest first of %v", seen, ids)
			}
		}
		if _, _, err := s.List(ctx, document.TestOwner, 3, "garbage!"); !errors.Is(err, document.ErrBadCursor) {
			t.Fatalf("bad cursor: %v", err)
		}
	})

	t.Run("outbox lists only unsent old jobs", func(t *testing.T) {
		s, c := setup(t)
		sent, unsent := document.NewID(), document.NewID()
		for _, id := range []string{sent, unsent} {
			if err := s.Create(ctx, document.NewForTest(id, "x.txt", "text/plain", 1)); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.MarkEnqueued(ctx, sent); err != nil {
			t.Fatal(err)
		}
		if ids, _ := s.Unenqueued(ctx, time.Minute, 10); len(ids) != 0 {
			t.Fatalf("young unsent job listed: %v", ids)
		}
		c.t = c.t.Add(2 * time.Minute)
		ids, err := s.Unenqueued(ctx, time.Minute, 10)
		if err != nil || len(ids) != 1 || ids[0] != unsent {
			t.Fatalf("Unenqueued = %v, %v; want [%s]", ids, err, unsent)
		}
	})

	t.Run("another owner's documents are invisible", func(t *testing.T) {
		s, _ := setup(t)
		id := document.NewID()
		if err := s.Create(ctx, document.NewForTest(id, "a.txt", "text/plain", 1)); err != nil {
			t.Fatal(err)
		}
		const other = "oidc:someone-else"
		if _, err := s.Owned(ctx, other, id); !errors.Is(err, document.ErrNotFound) {
			t.Fatalf("Owned by another: %v, want ErrNotFound", err)
		}
		if _, err := s.Result(ctx, other, id); !errors.Is(err, document.ErrNotFound) {
			t.Fatalf("Result by another: %v, want ErrNotFound", err)
		}
		if docs, _, _ := s.List(ctx, other, 10, ""); len(docs) != 0 {
			t.Fatalf("List by another returned %d documents", len(docs))
		}
		if _, err := s.Delete(ctx, other, id); !errors.Is(err, document.ErrNotFound) {
			t.Fatalf("Delete by another: %v, want ErrNotFound", err)
		}
		if _, err := s.Owned(ctx, document.TestOwner, id); err != nil {
			t.Fatalf("the owner lost the document: %v", err)
		}
	})

	t.Run("abandoned on the last attempt", func(t *testing.T) {
		s, c := setup(t)
		id := document.NewID()
		if err := s.Create(ctx, document.NewForTest(id, "a.pdf", "application/pdf", 1)); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 3; i++ {
			if _, err := s.Start(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
		c.t = c.t.Add(10 * time.Minute)
		// Waiting for the AI provider and going on counts no attempt.
		if err := s.Requeue(ctx, id, "waiting for the AI provider"); err != nil {
			t.Fatal(err)
		}
		if err := s.Resume(ctx, id); err != nil {
			t.Fatal(err)
		}
		if d, _ := s.Get(ctx, id); d.Status != document.Processing || d.Attempts != 3 || d.Error != "" {
			t.Fatalf("after requeue and resume: %+v, want processing with 3 attempts", d)
		}
		if ids, _ := s.Abandoned(ctx, 4, time.Minute, 10); len(ids) != 0 {
			t.Fatalf("a document with attempts left was called abandoned: %v", ids)
		}
		if err := s.Touch(ctx, id); err != nil {
			t.Fatal(err)
		}
		if ids, _ := s.Abandoned(ctx, 3, time.Minute, 10); len(ids) != 0 {
			t.Fatalf("a document its worker just touched was called abandoned: %v", ids)
		}
		c.t = c.t.Add(2 * time.Minute)
		ids, err := s.Abandoned(ctx, 3, time.Minute, 10)
		if err != nil || len(ids) != 1 || ids[0] != id {
			t.Fatalf("Abandoned = %v, %v; want [%s]", ids, err, id)
		}
	})

	t.Run("health reports", func(t *testing.T) {
		s, _ := setup(t)
		if err := s.SetHealth(ctx, "ai_provider", "degraded", "http_503"); err != nil {
			t.Fatal(err)
		}
		if err := s.SetHealth(ctx, "ai_provider", "ok", ""); err != nil {
			t.Fatal(err)
		}
		hs, err := s.Healths(ctx)
		if err != nil || len(hs) != 1 || hs[0].Status != "ok" {
			t.Fatalf("Healths = %+v, %v", hs, err)
		}
	})
}

func TestValidID(t *testing.T) {
	for _, tc := range []struct {
		id   string
		want bool
	}{
		{document.NewID(), true},
		{"doc_0123456789abcdef0123456789", true},
		{"doc_0123456789abcdef012345678", false},   // too short
		{"doc_0123456789abcdef01234567890", false}, // too long
		{"doc_0123456789ABCDEF0123456789", false},  // upper case
		{"../etc/passwd", false},
		{"", false},
	} {
		if got := document.ValidID(tc.id); got != tc.want {
			t.Errorf("ValidID(%q) = %v, want %v", tc.id, got, tc.want)
		}
	}
}
