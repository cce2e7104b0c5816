package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tetherhq/tether/internal/releasestate"
	"github.com/tetherhq/tether/internal/wire"
)

// On the local runtime the release record is DATA_DIR/state/releases.json
// (written by the local supervisor); the heartbeat carries its release and
// last attempt with the reason's code, never its text.
func TestHeartbeatCarriesTheLocalReleaseRecord(t *testing.T) {
	b := setup(t)
	at := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	record := `[{"action":"upgrade","from":"1.0.0","to":"1.1.0","from_docsvc_digest":"","from_agent_digest":"","docsvc_digest":"","agent_digest":"",` +
		`"outcome":"rolled-back","code":"alarm","reason":"api 5xx above 5% while uploading q3-invoice-acme.pdf","by":"supervisor","at":"2026-12-01T03:00:00Z"},` +
		`{"action":"upgrade","from":"0.9.0","to":"1.0.0","from_docsvc_digest":"","from_agent_digest":"","docsvc_digest":"","agent_digest":"","outcome":"succeeded","at":"2026-11-01T03:00:00Z"}]`
	path := filepath.Join(b.cfg.DataDir, releasestate.LocalFile)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(record), 0o600); err != nil {
		t.Fatal(err)
	}
	r := b.start()
	hb := b.waitHeartbeats(1)[0]
	want := wire.UpgradeAttempt{Version: "1.1.0", Action: "upgrade", Outcome: "rolled-back", At: at, Reason: "alarm"}
	if hb.Release != "1.0.0" || hb.LastUpgrade != want {
		t.Fatalf("heartbeat release %q, last upgrade %+v; want 1.0.0 and %+v", hb.Release, hb.LastUpgrade, want)
	}
	for _, req := range b.received("POST", "/v1/heartbeat") {
		if strings.Contains(string(req.Body), "invoice") {
			t.Fatalf("the record's free-text reason left the agent: %s", req.Body)
		}
	}
	if st := r.Snapshot(); st.Release != "1.0.0" || st.LastUpgrade != want {
		t.Errorf("status page: %q %+v", st.Release, st.LastUpgrade)
	}
}

// A record the agent cannot parse is reported as nothing, and heartbeats go on.
func TestUnreadableReleaseRecordReportsNothing(t *testing.T) {
	b := setup(t)
	path := filepath.Join(b.cfg.DataDir, releasestate.LocalFile)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(`[{"action":"upgrade","outcome":"fine"}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	b.start()
	if hb := b.waitHeartbeats(2)[1]; hb.Release != "" || hb.LastUpgrade != (wire.UpgradeAttempt{}) {
		t.Fatalf("heartbeat from a bad record: %q %+v", hb.Release, hb.LastUpgrade)
	}
}
