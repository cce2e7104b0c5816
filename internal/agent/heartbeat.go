package agent

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/tetherhq/tether/internal/agent/collect"
	"github.com/tetherhq/tether/internal/atomicfile"
	"github.com/tetherhq/tether/internal/ledger"
	"github.com/tetherhq/tether/internal/wire"
)

// unknownVersion stands in for docsvc's version until its summary has
// named it: the heartbeat's version field is required and must be semver.
const unknownVersion = "0.0.0"

// startupGrace is how long after a restart the first heartbeat may wait
// for docsvc to be ready, so the plane does not see a false "docsvc down at
// 0.0.0"; it is under the three intervals after which the plane counts an
// install stale.
func startupGrace(interval time.Duration) time.Duration { return 2 * interval }

// errHeld says the heartbeat was held back: docsvc is still starting.
var errHeld = errors.New("agent: docsvc not ready yet; first heartbeat held")

// holdFirst reports whether to hold this round's heartbeat: none has been
// sent since the start, docsvc is not ready and the grace has not run out.
func (a *Agent) holdFirst(s collect.Snapshot) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.sentSinceStart {
		return false
	}
	ready := s.Err == nil && s.Summary.Status == "ok"
	return !ready && s.At.Sub(a.startedAt) < startupGrace(a.cfg.Heartbeat)
}

// docsvcChecks are docsvc's checks reported as heartbeat components, in
// wire's order.
var docsvcChecks = []string{"worker", "database", "blob", "queue"}

// buildHeartbeat turns one docsvc scrape into the allow-listed heartbeat:
// enumerations and counts only.
func (a *Agent) buildHeartbeat(s collect.Snapshot) wire.Heartbeat {
	a.mu.Lock()
	defer a.mu.Unlock()
	hb := wire.Heartbeat{
		SentAt:  s.At.UTC(),
		Channel: a.cfg.Channel,
		License: a.licenseStatus(s.At),
		// Only a version go-tuf verified can be here (see checkUpdates).
		AvailableRelease: a.status.AvailableRelease,
	}
	hb.Release, hb.LastUpgrade = a.status.Release, a.status.LastUpgrade

	// api is docsvc's own answer; the other components come from its checks.
	sum, api := s.Summary, "down"
	if s.Err == nil {
		api = sum.Status
	}
	hb.Components = append(hb.Components, wire.ComponentHealth{Name: "api", Status: api})
	for _, name := range docsvcChecks {
		st := sum.Checks[name]
		if st == "" || s.Err != nil {
			st = "unknown"
		}
		hb.Components = append(hb.Components, wire.ComponentHealth{Name: name, Status: st})
	}
	hb.Components = append(hb.Components, wire.ComponentHealth{Name: "agent", Status: "ok"})

	// The provider's kind is remembered, because a down docsvc does not say
	// which it uses. wire has no "unknown" provider status, so an unknown
	// or missing check counts as degraded.
	if sum.AIProvider != "" {
		a.providerKind = sum.AIProvider
	}
	hb.AIProvider = wire.ProviderHealth{Kind: a.providerKind, Status: "degraded"}
	if st := sum.Checks["ai_provider"]; wire.KnownProviderStatus(st) && s.Err == nil {
		hb.AIProvider.Status = st
	}
	if s.Err == nil {
		q := sum.Queue
		hb.Queue = wire.QueueStats{Depth: q.Visible, InFlight: q.InFlight, DeadLetter: q.DeadLetter, OldestAgeSeconds: q.OldestAgeSeconds}
		hb.ErrorRate = errorRate(a.prevSummary, &sum)
		a.prevSummary = &sum
		if sum.Version != "" {
			a.docsvcVersion = sum.Version
		}
		if sum.SchemaVersion > 0 {
			a.schemaVersion = sum.SchemaVersion
		}
		if t := sum.Totals; t != nil {
			a.objects, a.bytes = t.Objects(), t.StoredBytes
		}
	}
	hb.Versions = wire.Versions{Docsvc: a.docsvcVersion, Agent: Version, Schema: a.schemaVersion}
	hb.Storage.ObjectsBucket, hb.Storage.BytesBucket = wire.StorageBucket(a.objects, a.bytes)
	return hb
}

