package plane

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/tetherhq/tether/internal/sqldb"
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
	s, err := OpenStore(ctx, db, func() time.Time { return now })
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
	if fmt.Sprint(vals) != "[down degraded]" {
		t.Fatalf("alerts %v", vals)
	}
}
