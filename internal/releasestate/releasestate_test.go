package releasestate_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tetherhq/tether/internal/releasestate"
	"github.com/tetherhq/tether/internal/wire"
)

var t0 = time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)

func digest(c string) string { return "sha256:" + strings.Repeat(c, 64) }

// carried validates a report inside an otherwise valid heartbeat.
func carried(rel string, last wire.UpgradeAttempt) error {
	hb := wire.Heartbeat{SentAt: t0, Versions: wire.Versions{Docsvc: "1.5.0", Agent: "1.5.0"}, Channel: "stable",
		AIProvider: wire.ProviderHealth{Kind: "local", Status: "ok"}, License: wire.LicenseStatus{State: "missing"},
		Storage: wire.StorageTotals{ObjectsBucket: "0", BytesBucket: "<1GB"}, Release: rel, LastUpgrade: last}
	return hb.Validate()
}

func TestReport(t *testing.T) {
	up := releasestate.Outcome{Action: "upgrade", From: "1.4.0", To: "1.5.0", DocsvcDigest: digest("a"), Outcome: "succeeded", At: t0}
	staged := releasestate.Outcome{Action: "upgrade", From: "1.5.0", To: "1.6.0", Outcome: "staged", At: t0.Add(time.Hour)}
	back := releasestate.Outcome{Action: "upgrade", From: "1.5.0", To: "1.6.0", Outcome: "rolled-back", Code: "alarm",
		Reason: "alarm tether-acme-5xx is in ALARM: documents of ACME", At: t0.Add(2 * time.Hour)}
	failedOld := releasestate.Outcome{Action: "upgrade", From: "1.5.0", To: "1.6.0", Outcome: "failed", Reason: "migration: exit 1", At: t0.Add(3 * time.Hour)}
	for _, tt := range []struct {
		name        string
		h           []releasestate.Outcome
		wantRelease string
		want        wire.UpgradeAttempt
	}{
		{"nothing recorded", nil, "", wire.UpgradeAttempt{}},
		{"succeeded", []releasestate.Outcome{up}, "1.5.0", wire.UpgradeAttempt{Version: "1.5.0", Action: "upgrade", Outcome: "succeeded", At: t0}},
		{"staged changes nothing that runs", []releasestate.Outcome{staged, up}, "1.5.0", wire.UpgradeAttempt{Version: "1.6.0", Action: "upgrade", Outcome: "staged", At: staged.At}},
		{"rolled back: the code, never the text", []releasestate.Outcome{back, staged, up}, "1.5.0",
			wire.UpgradeAttempt{Version: "1.6.0", Action: "upgrade", Outcome: "rolled-back", At: back.At, Reason: "alarm"}},
		{"failed without a code", []releasestate.Outcome{failedOld}, "1.5.0",
			wire.UpgradeAttempt{Version: "1.6.0", Action: "upgrade", Outcome: "failed", At: failedOld.At, Reason: "unknown"}},
		{"a version the wire does not carry", []releasestate.Outcome{{Action: "rollback", To: "the previous images", Outcome: "succeeded", At: t0}}, "",
			wire.UpgradeAttempt{Action: "rollback", Outcome: "succeeded", At: t0}},
	} {
		rel, last := releasestate.Report(tt.h)
		if rel != tt.wantRelease || last != tt.want {
			t.Errorf("%s: Report = %q, %+v; want %q, %+v", tt.name, rel, last, tt.wantRelease, tt.want)
		}
		if err := carried(rel, last); err != nil {
			t.Errorf("%s: the report does not validate: %v", tt.name, err)
		}
	}
}

func TestParseAndPrepend(t *testing.T) {
	var h []releasestate.Outcome
	for i := range releasestate.Max + 2 {
		h = releasestate.Prepend(h, releasestate.Outcome{Action: "upgrade", To: fmt.Sprintf("1.0.%d", i), Outcome: "succeeded", By: "agent", At: t0})
	}
	data, _ := json.Marshal(h)
	got, err := releasestate.Parse("releases.json", data)
	if err != nil || len(got) != releasestate.Max || got[0].To != fmt.Sprintf("1.0.%d", releasestate.Max+1) {
		t.Fatalf("Parse: %d outcomes, %v", len(got), err)
	}
	for _, bad := range []string{
		`{}`, `[{"action":"upgrade","outcome":"succeeded","at":"2026-12-01T00:00:00Z","extra":1}]`,
		`[{"action":"downgrade","outcome":"succeeded","at":"2026-12-01T00:00:00Z"}]`,
		`[{"action":"upgrade","outcome":"failed","code":"it broke","at":"2026-12-01T00:00:00Z"}]`,
		`[{"action":"upgrade","outcome":"succeeded","docsvc_digest":"latest","at":"2026-12-01T00:00:00Z"}]`,
		`[{"action":"upgrade","outcome":"succeeded"}]`,
		`[] []`,
	} {
		if _, err := releasestate.Parse("releases.json", []byte(bad)); err == nil || !strings.Contains(err.Error(), "releases.json") || !strings.Contains(err.Error(), "delete it") {
			t.Errorf("Parse(%s) = %v, want an error naming the file and the fix", bad, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`[]`))
	f.Add([]byte(`[{"action":"rollback","outcome":"rolled-back","code":"alarm","docsvc_digest":"` + digest("a") + `","at":"2026-12-01T00:00:00Z"}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := releasestate.Parse("p", data)
		if err != nil {
			return
		}
		for _, o := range h {
			if !slices.Contains(wire.UpgradeOutcomes, o.Outcome) || o.Code != "" && !slices.Contains(wire.UpgradeReasons, o.Code) {
				t.Fatalf("accepted %+v", o)
			}
		}
		// Whatever is accepted reports something the heartbeat carries.
		rel, last := releasestate.Report(h)
		if err := carried(rel, last); err != nil {
			t.Fatalf("report %q %+v does not validate: %v", rel, last, err)
		}
	})
}
