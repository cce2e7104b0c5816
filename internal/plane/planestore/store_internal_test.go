package planestore

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tetherhq/tether/internal/sqldb"
	"github.com/tetherhq/tether/internal/sqldb/sqldbtest"
)

// One batch holding several heartbeats of one install must still record
// every transition and give every heartbeat its own history row. (The
// batcher only forms such batches under load, so this calls the writer
// directly; the dialect-wide suite is in store_test.go.)
func TestRecordHeartbeatsBatchWithRepeats(t *testing.T) {
	ctx := context.Background()
	db, err := sqldb.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "p.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	s, err := Open(ctx, db, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range 2 {
		if err := s.AddLicense(ctx, LicenseRecord{ID: fmt.Sprintf("l%d", i), Customer: "c", IssuedAt: now,
			ExpiresAt: now.Add(time.Hour), Channels: []string{"stable"}, TokenHash: fmt.Sprintf("h%d", i)}); err != nil {
			t.Fatal(err)
		}
		pub, _, _ := ed25519.GenerateKey(nil)
		in, err := s.Activate(ctx, fmt.Sprintf("h%d", i), pub, "1.0.0", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, in.ID)
	}
	hb := func(id, health string) heartbeatItem {
		return heartbeatItem{installID: id, hb: HeartbeatRecord{Version: "1.0.0", Health: health, Body: json.RawMessage(`{}`)}}
	}
	res, err := s.recordHeartbeats(ctx, []heartbeatItem{
		hb(ids[0], "ok"), hb(ids[1], "ok"), hb(ids[0], "down"), hb(ids[0], "ok"), hb("in_ghost", "ok"), hb(ids[0], "degraded"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(res[4].err, ErrNotFound) || res[0].err != nil || res[5].err != nil {
		t.Fatalf("results %+v", res)
	}
	hist, _ := s.History(ctx, ids[0], 10)
	var got []string
	for _, h := range hist {
		got = append(got, fmt.Sprintf("%d:%s", h.Seq, h.Health))
	}
	if fmt.Sprint(got) != "[4:degraded 3:ok 2:down 1:ok]" {
		t.Fatalf("history %v", got)
	}
	in, _ := s.Install(ctx, ids[0])
	if in.Health != "degraded" || in.Heartbeats != 4 {
		t.Fatalf("install %+v", in)
	}
	alerts, _ := s.DueAlerts(ctx, 10)
	var vals []string
	for _, a := range alerts {
		vals = append(vals, a.Value)
	}
	slices.Sort(vals) // both alerts share a timestamp, so their order is the IDs'
	if fmt.Sprint(vals) != "[degraded down]" {
		t.Fatalf("alerts %v", vals)
	}
}

// Several heartbeat writers at once on PostgreSQL (the plane runs one, but a
// second plane process, a revoke or the stale sweep also write these rows):
// without the ordered row locks this deadlocks, or UPDATE ... FROM skips rows
// another transaction changed first and heartbeats are refused as revoked.
func TestRecordHeartbeatsConcurrentWritersOnPostgres(t *testing.T) {
	ctx := context.Background()
	db, err := sqldb.Open(ctx, sqldbtest.PostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s, err := Open(ctx, db, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range 8 {
		_ = s.AddLicense(ctx, LicenseRecord{ID: fmt.Sprintf("l%d", i), Customer: "c", IssuedAt: time.Now(),
			ExpiresAt: time.Now().Add(time.Hour), Channels: []string{"stable"}, TokenHash: fmt.Sprintf("h%d", i)})
		pub, _, _ := ed25519.GenerateKey(nil)
		in, err := s.Activate(ctx, fmt.Sprintf("h%d", i), pub, "1.0.0", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, in.ID)
	}
	const rounds = 150
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				var batch []heartbeatItem
				for _, id := range ids {
					batch = append(batch, heartbeatItem{installID: id, hb: HeartbeatRecord{Version: "1.0.0",
						Health: "ok", Body: json.RawMessage(`{}`)}})
				}
				res, err := s.recordHeartbeats(ctx, batch)
				if err != nil {
					t.Errorf("writer %d round %d: %v", w, r, err)
					return
				}
				for i, x := range res {
					if x.err != nil {
						t.Errorf("writer %d round %d item %d: %v", w, r, i, x.err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	for _, id := range ids {
		in, _ := s.Install(ctx, id)
		if in.Heartbeats != 3*rounds {
			t.Fatalf("install %s counted %d heartbeats, want %d", id, in.Heartbeats, 3*rounds)
		}
	}
}
