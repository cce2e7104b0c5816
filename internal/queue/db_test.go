package queue_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherhq/tether/internal/queue"
	"github.com/tetherhq/tether/internal/sqldb"
	"github.com/tetherhq/tether/internal/sqldb/sqldbtest"
	"github.com/tetherhq/tether/internal/testtime"
)

type dbBundle struct {
	ctx   context.Context
	clock *testtime.Clock
	db    *sqldb.DB
	q     *queue.DB
}

func setup(t *testing.T, maxReceives int) *dbBundle {
	t.Helper()
	b := &dbBundle{ctx: context.Background(), clock: testtime.NewClock(time.UnixMilli(1_800_000_000_000)), db: sqldbtest.SQLite(t)}
	b.q = queue.NewDB(b.db, "jobs", queue.DBOptions{MaxReceives: maxReceives, Clock: b.clock.Now})
	return b
}

func (b *dbBundle) receive(t *testing.T, visibility time.Duration) []queue.Message {
	t.Helper()
	msgs, err := b.q.Receive(b.ctx, queue.MaxBatch, visibility, 0)
	if err != nil {
		t.Fatalf("Receive: %v", err)
	}
	return msgs
}

func TestDBSupersededReceiptIsRejected(t *testing.T) {
	t.Parallel()
	b := setup(t, 5)
	if err := b.q.Send(b.ctx, []byte("job")); err != nil {
		t.Fatal(err)
	}
	first := b.receive(t, 10*time.Second)
	b.clock.Advance(11 * time.Second)
	second := b.receive(t, 10*time.Second)
	if len(first) != 1 || len(second) != 1 || second[0].ReceiveCount != 2 {
		t.Fatalf("deliveries %+v then %+v, want one each, the second with ReceiveCount 2", first, second)
	}
	// Unlike SQS, the database queue tells the first receiver it lost the
	// message, so a slow worker learns it should stop.
	if err := b.q.Delete(b.ctx, first[0].ReceiptHandle); !errors.Is(err, queue.ErrReceiptInvalid) {
		t.Errorf("Delete with superseded handle = %v, want ErrReceiptInvalid", err)
	}
	if err := b.q.Delete(b.ctx, second[0].ReceiptHandle); err != nil {
		t.Fatalf("Delete with current handle: %v", err)
	}
	if err := b.q.Delete(b.ctx, second[0].ReceiptHandle); !errors.Is(err, queue.ErrReceiptInvalid) {
		t.Errorf("second Delete = %v, want ErrReceiptInvalid", err)
	}
}

func TestDBExtendAfterVisibilityLapsed(t *testing.T) {
	t.Parallel()
	b := setup(t, 5)
	if err := b.q.Send(b.ctx, []byte("job")); err != nil {
		t.Fatal(err)
	}
	m := b.receive(t, 10*time.Second)[0]
	b.clock.Advance(10 * time.Second)
	if err := b.q.Extend(b.ctx, m.ReceiptHandle, time.Minute); !errors.Is(err, queue.ErrReceiptInvalid) {
		t.Errorf("Extend after the visibility lapsed = %v, want ErrReceiptInvalid", err)
	}
	// Nobody else received it, so the delivery is still the latest and its
	// work may still be acknowledged (SQS behaves the same).
	if err := b.q.Delete(b.ctx, m.ReceiptHandle); err != nil {
		t.Errorf("Delete of a lapsed but not redelivered message: %v", err)
	}
}

