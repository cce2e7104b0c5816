package planestore_test

import (
	"context"
	"testing"
	"time"

	"github.com/tetherhq/tether/internal/plane/planestore"
	"github.com/tetherhq/tether/internal/sqldb/sqldbtest"
	"github.com/tetherhq/tether/internal/testtime"
)

// clock is the settable test clock every store test shares.
type clock = testtime.Clock

func newClock() *clock { return testtime.NewClock(time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)) }

type storeBundle struct {
	ctx   context.Context
	store *planestore.Store
	clock *clock
}

// forEachDialect runs fn once per database dialect with a fresh store.
func forEachDialect(t *testing.T, fn func(t *testing.T, b storeBundle)) {
	t.Helper()
	for name, db := range sqldbtest.Empty(t) {
		t.Run(name, func(t *testing.T) {
			c := newClock()
			s, err := planestore.Open(context.Background(), db, c.Now)
			if err != nil {
				t.Fatal(err)
			}
			fn(t, storeBundle{ctx: context.Background(), store: s, clock: c})
		})
	}
}
