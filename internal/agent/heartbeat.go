package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/tetherhq/tether/internal/agent/collect"
	"github.com/tetherhq/tether/internal/ledger"
	"github.com/tetherhq/tether/internal/wire"
)

// unknownVersion stands in for docsvc's version until /metrics has named
// it: the heartbeat's version field is required and must be semver.
const unknownVersion = "0.0.0"

// After a restart the agent is often up before docsvc. Its first heartbeat
// is held while docsvc is not yet ready, so that a restart does not read on
// the plane as docsvc down at version 0.0.0 (a false alert), but for less
// than the three intervals after which the plane counts an install stale:
// when the grace runs out, whatever docsvc's state is, it is reported.

// startupGrace is how long after starting the agent may hold its first
// heartbeat.
func startupGrace(interval time.Duration) time.Duration { return 2 * interval }

// holdRetry is how soon a held heartbeat is tried again.
func holdRetry(interval time.Duration) time.Duration { return min(interval, 5*time.Second) }

// errHeld says the heartbeat was held back: docsvc is still starting.
var errHeld = errors.New("agent: docsvc not ready yet; first heartbeat held")

// holdFirst reports whether to hold this round's heartbeat: none has been
// sent since the agent started, docsvc has not answered ready with its
// version, and the startup grace has not run out.
func (a *Agent) holdFirst(s collect.Snapshot) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.sentSinceStart {
		return false
	}
	ready := s.ReadyzErr == nil && s.Readyz.Status == "ok" && s.MetricsErr == nil
	return !ready && s.At.Sub(a.startedAt) < startupGrace(a.cfg.Heartbeat)
}

// docsvcChecks are the readyz checks reported as heartbeat components, in
// wire's order.
var docsvcChecks = []string{"worker", "database", "blob", "queue"}

// buildHeartbeat turns one docsvc scrape into the allow-listed heartbeat.
// It only ever copies enumerations and counts; docsvc's free-text details
// are read for the AI provider's kind and nothing else.
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
	hb.Release, hb.LastUpgrade = a.rel.Report()

	// api is docsvc's own answer; the other components come from its checks.
	api := "down"
	if s.ReadyzErr == nil {
		api = s.Readyz.Status
	}
	hb.Components = append(hb.Components, wire.ComponentHealth{Name: "api", Status: api})
	for _, name := range docsvcChecks {
		st := "unknown"
		if c, ok := s.Readyz.Checks[name]; ok && s.ReadyzErr == nil {
			st = c.Status
		}
		hb.Components = append(hb.Components, wire.ComponentHealth{Name: name, Status: st})
	}
	hb.Components = append(hb.Components, wire.ComponentHealth{Name: "agent", Status: "ok"})

	if s.ReadyzErr == nil {
		q := s.Readyz.Queue
		hb.Queue = wire.QueueStats{Depth: q.Visible, InFlight: q.InFlight, DeadLetter: q.DeadLetter, OldestAgeSeconds: q.OldestAgeSeconds}
	}
	hb.AIProvider = a.providerHealth(s)

	if s.MetricsErr == nil {
		m := s.Metrics
		hb.ErrorRate = errorRate(a.prevMetrics, &m)
		a.prevMetrics = &m
		if m.Version != "" {
			a.docsvcVersion = m.Version
		}
		if m.SchemaVersion > 0 {
			a.schemaVersion = m.SchemaVersion
		}
		if m.Documents != nil || m.HasStoredBytes {
			a.objects, a.bytes = m.Objects(), m.StoredBytes
		}
	}
	hb.Versions = wire.Versions{Docsvc: a.docsvcVersion, Agent: Version, Schema: a.schemaVersion}
	hb.Storage.ObjectsBucket, hb.Storage.BytesBucket = wire.StorageBucket(a.objects, a.bytes)
	return hb
}

// providerHealth reads the ai_provider check: its status, and its kind from
// the first word of the detail, matched against wire's allow-list. The kind
// is remembered, because a down docsvc does not say which provider it uses.
// wire has no "unknown" provider status, so an unknown check counts as
// degraded.
func (a *Agent) providerHealth(s collect.Snapshot) wire.ProviderHealth {
	c, ok := s.Readyz.Checks["ai_provider"]
	if !ok || s.ReadyzErr != nil {
		return wire.ProviderHealth{Kind: a.providerKind, Status: "degraded"}
	}
	if kind, _, _ := strings.Cut(c.Detail, " "); wire.KnownProviderKind(kind) {
		a.providerKind = kind
	}
	st := c.Status
	if !wire.KnownProviderStatus(st) {
		st = "degraded"
	}
	return wire.ProviderHealth{Kind: a.providerKind, Status: st}
}

// errorRate is the share of 5xx answers among the requests docsvc served
// since the previous scrape. A counter that went down means docsvc
// restarted, so the current figures are the whole interval.
func errorRate(prev, cur *collect.Metrics) float64 {
	total, bad := cur.RequestsTotal, cur.Requests5xx
	if prev != nil && cur.RequestsTotal >= prev.RequestsTotal && cur.Requests5xx >= prev.Requests5xx {
		total -= prev.RequestsTotal
		bad -= prev.Requests5xx
	}
	if total <= 0 || bad <= 0 {
		return 0
	}
	return min(1, bad/total)
}

// sendHeartbeat validates, ledgers and sends one heartbeat. Its errors are
// *planeError, whose class says why (see failureClass).
func (a *Agent) sendHeartbeat(ctx context.Context, hb wire.Heartbeat) (*wire.HeartbeatResponse, error) {
	// The ledger's head before this heartbeat's own entry, so the plane can
	// keep the highest and notice a ledger cut short (docs/protocol.md).
	seq, hash, err := a.plane.ledger.Head()
	if err != nil {
		return nil, fmt.Errorf("agent: heartbeat: %w", &planeError{class: failLedger, err: err})
	}
	hb.LedgerHead = wire.LedgerHead{Count: int64(seq), SHA256: hash}
	if err := hb.Validate(); err != nil {
		// wire's errors name the field and rule, never the value.
		return nil, fmt.Errorf("agent: heartbeat: %w", &planeError{class: failInvalid, err: err})
	}
	body, err := json.Marshal(hb)
	if err != nil {
		return nil, fmt.Errorf("agent: heartbeat: %w", &planeError{class: failInvalid, err: err})
	}
	status, out, err := a.plane.send(ctx, ledger.KindHeartbeat, "POST", "/v1/heartbeat", body, true)
	if err != nil {
		return nil, fmt.Errorf("agent: heartbeat: %w", err)
	}
	if status != 200 {
		return nil, fmt.Errorf("agent: heartbeat: %w", statusError(status, out))
	}
	resp, err := wire.DecodeHeartbeatResponse(out)
	if err != nil {
		return nil, fmt.Errorf("agent: heartbeat: %w", &planeError{class: failAnswer, err: err})
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
