package planestore_test

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetherhq/tether/internal/plane/planestore"
)

func addLicense(t *testing.T, b storeBundle, id, token string) planestore.LicenseRecord {
	t.Helper()
	l := planestore.LicenseRecord{ID: id, Customer: "Acme " + id, IssuedAt: b.clock.Now(),
		ExpiresAt: b.clock.Now().Add(365 * 24 * time.Hour), GraceSeconds: 14 * 86400,
		Channels: []string{"stable", "beta"}, Entitlements: map[string]int64{"max_workers": 8},
		TokenHash: "hash-" + token}
	if err := b.store.AddLicense(b.ctx, l); err != nil {
		t.Fatal(err)
	}
	return l
}

func activate(t *testing.T, b storeBundle, token string) (planestore.Install, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, _ := ed25519.GenerateKey(nil)
	in, err := b.store.Activate(b.ctx, "hash-"+token, pub, "1.3.0", 60*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return in, priv
}

func TestStoreLicensesAndActivation(t *testing.T) {
	forEachDialect(t, func(t *testing.T, b storeBundle) {
		addLicense(t, b, "lic_1", "tok1")
		if err := b.store.AddLicense(b.ctx, planestore.LicenseRecord{ID: "lic_1", TokenHash: "other"}); !errors.Is(err, planestore.ErrExists) {
			t.Fatalf("duplicate license id: err %v, want ErrExists", err)
		}
		if err := b.store.AddLicense(b.ctx, planestore.LicenseRecord{ID: "lic_2", TokenHash: "hash-tok1"}); !errors.Is(err, planestore.ErrExists) {
			t.Fatalf("duplicate token: err %v, want ErrExists", err)
		}
		pub, _, _ := ed25519.GenerateKey(nil)
		if _, err := b.store.Activate(b.ctx, "hash-nope", pub, "1.0.0", time.Minute); !errors.Is(err, planestore.ErrBadToken) {
			t.Fatalf("unknown token: err %v, want ErrBadToken", err)
		}
		in, priv := activate(t, b, "tok1")
		if in.LicenseID != "lic_1" || in.Customer != "Acme lic_1" || in.Health != planestore.HealthUnknown ||
			!priv.Public().(ed25519.PublicKey).Equal(ed25519.PublicKey(in.PublicKey)) || in.IntervalSeconds != 60 {
			t.Fatalf("install = %+v", in)
		}
		if _, err := b.store.Activate(b.ctx, "hash-tok1", pub, "1.0.0", time.Minute); !errors.Is(err, planestore.ErrAlreadyActivated) {
			t.Fatalf("second activation: err %v, want ErrAlreadyActivated", err)
		}
		lics, err := b.store.Licenses(b.ctx)
		if err != nil || len(lics) != 1 || lics[0].ActivatedInstall != in.ID || lics[0].Entitlements["max_workers"] != 8 ||
			len(lics[0].Channels) != 2 {
			t.Fatalf("licenses = %+v, %v", lics, err)
		}
	})
}

func TestStoreActivationRaceUsesTokenOnce(t *testing.T) {
	forEachDialect(t, func(t *testing.T, b storeBundle) {
		addLicense(t, b, "lic_r", "race")
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok := 0
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				pub, _, _ := ed25519.GenerateKey(nil)
				if _, err := b.store.Activate(b.ctx, "hash-race", pub, "1", time.Minute); err == nil {
					mu.Lock()
					ok++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		installs, err := b.store.Installs(b.ctx)
		if ok != 1 || err != nil || len(installs) != 1 {
			t.Fatalf("%d activations succeeded, %d installs (%v); want exactly 1", ok, len(installs), err)
		}
	})
}

func TestStoreKeysAndRevoke(t *testing.T) {
	forEachDialect(t, func(t *testing.T, b storeBundle) {
		addLicense(t, b, "lic_1", "tok1")
		in, priv := activate(t, b, "tok1")
		key, err := b.store.InstallKey(b.ctx, in.ID)
		if err != nil || !key.Equal(priv.Public()) {
			t.Fatalf("InstallKey = %x, %v", key, err)
		}
		if _, err := b.store.InstallKey(b.ctx, "in_missing"); !errors.Is(err, planestore.ErrNotFound) {
			t.Fatalf("unknown install: %v", err)
		}
		if err := b.store.Revoke(b.ctx, in.ID); err != nil {
			t.Fatal(err)
		}
		if err := b.store.Revoke(b.ctx, in.ID); err != nil {
			t.Fatalf("second revoke: %v", err)
		}
		if err := b.store.Revoke(b.ctx, "in_missing"); !errors.Is(err, planestore.ErrNotFound) {
			t.Fatalf("revoke unknown: %v", err)
		}
		if _, err := b.store.InstallKey(b.ctx, in.ID); !errors.Is(err, planestore.ErrRevoked) {
			t.Fatalf("revoked key: %v", err)
		}
		_, err = b.store.RecordHeartbeat(b.ctx, in.ID, planestore.HeartbeatRecord{Health: "ok", Body: json.RawMessage(`{}`)})
		if !errors.Is(err, planestore.ErrRevoked) {
			t.Fatalf("heartbeat from revoked install: %v", err)
		}
		got, _ := b.store.Install(b.ctx, in.ID)
		if !got.Revoked || got.RevokedAt == nil {
			t.Fatalf("install after revoke = %+v", got)
		}
	})
}

func TestStoreNonces(t *testing.T) {
	forEachDialect(t, func(t *testing.T, b storeBundle) {
		until := b.clock.Now().Add(10 * time.Minute)
		steps := []struct {
			install, nonce string
			advance        time.Duration
			want           bool
		}{
			{"in_a", "n1", 0, true},
			{"in_a", "n1", 0, false},               // replay
			{"in_b", "n1", 0, true},                // same nonce, other install
			{"in_a", "n1", 9 * time.Minute, false}, // still inside the window
			{"in_a", "n1", 2 * time.Minute, true},  // expired row is reusable
		}
		for i, st := range steps {
			b.clock.Advance(st.advance)
			fresh, err := b.store.RememberNonce(b.ctx, st.install, st.nonce, until)
			if err != nil || fresh != st.want {
				t.Fatalf("step %d: fresh=%v err=%v, want %v", i, fresh, err, st.want)
			}
			if !fresh && st.want == false {
				continue
			}
			until = b.clock.Now().Add(10 * time.Minute)
		}
		b.clock.Advance(time.Hour)
		n, err := b.store.PruneNonces(b.ctx)
		if err != nil || n != 2 {
			t.Fatalf("pruned %d, %v; want 2", n, err)
		}
	})
}

func TestStoreHeartbeatsHistoryAndAlerts(t *testing.T) {
	forEachDialect(t, func(t *testing.T, b storeBundle) {
		addLicense(t, b, "lic_1", "tok1")
		in, _ := activate(t, b, "tok1")
		healths := []string{"ok", "ok", "degraded", "degraded", "down", "ok", "degraded"}
		for i, h := range healths {
			b.clock.Advance(time.Minute)
			_, err := b.store.RecordHeartbeat(b.ctx, in.ID, planestore.HeartbeatRecord{Version: fmt.Sprintf("1.%d.0", i),
				Channel: "stable", Health: h, LicenseState: "valid", Body: json.RawMessage(fmt.Sprintf(`{"n":%d}`, i))})
			if err != nil {
				t.Fatal(err)
			}
		}
		got, err := b.store.Install(b.ctx, in.ID)
		if err != nil || got.Version != "1.6.0" || got.Health != "degraded" || got.Heartbeats != 7 ||
			!got.LastSeen.Equal(b.clock.Now()) || string(got.LastHeartbeat) != `{"n":6}` {
			t.Fatalf("install = %+v, %v", got, err)
		}
		hist, err := b.store.History(b.ctx, in.ID, 3)
		if err != nil || len(hist) != 3 || hist[0].Seq != 7 || hist[2].Health != "down" {
			t.Fatalf("history = %+v, %v", hist, err)
		}
		alerts, err := b.store.DueAlerts(b.ctx, 10)
		if err != nil {
			t.Fatal(err)
		}
		var vals []string
		for _, a := range alerts {
			vals = append(vals, a.Kind+":"+a.Value)
		}
		// one per transition into degraded/down, not one per heartbeat
		if fmt.Sprint(vals) != "[health:degraded health:down health:degraded]" {
			t.Fatalf("alerts = %v", vals)
		}
	})
}

func TestStoreHistoryIsBounded(t *testing.T) {
	forEachDialect(t, func(t *testing.T, b storeBundle) {
		addLicense(t, b, "lic_1", "tok1")
		in, _ := activate(t, b, "tok1")
		n := planestore.HistoryLimit + 40
		for range n {
			if _, err := b.store.RecordHeartbeat(b.ctx, in.ID, planestore.HeartbeatRecord{Health: "ok", Body: json.RawMessage(`{}`)}); err != nil {
				t.Fatal(err)
			}
		}
		hist, err := b.store.History(b.ctx, in.ID, 10*planestore.HistoryLimit)
		if err != nil || len(hist) > planestore.HistoryLimit+16 || len(hist) < planestore.HistoryLimit {
			t.Fatalf("history holds %d rows (%v); want between %d and %d", len(hist), err, planestore.HistoryLimit, planestore.HistoryLimit+16)
		}
	})
}

func TestStoreStaleOncePerSilence(t *testing.T) {
	forEachDialect(t, func(t *testing.T, b storeBundle) {
		addLicense(t, b, "lic_1", "tok1")
		addLicense(t, b, "lic_2", "tok2")
		quiet, _ := activate(t, b, "tok1")
		busy, _ := activate(t, b, "tok2")
		hb := planestore.HeartbeatRecord{Health: "ok", Body: json.RawMessage(`{}`)}
		b.clock.Advance(2 * time.Minute)
		if ids, _ := b.store.MarkStale(b.ctx, 3); len(ids) != 0 {
			t.Fatalf("stale after 2 intervals: %v", ids)
		}
		b.clock.Advance(90 * time.Second)
		_, _ = b.store.RecordHeartbeat(b.ctx, busy.ID, hb)
		ids, err := b.store.MarkStale(b.ctx, 3)
		if err != nil || len(ids) != 1 || ids[0] != quiet.ID {
			t.Fatalf("MarkStale = %v, %v; want [%s]", ids, err, quiet.ID)
		}
		if ids, _ := b.store.MarkStale(b.ctx, 3); len(ids) != 0 {
			t.Fatalf("second sweep re-flagged %v", ids)
		}
		got, _ := b.store.Install(b.ctx, quiet.ID)
		if !got.Stale {
			t.Fatal("install not flagged stale")
		}
		// a heartbeat clears the flag; the next silence alerts again
		_, _ = b.store.RecordHeartbeat(b.ctx, quiet.ID, hb)
		b.clock.Advance(4 * time.Minute)
		ids, _ = b.store.MarkStale(b.ctx, 3)
		if len(ids) != 2 {
			t.Fatalf("after new silence: %v", ids)
		}
		alerts, _ := b.store.DueAlerts(b.ctx, 10)
		if len(alerts) != 3 {
			t.Fatalf("alerts = %+v; want 3 stale alerts", alerts)
		}
		if err := b.store.AlertSent(b.ctx, alerts[0].ID); err != nil {
			t.Fatal(err)
		}
		if err := b.store.AlertFailed(b.ctx, alerts[1].ID, b.clock.Now().Add(time.Minute), "HTTP 500"); err != nil {
			t.Fatal(err)
		}
		if err := b.store.AlertFailed(b.ctx, alerts[2].ID, time.Time{}, "gave up"); err != nil {
			t.Fatal(err)
		}
		if due, _ := b.store.DueAlerts(b.ctx, 10); len(due) != 0 {
			t.Fatalf("due right after: %+v", due)
		}
		b.clock.Advance(time.Minute)
		due, _ := b.store.DueAlerts(b.ctx, 10)
		if len(due) != 1 || due[0].ID != alerts[1].ID || due[0].Attempts != 1 {
			t.Fatalf("due after backoff: %+v", due)
		}
	})
}

func TestStoreDiagnosticsAndTelemetry(t *testing.T) {
	forEachDialect(t, func(t *testing.T, b storeBundle) {
		addLicense(t, b, "lic_1", "tok1")
		addLicense(t, b, "lic_2", "tok2")
		in, _ := activate(t, b, "tok1")
		other, _ := activate(t, b, "tok2")
		if _, err := b.store.RequestDiagnostic(b.ctx, planestore.NewDiagnosticID(), "in_missing", "x", staffAna); !errors.Is(err, planestore.ErrNotFound) {
			t.Fatalf("request for unknown install: %v", err)
		}
		for _, anon := range []planestore.Principal{{}, {Kind: planestore.KindStaff}, {Name: "ana@vendor.example"}} {
			if _, err := b.store.RequestDiagnostic(b.ctx, planestore.NewDiagnosticID(), in.ID, "x", anon); !errors.Is(err, planestore.ErrNoRequester) {
				t.Fatalf("request by %+v: %v, want ErrNoRequester", anon, err)
			}
		}
		d, err := b.store.RequestDiagnostic(b.ctx, planestore.NewDiagnosticID(), in.ID, "slow queue", staffAna)
		if err != nil {
			t.Fatal(err)
		}
		pending, _ := b.store.Diagnostics(b.ctx, in.ID, planestore.DiagRequested)
		if len(pending) != 1 || pending[0].ID != d.ID || pending[0].RequestedBy != staffAna.Name || pending[0].RequestedByKind != planestore.KindStaff {
			t.Fatalf("pending = %+v", pending)
		}
		if got, _ := b.store.Install(b.ctx, in.ID); got.PendingDiagCount != 1 {
			t.Fatalf("pending count %d", got.PendingDiagCount)
		}
		if n, err := b.store.RecordHeartbeat(b.ctx, in.ID, planestore.HeartbeatRecord{Health: "ok", Body: json.RawMessage(`{}`)}); n != 1 || err != nil {
			t.Fatalf("heartbeat sees %d pending (%v), want 1", n, err)
		}
		if err := b.store.MarkUploaded(b.ctx, d.ID, other.ID, 10, "ab", "f"); !errors.Is(err, planestore.ErrWrongStatus) {
			t.Fatalf("upload by another install: %v", err)
		}
		if err := b.store.MarkUploaded(b.ctx, d.ID, in.ID, 10, "ab", "f.zip"); err != nil {
			t.Fatal(err)
		}
		if err := b.store.MarkUploaded(b.ctx, d.ID, in.ID, 10, "ab", "f.zip"); !errors.Is(err, planestore.ErrWrongStatus) {
			t.Fatalf("second upload: %v", err)
		}
		got, err := b.store.Diagnostic(b.ctx, d.ID)
		if err != nil || got.Status != planestore.DiagUploaded || got.BundleSize != 10 || got.BundlePath != "f.zip" || got.UploadedAt == nil {
			t.Fatalf("diagnostic = %+v, %v", got, err)
		}
		if all, _ := b.store.Diagnostics(b.ctx, "", ""); len(all) != 1 {
			t.Fatalf("all diagnostics = %+v", all)
		}
		if _, err := b.store.Diagnostic(b.ctx, "dg_missing"); !errors.Is(err, planestore.ErrNotFound) {
			t.Fatalf("unknown diagnostic: %v", err)
		}

		for i := range 3 {
			if err := b.store.RecordTelemetry(b.ctx, in.ID, "2026-11-01", json.RawMessage(fmt.Sprintf(`{"documents":%d}`, i))); err != nil {
				t.Fatal(err)
			}
		}
		_ = b.store.RecordTelemetry(b.ctx, in.ID, "2026-11-02", json.RawMessage(`{"documents":9}`))
		days, err := b.store.Telemetry(b.ctx, in.ID)
		if err != nil || len(days) != 2 || days[0].Day != "2026-11-02" || days[1].Reports != 3 || string(days[1].Body) != `{"documents":2}` {
			t.Fatalf("telemetry = %+v, %v", days, err)
		}
	})
}

// Concurrent calls share batches; each caller must still get its own answer.
func TestStoreConcurrentCallsKeepTheirOwnResults(t *testing.T) {
	forEachDialect(t, func(t *testing.T, b storeBundle) {
		until := b.clock.Now().Add(time.Minute)
		var wg sync.WaitGroup
		var mu sync.Mutex
		fresh := map[string]int{}
		for i := range 40 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				nonce := fmt.Sprintf("n%d", i%10) // each nonce sent four times at once
				ok, err := b.store.RememberNonce(b.ctx, "in_a", nonce, until)
				if err != nil {
					t.Error(err)
				}
				if ok {
					mu.Lock()
					fresh[nonce]++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if len(fresh) != 10 {
			t.Fatalf("fresh nonces %v, want each of 10 exactly once", fresh)
		}
		for n, c := range fresh {
			if c != 1 {
				t.Fatalf("nonce %s accepted %d times", n, c)
			}
		}

		var ids []string
		for i := range 5 {
			addLicense(t, b, fmt.Sprintf("lic_%d", i), fmt.Sprintf("tok%d", i))
			in, _ := activate(t, b, fmt.Sprintf("tok%d", i))
			ids = append(ids, in.ID)
		}
		if err := b.store.Revoke(b.ctx, ids[0]); err != nil {
			t.Fatal(err)
		}
		errs := make([]error, 50)
		for i := range 50 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = b.store.RecordHeartbeat(b.ctx, ids[i%5], planestore.HeartbeatRecord{Health: "ok", Body: json.RawMessage(`{}`)})
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if (i%5 == 0) != errors.Is(err, planestore.ErrRevoked) || (i%5 != 0 && err != nil) {
				t.Fatalf("heartbeat %d for install %d: %v", i, i%5, err)
			}
		}
		for _, id := range ids[1:] {
			in, _ := b.store.Install(b.ctx, id)
			hist, _ := b.store.History(b.ctx, id, 100)
			if in.Heartbeats != 10 || len(hist) != 10 || hist[0].Seq != 10 || hist[9].Seq != 1 {
				t.Fatalf("install %s: %d heartbeats, %d history rows", id, in.Heartbeats, len(hist))
			}
		}
	})
}

// The plane keeps the highest ledger head each install reported; a head that
// goes back, changes its hash or vanishes is recorded once as the install's
// ledger problem, alerted once, and freezes the recorded head.
func TestStoreLedgerHead(t *testing.T) {
	h := func(n int) string { return fmt.Sprintf("%064x", n) }
	type beat struct {
		count int64
		hash  string // "" for an agent from before ledger heads
	}
	tests := []struct {
		name        string
		beats       []beat
		wantHead    string
		wantProblem string // substring; "" for none
		wantAlert   string
	}{
		{"old agent", []beat{{}, {}}, "", "", ""},
		{"heads that follow", []beat{{}, {0, strings.Repeat("0", 64)}, {3, h(3)}, {5, h(5)}, {5, h(5)}, {9, h(9)}}, "9:" + h(9), "", ""},
		{"head went back", []beat{{3, h(3)}, {6, h(6)}, {4, h(40)}, {7, h(70)}, {2, h(20)}}, "6:" + h(6), "went back from 6:" + h(6) + " to 4:" + h(40), "ledger:rewound"},
		{"hash changed at a seen count", []beat{{6, h(6)}, {6, h(66)}}, "6:" + h(6), "entry 6's hash changed from " + h(6) + " to " + h(66), "ledger:rewritten"},
		{"head vanished", []beat{{2, h(2)}, {}}, "2:" + h(2), "carried no ledger head after head 2:" + h(2), "ledger:missing"},
	}
	forEachDialect(t, func(t *testing.T, b storeBundle) {
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				tok := fmt.Sprintf("tokl%d", i)
				addLicense(t, b, "lic_l"+fmt.Sprint(i), tok)
				in, _ := activate(t, b, tok)
				for _, bt := range tt.beats {
					if _, err := b.store.RecordHeartbeat(b.ctx, in.ID, planestore.HeartbeatRecord{Health: "ok", Body: json.RawMessage(`{}`),
						LedgerCount: bt.count, LedgerSHA256: bt.hash}); err != nil {
						t.Fatalf("a heartbeat was refused: %v", err)
					}
				}
				got, err := b.store.Install(b.ctx, in.ID)
				if err != nil || got.LedgerHead != tt.wantHead {
					t.Fatalf("ledger head = %q (%v), want %q", got.LedgerHead, err, tt.wantHead)
				}
				if tt.wantProblem == "" && (got.LedgerProblem != "" || got.LedgerProblemAt != nil) ||
					tt.wantProblem != "" && (!strings.Contains(got.LedgerProblem, tt.wantProblem) || got.LedgerProblemAt == nil) {
					t.Fatalf("ledger problem = %q at %v, want one containing %q", got.LedgerProblem, got.LedgerProblemAt, tt.wantProblem)
				}
				alerts, err := b.store.DueAlerts(b.ctx, 100)
				if err != nil {
					t.Fatal(err)
				}
				var mine []string
				for _, a := range alerts {
					if a.InstallID == in.ID {
						mine = append(mine, a.Kind+":"+a.Value)
					}
				}
				if want := strings.Fields(tt.wantAlert); fmt.Sprint(mine) != fmt.Sprint(want) {
					t.Fatalf("alerts = %v, want %v (one, however many heartbeats follow)", mine, want)
				}
			})
		}
	})
}