// errorRate is the share of 5xx answers among the requests docsvc served
// since the previous scrape. A count that went down means docsvc
// restarted, so the current figures are the whole interval.
func errorRate(prev, cur *collect.Summary) float64 {
	total, bad := cur.Requests, cur.ServerErrors
	if prev != nil && cur.Requests >= prev.Requests && cur.ServerErrors >= prev.ServerErrors {
		total -= prev.Requests
		bad -= prev.ServerErrors
	}
	if total <= 0 || bad <= 0 {
		return 0
	}
	return min(1, float64(bad)/float64(total))
}

// sendHeartbeat sends one heartbeat; its errors are *planeError.
func (a *Agent) sendHeartbeat(ctx context.Context, hb wire.Heartbeat) (resp wire.HeartbeatResponse, err error) {
	// The ledger's head before this heartbeat's own entry, so the plane can
	// keep the highest and notice a ledger cut short (docs/protocol.md).
	seq, hash, err := a.plane.ledger.Head()
	if err != nil {
		return resp, fmt.Errorf("agent: heartbeat: %w", &planeError{class: failLedger, err: err})
	}
	hb.LedgerHead = wire.LedgerHead{Count: int64(seq), SHA256: hash}
	status, out, err := a.plane.post(ctx, ledger.KindHeartbeat, "/v1/heartbeat", &hb, true)
	if err != nil {
		return resp, fmt.Errorf("agent: heartbeat: %w", err)
	}
	if status != 200 {
		return resp, fmt.Errorf("agent: heartbeat: %w", statusError(status, out))
	}
	resp, err = wire.Decode[wire.HeartbeatResponse](out)
	if err != nil {
		return resp, fmt.Errorf("agent: heartbeat: %w", &planeError{class: failAnswer, err: err})
	}
	return resp, nil
}

// backoff is the wait before retry number n (1-based) after a failure:
// doubling from base up to max, with "equal jitter" (half fixed, half
// random) so a fleet that lost the plane at the same moment does not
// return in lockstep.
func backoff(n int, base, max time.Duration, rnd func() float64) time.Duration {
	d := base
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	d = min(d, max)
	if rnd == nil {
		rnd = rand.Float64
	}
	return d/2 + time.Duration(rnd()*float64(d/2))
}

// warnings names the capacity alarms (wire.WarningNames) now in ALARM, read
// from CloudWatch. Only the fixed names leave, never a value; an unreadable
// state is logged and reported as no warning.
func (a *Agent) warnings(ctx context.Context) []string {
	if a.alarms == nil {
		return nil
	}
	names := wire.WarningNames()
	for i, n := range names {
		names[i] = a.cfg.AlarmPrefix + n
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := a.alarms.DescribeAlarms(cctx, &cloudwatch.DescribeAlarmsInput{AlarmNames: names, StateValue: cwtypes.StateValueAlarm})
	if err != nil {
		a.log.Warn("alarm states unreadable", "err", err)
		return nil
	}
	var firing []string
	for _, al := range out.MetricAlarms {
		n, ok := strings.CutPrefix(aws.ToString(al.AlarmName), a.cfg.AlarmPrefix)
		if ok && al.StateValue == cwtypes.StateValueAlarm && slices.Contains(wire.WarningNames(), n) {
			firing = append(firing, n)
		}
	}
	slices.Sort(firing)
	return slices.Compact(firing)
}

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
	status, out, err := a.plane.post(ctx, ledger.KindTelemetry, "/v1/telemetry", &t, true)
	if err != nil {
		return err
	}
	if status != 204 && status != 200 {
		return statusError(status, out)
	}
	return nil
}
