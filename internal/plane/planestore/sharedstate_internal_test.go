package planestore

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tetherhq/tether/internal/sqldb"
	"github.com/tetherhq/tether/internal/sqldb/sqldbtest"
)

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// replicaPair is two stores (two replicas) on one database and one clock.
type replicaPair struct {
	a, b  *Store
	clock *testClock
}

// twoStores opens a replicaPair on one database of each dialect.
func twoStores(t *testing.T) map[string]replicaPair {
	t.Helper()
	ctx := context.Background()
	urls := map[string]string{
		"sqlite":   "sqlite://" + filepath.Join(t.TempDir(), "p.db"),
		"postgres": sqldbtest.PostgresURL(t),
	}
	out := map[string]replicaPair{}
	for name, u := range urls {
		c := &testClock{t: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)}
		var pair [2]*Store
		for i := range pair {
			db, err := sqldb.Open(ctx, u)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			if pair[i], err = Open(ctx, db, c.now); err != nil {
				t.Fatal(err)
			}
		}
		out[name] = replicaPair{a: pair[0], b: pair[1], clock: c}
	}
	return out
}

func TestLeaseOneHolderAndTakeoverAfterExpiry(t *testing.T) {
	for name, st := range twoStores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			a, b, clock := st.a, st.b, st.clock
			ttl := time.Minute
			err := a.WithLease(ctx, "release-repo", "a", ttl, func(ctx context.Context, held func(context.Context) error) error {
				if err := b.WithLease(ctx, "release-repo", "b", ttl, func(context.Context, func(context.Context) error) error {
					return errors.New("b ran while a held the lease")
				}); !errors.Is(err, ErrLeaseHeld) {
					return err
				}
				if err := held(ctx); err != nil {
					return err
				}
				// a stalls past its lease (its renewals would run every
				// ttl/3 of wall time; the test's clock jumps instead), and b
				// takes over as it would from a replica that died.
				clock.advance(ttl + time.Second)
				if ok, err := b.acquireLease(ctx, "release-repo", "b", ttl); err != nil || !ok {
					t.Errorf("b could not take over the expired lease: %v %v", ok, err)
				}
				if err := held(ctx); !errors.Is(err, ErrLeaseLost) {
					t.Errorf("a's held() after b took over = %v, want ErrLeaseLost", err)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			// a's release did not free b's lease.
			if ok, _ := a.acquireLease(ctx, "release-repo", "a", ttl); ok {
				t.Fatal("a took the lease b holds")
			}
			if err := b.releaseLease(ctx, "release-repo", "b"); err != nil {
				t.Fatal(err)
			}
			if err := a.WithLease(ctx, "release-repo", "a", ttl, func(context.Context, func(context.Context) error) error { return nil }); err != nil {
				t.Fatalf("lease after release: %v", err)
			}
			if err := a.WithLease(ctx, "x", "a", time.Second, nil); err == nil {
				t.Fatal("a one-second lease was accepted; it cannot be renewed in time")
			}
		})
	}
}

func TestRateLimitWindow(t *testing.T) {
	for name, st := range twoStores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			clock := st.clock
			pair := [2]*Store{st.a, st.b}
			for i := range 4 {
				ok, err := pair[i%2].Allow(ctx, "auth:192.0.2.1", 3, time.Minute)
				if err != nil || ok != (i < 3) {
					t.Fatalf("event %d: allow = %v, %v; want %v", i+1, ok, err, i < 3)
				}
			}
			if ok, _ := st.a.Allow(ctx, "auth:192.0.2.2", 3, time.Minute); !ok {
				t.Fatal("another client's bucket was limited")
			}
			clock.advance(time.Minute)
			if ok, err := st.b.Allow(ctx, "auth:192.0.2.1", 3, time.Minute); err != nil || !ok {
				t.Fatalf("new window: allow = %v, %v; want true", ok, err)
			}
			if err := st.a.PruneRateLimits(ctx, time.Second); err != nil {
				t.Fatal(err)
			}
		})
	}
}