func TestDBDeadLetterAndRedrive(t *testing.T) {
	t.Parallel()
	b := setup(t, 3)
	if err := b.q.Send(b.ctx, []byte("poison")); err != nil {
		t.Fatal(err)
	}
	var id string
	for i := 1; i <= 3; i++ {
		msgs := b.receive(t, time.Second)
		if len(msgs) != 1 || msgs[0].ReceiveCount != i {
			t.Fatalf("receive %d: %+v", i, msgs)
		}
		id = msgs[0].ID
		b.clock.Advance(time.Second)
	}
	if msgs := b.receive(t, time.Second); len(msgs) != 0 {
		t.Fatalf("fourth receive delivered %+v, want it dead-lettered", msgs)
	}
	s, err := b.q.Stats(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s != (queue.Stats{DeadLetter: 1}) {
		t.Fatalf("Stats = %+v, want only one dead letter", s)
	}
	dead, err := b.q.DeadLetters(b.ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(dead) != 1 || dead[0].ID != id || dead[0].ReceiveCount != 3 || dead[0].ReceiptHandle != "" {
		t.Fatalf("DeadLetters = %+v", dead)
	}
	if err := b.q.Redrive(b.ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := b.q.Redrive(b.ctx, id); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("second Redrive = %v, want ErrNotFound", err)
	}
	msgs := b.receive(t, time.Second)
	if len(msgs) != 1 || msgs[0].ID != id || msgs[0].ReceiveCount != 1 {
		t.Fatalf("after Redrive received %+v, want %s with ReceiveCount 1", msgs, id)
	}
	if _, err := b.q.DeadLetters(b.ctx, 0); err == nil {
		t.Error("DeadLetters(0) succeeded")
	}
}

func TestDBStatsAge(t *testing.T) {
	t.Parallel()
	b := setup(t, 5)
	if err := b.q.Send(b.ctx, []byte("a")); err != nil {
		t.Fatal(err)
	}
	b.clock.Advance(30 * time.Second)
	if err := b.q.Send(b.ctx, []byte("b")); err != nil {
		t.Fatal(err)
	}
	b.clock.Advance(60 * time.Second)
	if got := len(b.receive(t, time.Minute)); got != 2 {
		t.Fatalf("received %d, want 2", got)
	}
	s, err := b.q.Stats(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := queue.Stats{InFlight: 2, OldestAge: 90 * time.Second}
	if s != want {
		t.Fatalf("Stats = %+v, want %+v", s, want)
	}
}

func TestDBQueuesAreSeparate(t *testing.T) {
	t.Parallel()
	b := setup(t, 5)
	other := queue.NewDB(b.db, "other", queue.DBOptions{Clock: b.clock.Now})
	if err := other.Send(b.ctx, []byte("for other")); err != nil {
		t.Fatal(err)
	}
	if msgs := b.receive(t, time.Second); len(msgs) != 0 {
		t.Fatalf("queue jobs received %q from queue other", msgs[0].Body)
	}
	if s, _ := b.q.Stats(b.ctx); s != (queue.Stats{}) {
		t.Errorf("jobs Stats = %+v, want empty", s)
	}
	msgs, err := other.Receive(b.ctx, 1, time.Second, 0)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("other.Receive = %v, %v", msgs, err)
	}
	// A handle from one queue means nothing to another.
	if err := b.q.Delete(b.ctx, msgs[0].ReceiptHandle); !errors.Is(err, queue.ErrReceiptInvalid) {
		t.Errorf("Delete through the wrong queue = %v, want ErrReceiptInvalid", err)
	}
}

func TestDBReceiveStopsWhenCanceled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	// Each look at the table reads the clock once: cancel on the second
	// look, when the receive is certainly in its wait.
	var looks atomic.Int32
	clock := func() time.Time {
		if looks.Add(1) == 2 {
			cancel()
		}
		return time.UnixMilli(1_800_000_000_000)
	}
	q := queue.NewDB(sqldbtest.SQLite(t), "jobs", queue.DBOptions{Clock: clock, PollInterval: time.Millisecond})
	_, err := q.Receive(ctx, 1, time.Second, queue.MaxWait)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Receive = %v, want context.Canceled", err)
	}
}

// TestDBSQLiteSharedFile runs receivers through two separate connection
// pools on one SQLite file, as the api and worker processes do.
func TestDBSQLiteSharedFile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := "sqlite://" + filepath.Join(t.TempDir(), "shared.db")
	var dbs []*sqldb.DB
	for range 2 {
		db, err := sqldb.Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		if _, err := db.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		dbs = append(dbs, db)
	}
	const n = 40
	sender := queue.NewDB(dbs[0], "jobs", queue.DBOptions{})
	for i := range n {
		if err := sender.Send(ctx, []byte(fmt.Sprintf("m%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	var errs []error
	for i := range 4 {
		q := queue.NewDB(dbs[i%2], "jobs", queue.DBOptions{PollInterval: 10 * time.Millisecond})
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				msgs, err := q.Receive(ctx, 3, time.Minute, 200*time.Millisecond)
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
				if len(msgs) == 0 {
					return
				}
				mu.Lock()
				for _, m := range msgs {
					seen[m.ID]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("Receive: %v", errors.Join(errs...))
	}
	if len(seen) != n {
		t.Fatalf("got %d distinct messages, want %d", len(seen), n)
	}
	for id, c := range seen {
		if c != 1 {
			t.Errorf("message %s delivered %d times", id, c)
		}
	}
}
