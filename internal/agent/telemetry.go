package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/tetherhq/tether/internal/agent/collect"
	"github.com/tetherhq/tether/internal/atomicfile"
	"github.com/tetherhq/tether/internal/ledger"
	"github.com/tetherhq/tether/internal/wire"
)

// telemetryState is D/telemetry.json. A day's figures are the growth of
// docsvc's gauges between its first scrape and its last, so the agent
// counts nothing itself and a restart loses nothing.
type telemetryState struct {
	Day           string `json:"day"` // UTC day being counted
	BaseSucceeded int64  `json:"base_succeeded"`
	BaseFailed    int64  `json:"base_failed"`
	LastSucceeded int64  `json:"last_succeeded"`
	LastFailed    int64  `json:"last_failed"`
	LastBytes     int64  `json:"last_bytes"`
	BasePages     int64  `json:"base_pages"`
	LastPages     int64  `json:"last_pages"`
}

// telemetryTick runs after each successful heartbeat when the customer opted
// in. When the UTC day has turned, it sends the finished day's totals once;
// until that send succeeds the day is kept and retried.
func (a *Agent) telemetryTick(ctx context.Context, snap collect.Snapshot) {
	m := snap.Summary.Totals
	if snap.Err != nil || m == nil {
		return // no figures this round; the day's last good ones stand
	}
	today := snap.At.UTC().Format(time.DateOnly)
	path := a.path("telemetry.json")
	var st telemetryState
	if err := atomicfile.ReadJSON(path, &st); err != nil || st.Day == "" {
		st = telemetryState{Day: today, BaseSucceeded: m.Succeeded, BaseFailed: m.Failed, BasePages: m.ResultPages}
	}
	if st.Day != today {
		t := wire.Telemetry{
			Day:                st.Day,
			DocumentsProcessed: max(0, st.LastSucceeded-st.BaseSucceeded),
			DocumentsFailed:    max(0, st.LastFailed-st.BaseFailed),
			Pages:              max(0, st.LastPages-st.BasePages),
		}
		_, t.BytesBucket = wire.StorageBucket(0, st.LastBytes)
		if err := a.sendTelemetry(ctx, t); err != nil {
			a.log.Warn("telemetry not sent; will retry", "day", t.Day, "err", err)
			return
		}
		a.log.Info("telemetry sent", "day", t.Day)
		st = telemetryState{Day: today, BaseSucceeded: st.LastSucceeded, BaseFailed: st.LastFailed, BasePages: st.LastPages}
	}
	st.LastSucceeded, st.LastFailed, st.LastBytes, st.LastPages = m.Succeeded, m.Failed, m.StoredBytes, m.ResultPages
	if err := atomicfile.WriteJSON(path, st, 0o600); err != nil {
		a.log.Warn("save telemetry state", "err", err)
	}
}

func (a *Agent) sendTelemetry(ctx context.Context, t wire.Telemetry) error {
	if err := t.Validate(); err != nil {
		return err
	}
	body, err := json.Marshal(t)
	if err != nil {
		return err
	}
	status, _, err := a.plane.send(ctx, ledger.KindTelemetry, "POST", "/v1/telemetry", body, true)
	if err != nil {
		return err
	}
	if status != 204 && status != 200 {
		return fmt.Errorf("plane answered %d", status)
	}
	return nil
}
