package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/tetherhq/tether/internal/releasestate"
	"github.com/tetherhq/tether/internal/updater"
)

// initUpdater installs the trusted root on first start and builds the TUF
// client. After a root rotation go-tuf keeps the newer root in D/tuf, so the
// install-time root is installed only when D/tuf has none.
func (a *Agent) initUpdater() error {
	dir := a.path("tuf")
	if _, err := os.Stat(a.path("tuf", "root.json")); errors.Is(err, fs.ErrNotExist) {
		root, err := inlineOrFile(a.cfg.TrustedRoot)
		if err != nil {
			return fmt.Errorf("agent: read trusted root: %w", err)
		}
		if err := updater.Init(dir, root); err != nil {
			return fmt.Errorf("agent: %w", err)
		}
	}
	base := strings.TrimRight(a.cfg.PlaneURL, "/") + "/v1/tuf/" + a.cfg.Channel
	c, err := updater.New(updater.Config{
		MetadataDir:       dir,
		RemoteMetadataURL: base + "/metadata",
		RemoteTargetsURL:  base + "/targets",
		HTTPClient:        a.opts.HTTPClient,
		Sign:              a.plane.signTUF,
		Now:               a.now,
		Channel:           a.cfg.Channel,
	})
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	a.upd = c
	return nil
}

// refreshReleases reads the release record (internal/releasestate), from
// SSM on AWS or else the data directory, for the heartbeat and status; an
// unreadable record keeps the previous report. The agent only reads it.
func (a *Agent) refreshReleases(ctx context.Context) {
	h, err := releasestate.Read(ctx, a.ssm, a.cfg.ReleaseRecord, a.path(releasestate.LocalFile))
	if err != nil {
		a.log.Warn("release record unreadable", "err", err)
		return
	}
	rel, last := releasestate.Report(h)
	a.mu.Lock()
	a.status.Release, a.status.LastUpgrade = rel, last
	a.mu.Unlock()
}

// checkUpdates reports the newest verified release that applies to what
// runs now; it only reports it.
func (a *Agent) checkUpdates(ctx context.Context) {
	a.mu.Lock()
	current := a.docsvcVersion
	a.mu.Unlock()
	if current == unknownVersion {
		current = Version
	}
	// release.ParseVersion takes only the wire's version grammar, so a
	// verified release's version is one the heartbeat can carry.
	m, ok, err := a.upd.Latest(ctx, current)
	var available string
	if ok {
		available = m.Version
	}
	a.mu.Lock()
	a.status.ReleaseCheckedAt = a.now().UTC()
	a.status.ReleaseCheckError = ""
	if err != nil {
		a.status.ReleaseCheckError = err.Error()
	} else {
		a.status.AvailableRelease = available
	}
	a.mu.Unlock()
	switch {
	case err != nil:
		a.log.Warn("release check failed", "err", err)
	case available != "":
		a.log.Info("release available", "version", available, "current", current, "channel", a.cfg.Channel)
	default:
		a.log.Info("release check: up to date", "current", current, "channel", a.cfg.Channel)
	}
}
