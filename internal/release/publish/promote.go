package publish

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tetherhq/tether/internal/release"
)

// ErrRevoked is returned when promoting a release that was revoked on
// either channel.
var ErrRevoked = errors.New("revoked")

// ErrOlder is returned when promoting a release older than the target
// channel's newest without PromoteOptions.AllowOlder.
var ErrOlder = errors.New("older than the channel's newest release")

// PromoteOptions says which release goes from which channel to which.
type PromoteOptions struct {
	Version  string
	From, To string
	// AllowOlder promotes a version older than To's newest live release
	// (agents already past it never see it; newer installs may take it).
	AllowOlder bool
}

// Promote publishes a release of one channel on another: the same
// artifacts (copied and checked against From's signed hashes) and a
// manifest that differs only in its channel and publication time, signed
// into To's targets, snapshot and timestamp with the online keys, exactly
// as Publish would. It refuses a version that is not live on From, that To
// already has or revoked, and one older than To's newest unless AllowOlder.
func Promote(ctx context.Context, repoDir, keysDir string, o PromoteOptions, now time.Time) (release.Manifest, error) {
	fail := func(err error) (release.Manifest, error) {
		return release.Manifest{}, fmt.Errorf("promote %s from %s to %s: %w", o.Version, o.From, o.To, err)
	}
	v, err := release.ParseVersion(o.Version)
	if err != nil {
		return fail(err)
	}
	for _, ch := range []string{o.From, o.To} {
		if err := release.ValidateChannel(ch); err != nil {
			return fail(err)
		}
	}
	if o.From == o.To {
		return fail(fmt.Errorf("the two channels are the same: %w", release.ErrInvalid))
	}
	k, err := loadOnlineKeys(keysDir)
	if err != nil {
		return fail(fmt.Errorf("keys: %w", err))
	}
	// The source is only read; its versioned files are never rewritten, so
	// it needs no lock.
	src, err := loadRepo(repoDir, o.From)
	if err != nil {
		return fail(err)
	}
	mt := release.ManifestTarget(o.Version)
	tf, ok := src.targets.Signed.Targets[mt]
	if !ok {
		if revoked(src.dir, o.Version) {
			return fail(fmt.Errorf("it was revoked on %s: %w", o.From, ErrRevoked))
		}
		return fail(fmt.Errorf("%s has no release %s (see release list): %w", o.From, o.Version, ErrNotFound))
	}
	tf.Path = mt
	m, err := src.readManifest(tf)
	if err != nil {
		return fail(err)
	}

	dir, _ := channelDir(repoDir, o.To)
	unlock, err := lockChannel(dir)
	if err != nil {
		return fail(fmt.Errorf("lock channel: %w", err))
	}
	defer unlock()
	dst, err := openRepo(repoDir, o.To)
	if err != nil {
		return fail(err)
	}
	if _, ok := dst.targets.Signed.Targets[mt]; ok {
		return fail(fmt.Errorf("%s already has it: %w", o.To, ErrExists))
	}
	if revoked(dir, o.Version) {
		return fail(fmt.Errorf("it was revoked on %s, and versions are never reused: %w", o.To, ErrRevoked))
	}
	if name, newest, ok := newestVersion(dst); ok && newest.Compare(v) > 0 && !o.AllowOlder {
		return fail(fmt.Errorf("%s already has %s; pass --allow-older to promote it anyway: %w", o.To, name, ErrOlder))
	}

	for name, a := range m.Artifacts {
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		stf, ok := src.targets.Signed.Targets[a.Target]
		if !ok {
			return fail(fmt.Errorf("artifact %s is not among %s's signed targets: %w", name, o.From, release.ErrInvalid))
		}
		sha, err := targetSHA256(stf)
		if err != nil {
			return fail(err)
		}
		copied, err := copyTarget(dir, a.Target, targetDiskPath(src.dir, a.Target, sha))
		if err != nil {
			return fail(fmt.Errorf("artifact %s: %w", name, err))
		}
		if copied.Length != stf.Length || !copied.Hashes.Equal(stf.Hashes) {
			return fail(fmt.Errorf("artifact %s on disk does not match %s's signed hash: %w", name, o.From, release.ErrInvalid))
		}
		dst.targets.Signed.Targets[a.Target] = copied
	}
	m.Channel = o.To
	m.PublishedAt = now.UTC().Truncate(time.Second)
	if err := dst.addManifest(m); err != nil {
		return fail(err)
	}
	if err := dst.commit(k, now, true, true); err != nil {
		return fail(err)
	}
	return m, nil
}

// revoked reports whether the channel in dir has a revocation record for
// version.
func revoked(dir, version string) bool {
	_, err := os.Stat(filepath.Join(dir, revokedDir, version+".json"))
	return err == nil
}

// newestVersion is the newest live release in r's targets; ok is false
// when there is none.
func newestVersion(r *channelRepo) (name string, newest release.Version, ok bool) {
	for p := range r.targets.Signed.Targets {
		s, isManifest := strings.CutPrefix(p, "releases/")
		if !isManifest {
			continue
		}
		s, _ = strings.CutSuffix(s, ".json")
		if v, err := release.ParseVersion(s); err == nil && (!ok || v.Compare(newest) > 0) {
			name, newest, ok = s, v, true
		}
	}
	return name, newest, ok
}
