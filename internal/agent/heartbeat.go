package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/tetherhq/tether/internal/agent/collect"
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

// holdRetry is how soon a held heartbeat is tried again.
func holdRetry(interval time.Duration) time.Duration { return min(interval, 5*time.Second) }

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

// sendHeartbeat validates, ledgers and sends one heartbeat; its errors are
// *planeError.
func (a *Agent) sendHeartbeat(ctx context.Context, hb wire.Heartbeat) (resp wire.HeartbeatResponse, err error) {
	// The ledger's head before this heartbeat's own entry, so the plane can
	// keep the highest and notice a ledger cut short (docs/protocol.md).
	seq, hash, err := a.plane.ledger.Head()
	if err != nil {
		return resp, fmt.Errorf("agent: heartbeat: %w", &planeError{class: failLedger, err: err})
	}
	hb.LedgerHead = wire.LedgerHead{Count: int64(seq), SHA256: hash}
	if err := hb.Validate(); err != nil {
		// wire's errors name the field and rule, never the value.
		return resp, fmt.Errorf("agent: heartbeat: %w", &planeError{class: failInvalid, err: err})
	}
	body, err := json.Marshal(hb)
	if err != nil {
		return resp, fmt.Errorf("agent: heartbeat: %w", &planeError{class: failInvalid, err: err})
	}
	status, out, err := a.plane.send(ctx, ledger.KindHeartbeat, "POST", "/v1/heartbeat", body, true)
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
