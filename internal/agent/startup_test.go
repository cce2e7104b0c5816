package agent

import (
	"log/slog"
	"testing"
	"time"

	"github.com/tetherhq/tether/internal/wire"
)

// A restarted agent that comes up before docsvc holds its first heartbeat
// until docsvc is ready, so the plane never sees a restart as docsvc down
// at version 0.0.0; it does not hold it past the startup grace.
func TestFirstHeartbeatWaitsForDocsvc(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.cfg.Heartbeat = time.Second
	logs := &logBuffer{}
	b.opts.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	b.docsvc.set(func(f *fakeDocsvc) { f.down = true })
	r := b.start()
	waitFor(t, "the first heartbeat to be held", func() bool {
		return len(logs.records("docsvc not ready yet; holding the first heartbeat")) > 0
	})
	b.docsvc.set(func(f *fakeDocsvc) { f.down = false })
	hb := b.waitHeartbeats(1)[0]
	r.mu.Lock()
	waited := hb.SentAt.Sub(r.startedAt)
	r.mu.Unlock()
	if waited >= startupGrace(b.cfg.Heartbeat) {
		t.Skipf("this machine took %v to get docsvc up, past the grace: nothing to check", waited)
	}
	if hb.Components[0] != (wire.ComponentHealth{Name: "api", Status: "ok"}) || hb.Versions.Docsvc != "1.0.0" {
		t.Errorf("first heartbeat after a start reports %+v, version %q; want api ok at 1.0.0", hb.Components[0], hb.Versions.Docsvc)
	}
}

func TestHeldHeartbeatIsSentWhenTheGraceRunsOut(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.cfg.Heartbeat = time.Second
	logs := &logBuffer{}
	b.opts.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	b.docsvc.set(func(f *fakeDocsvc) { f.down = true })
	b.start()
	waitFor(t, "the first heartbeat to be held", func() bool {
		return len(logs.records("docsvc not ready yet; holding the first heartbeat")) > 0
	})
	if n := len(b.heartbeats()); n != 0 {
		t.Fatalf("%d heartbeats sent while docsvc was starting", n)
	}
	b.clock.Advance(startupGrace(b.cfg.Heartbeat))
	hb := b.waitHeartbeats(1)[0]
	if hb.Components[0] != (wire.ComponentHealth{Name: "api", Status: "down"}) {
		t.Errorf("after the grace the heartbeat reports %+v; want api down", hb.Components[0])
	}
}
