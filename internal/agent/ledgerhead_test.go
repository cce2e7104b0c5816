package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tetherhq/tether/internal/ctl"
	"github.com/tetherhq/tether/internal/ledger"
	"github.com/tetherhq/tether/internal/plane"
	"github.com/tetherhq/tether/internal/plane/planecmd"
	"github.com/tetherhq/tether/internal/plane/planestore"
	"github.com/tetherhq/tether/internal/wire"
)

// installOnPlane is the install as the vendor's admin API shows it.
func (b *bundle) installOnPlane(id string) plane.InstallView {
	b.t.Helper()
	status, out := b.plane.Admin(b.t, "GET", "/v1/admin/installs/"+id, nil)
	var d plane.InstallDetail
	if err := json.Unmarshal(out, &d); status != 200 || err != nil {
		b.t.Fatalf("GET /v1/admin/installs/%s: %d %v %s", id, status, err, out)
	}
	return d.Install
}

// verifyLocal runs `tetherctl egress verify --data-dir` with args.
func (b *bundle) verifyLocal(args ...string) (string, error) {
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := ctl.RunEnv(ctx, append([]string{"egress", "verify", "--data-dir", b.cfg.DataDir}, args...), ctl.Env{
		Stdin: strings.NewReader(""), Stdout: &out, Stderr: io.Discard, Getenv: func(string) string { return "" }})
	return out.String(), err
}

// Every heartbeat carries a head the ledger had before the heartbeat's own
// entry; the plane records the highest. A ledger cut short and rewritten,
// head file and all, passes a plain verify, but not verify --expect-head
// with the plane's value, and the plane flags it on the next heartbeat.
func TestLedgerHeadCatchesARewrittenLedger(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.start()
	b.waitHeartbeats(4)
	id := r.Snapshot().InstallID
	// Stop only once a heartbeat has failed at the gate: the agent sends one
	// at a time, so every earlier one has been answered (and stored).
	b.gate.setDown(true)
	waitFor(t, "a heartbeat refused at the gate", func() bool { return r.Snapshot().ConsecutiveFails >= 1 })
	r.stop(t)
	b.gate.setDown(false)

	path := filepath.Join(b.cfg.DataDir, "egress.ledger")
	entries := mustRead(t, path)
	for i, hb := range b.heartbeats() {
		body := b.received("POST", "/v1/heartbeat")[i].Body
		own := -1
		for k, e := range entries {
			if got, _ := e.Bytes(); e.Kind == ledger.KindHeartbeat && bytes.Equal(got, body) {
				own = k
			}
		}
		h := hb.LedgerHead
		if own < 0 || h.Count < 1 || h.Count > int64(own) || entries[h.Count-1].Hash != h.SHA256 {
			t.Fatalf("heartbeat %d (ledger entry %d) carries head %+v, which is not an entry before its own", i, own+1, h)
		}
	}

	// The plane shows the head of the last heartbeat it stored.
	in := b.installOnPlane(id)
	stored, err := wire.Decode[wire.Heartbeat](in.LastHeartbeat)
	if err != nil {
		t.Fatalf("the plane's last heartbeat: %v", err)
	}
	last := stored.LedgerHead
	if hbs := b.heartbeats(); hbs[len(hbs)-1].LedgerHead != last {
		t.Fatalf("plane stored head %+v, but the last heartbeat it received carried %+v", last, hbs[len(hbs)-1].LedgerHead)
	}
	want := strings.Join([]string{itoa(last.Count), last.SHA256}, ":")
	if last.Count < 1 || in.LedgerHead != want || in.LedgerProblem != "" {
		t.Fatalf("plane shows head %q (problem %q), want its last heartbeat's %q", in.LedgerHead, in.LedgerProblem, want)
	}
	if out, err := b.verifyLocal("--expect-head", in.LedgerHead); err != nil || !strings.Contains(out, "reaches the expected head") {
		t.Fatalf("verify --expect-head on the untouched ledger: %v\n%s", err, out)
	}

	// Cut the ledger to its first entry and rewrite the head file to match.
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	first := data[:bytes.IndexByte(data, '\n')+1]
	head, _ := json.Marshal(map[string]any{"seq": entries[0].Seq, "hash": entries[0].Hash})
	if err := os.WriteFile(path, first, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+".head", head, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := b.verifyLocal(); err != nil {
		t.Fatalf("plain verify should not see a resealed cut (the gap --expect-head closes): %v\n%s", err, out)
	}
	_, err = b.verifyLocal("--expect-head", in.LedgerHead)
	if err == nil || !strings.Contains(err.Error(), "the ledger has 1 entries but the expected head is entry "+itoa(last.Count)) {
		t.Fatalf("verify --expect-head after the cut = %v; want it to name the missing entries", err)
	}

	// The agent carries on from the rewritten ledger; its next heartbeat
	// reports a head behind the recorded one.
	before := len(b.heartbeats())
	r = b.start()
	b.waitHeartbeats(before + 1)
	waitFor(t, "the plane to flag the ledger", func() bool { return b.installOnPlane(id).LedgerProblem != "" })
	in2 := b.installOnPlane(id)
	if !strings.Contains(in2.LedgerProblem, "went back from "+in.LedgerHead) || in2.LedgerHead != in.LedgerHead || in2.LedgerProblemAt == nil {
		t.Fatalf("plane after the cut: head %q, problem %q at %v; want the old head kept and the rewind named",
			in2.LedgerHead, in2.LedgerProblem, in2.LedgerProblemAt)
	}
	// Alerts are delivered (and leave DueAlerts) in the background: count the outbox.
	var ledgerAlerts int
	if err := b.plane.Store.DB().QueryRowContext(context.Background(), `SELECT COUNT(*) FROM plane_alerts
		WHERE install_id = $1 AND kind = $2 AND value = 'rewound'`, id, planestore.AlertLedger).Scan(&ledgerAlerts); err != nil || ledgerAlerts != 1 {
		t.Fatalf("plane queued %d ledger alerts (%v), want 1", ledgerAlerts, err)
	}
	var show bytes.Buffer
	if err := planecmd.Run(context.Background(), []string{"installs", "show", id}, planecmd.Env{Stdout: &show, Stderr: io.Discard,
		Getenv: func(k string) string {
			return map[string]string{"TETHER_PLANE_URL": b.plane.URL, "TETHER_ADMIN_TOKEN": b.plane.AdminToken}[k]
		}}); err != nil || !strings.Contains(show.String(), "LEDGER PROBLEM") || !strings.Contains(show.String(), "--expect-head "+in.LedgerHead) {
		t.Fatalf("tether-plane installs show: %v\n%s", err, show.String())
	}

	// Once the rewritten ledger is longer than the recorded head, the count
	// is there but its hash is not.
	waitFor(t, "the rewritten ledger to pass the recorded head", func() bool {
		seq, _, err := r.plane.ledger.Head()
		return err == nil && int64(seq) > last.Count
	})
	r.stop(t)
	_, err = b.verifyLocal("--expect-head", in.LedgerHead)
	if err == nil || !strings.Contains(err.Error(), "rewritten from entry "+itoa(last.Count)) {
		t.Fatalf("verify --expect-head after the rewrite = %v; want it to name entry %d", err, last.Count)
	}
	if b.installOnPlane(id).LedgerHead != in.LedgerHead {
		t.Fatalf("the plane's recorded head moved after the problem")
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
