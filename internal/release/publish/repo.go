package publish

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tetherhq/tether/internal/atomicfile"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/tetherhq/tether/internal/release"
)

// Directory layout of one channel's repository under repoDir/<channel>/.
// metadata/ and targets/ are served to agents as they are; revoked/ and the
// lock file are the vendor's own and must not be served.
const (
	metadataDir = "metadata"
	targetsDir  = "targets"
	revokedDir  = "revoked"
	lockFile    = ".lock"
)

// PublishOptions describes a release to publish.
type PublishOptions struct {
	Version   string
	Channel   string
	Artifacts map[string]string // artifact name -> local file path
	Images    map[string]string // component -> repo@sha256:...
	MinFrom   string
	SchemaMin int64
	SchemaMax int64
	Notes     string
}

// channelRepo is the current signed state of one channel, read from disk.
type channelRepo struct {
	dir       string
	channel   string
	targets   *metadata.Metadata[metadata.TargetsType]
	snapshot  *metadata.Metadata[metadata.SnapshotType]
	timestamp *metadata.Metadata[metadata.TimestampType]
}

func channelDir(repoDir, channel string) (string, error) {
	if err := release.ValidateChannel(channel); err != nil {
		return "", err
	}
	return filepath.Join(repoDir, channel), nil
}

// RepoFile resolves a file the plane serves at /v1/tuf/{channel}/{area}/{name}
// to its path on disk, refusing anything that could escape the channel's
// metadata/ or targets/ directory (.., absolute paths, hidden segments).
// Target names contain "/" (releases/<sha>.<version>.json), so the plane's
// route needs a {name...} wildcard for targets.
func RepoFile(repoDir, channel, area, name string) (string, error) {
	dir, err := channelDir(repoDir, channel)
	if err != nil {
		return "", fmt.Errorf("repo file: %w", err)
	}
	if area != metadataDir && area != targetsDir {
		return "", fmt.Errorf("repo file: area must be metadata or targets: %w", release.ErrInvalid)
	}
	if name == "" || len(name) > 512 || strings.ContainsAny(name, "\\\x00") || path.Clean(name) != name || path.IsAbs(name) {
		return "", fmt.Errorf("repo file: bad name: %w", release.ErrInvalid)
	}
	for _, seg := range strings.Split(name, "/") {
		if seg == "" || strings.HasPrefix(seg, ".") {
			return "", fmt.Errorf("repo file: bad name: %w", release.ErrInvalid)
		}
	}
	if area == metadataDir && strings.Contains(name, "/") {
		return "", fmt.Errorf("repo file: bad name: %w", release.ErrInvalid)
	}
	return filepath.Join(dir, area, filepath.FromSlash(name)), nil
}

// lockChannel takes an exclusive advisory lock on a channel so a periodic
// Refresh and an operator's Publish cannot interleave their versions.
func lockChannel(dir string) (unlock func(), err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// loadRepo reads the channel's current state by following timestamp.json to
// the snapshot and targets versions it names. Versioned files are never
// rewritten, so this is consistent even while another process publishes.
func loadRepo(repoDir, channel string) (*channelRepo, error) {
	dir, err := channelDir(repoDir, channel)
	if err != nil {
		return nil, err
	}
	r := &channelRepo{dir: dir, channel: channel}
	md := filepath.Join(dir, metadataDir)
	ts, err := metadata.Timestamp().FromFile(filepath.Join(md, "timestamp.json"))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("channel %s: %w", channel, ErrNotFound)
		}
		return nil, fmt.Errorf("channel %s: read timestamp: %w", channel, err)
	}
	r.timestamp = ts
	sm, ok := ts.Signed.Meta["snapshot.json"]
	if !ok {
		return nil, fmt.Errorf("channel %s: timestamp names no snapshot: %w", channel, release.ErrInvalid)
	}
	if r.snapshot, err = metadata.Snapshot().FromFile(filepath.Join(md, strconv.FormatInt(sm.Version, 10)+".snapshot.json")); err != nil {
		return nil, fmt.Errorf("channel %s: read snapshot: %w", channel, err)
	}
	tm, ok := r.snapshot.Signed.Meta["targets.json"]
	if !ok {
		return nil, fmt.Errorf("channel %s: snapshot names no targets: %w", channel, release.ErrInvalid)
	}
	if r.targets, err = metadata.Targets().FromFile(filepath.Join(md, strconv.FormatInt(tm.Version, 10)+".targets.json")); err != nil {
		return nil, fmt.Errorf("channel %s: read targets: %w", channel, err)
	}
	return r, nil
}

// openRepo loads a channel for writing, creating an empty one (version 0 of
// every role, committed later as version 1) if the channel is new.
func openRepo(repoDir, channel string) (*channelRepo, error) {
	r, err := loadRepo(repoDir, channel)
	if err == nil || !errors.Is(err, ErrNotFound) {
		return r, err
	}
	dir, _ := channelDir(repoDir, channel)
	r = &channelRepo{
		dir:       dir,
		channel:   channel,
		targets:   metadata.Targets(),
		snapshot:  metadata.Snapshot(),
		timestamp: metadata.Timestamp(),
	}
	r.targets.Signed.Version, r.snapshot.Signed.Version, r.timestamp.Signed.Version = 0, 0, 0
	return r, nil
}

// commit signs and writes new versions: targets (if changed), then snapshot,
// then timestamp last, each file complete before the one that names it, so a
// client never sees metadata pointing at a file that is not there yet.
func (r *channelRepo) commit(k *onlineKeys, now time.Time, bumpTargets, bumpSnapshot bool) error {
	now = now.UTC().Truncate(time.Second)
	md := filepath.Join(r.dir, metadataDir)
	if err := os.MkdirAll(md, 0o755); err != nil {
		return err
	}
	if err := r.installRoot(k.rootJSON); err != nil {
		return err
	}
	if bumpTargets && k.targets == nil {
		return fmt.Errorf("channel %s: targets metadata needs signing and %s is not in the keys directory; run this on the release machine: %w", r.channel, targetsKeyFile, ErrNotFound)
	}
	if bumpTargets {
		r.targets.Signed.Version++
		r.targets.Signed.Expires = now.Add(time.Duration(k.policy.TargetsExpiry))
		data, err := resign(r.targets, k.targets)
		if err != nil {
			return fmt.Errorf("sign targets: %w", err)
		}
		if err := writeAtomic(filepath.Join(md, strconv.FormatInt(r.targets.Signed.Version, 10)+".targets.json"), data); err != nil {
			return err
		}
		r.snapshot.Signed.Meta["targets.json"] = metaFile(r.targets.Signed.Version, data)
		bumpSnapshot = true
	}
	if bumpSnapshot {
		r.snapshot.Signed.Version++
		r.snapshot.Signed.Expires = now.Add(time.Duration(k.policy.SnapshotExpiry))
		data, err := resign(r.snapshot, k.snapshot)
		if err != nil {
			return fmt.Errorf("sign snapshot: %w", err)
		}
		if err := writeAtomic(filepath.Join(md, strconv.FormatInt(r.snapshot.Signed.Version, 10)+".snapshot.json"), data); err != nil {
			return err
		}
		r.timestamp.Signed.Meta["snapshot.json"] = metaFile(r.snapshot.Signed.Version, data)
	}
	r.timestamp.Signed.Version++
	r.timestamp.Signed.Expires = now.Add(time.Duration(k.policy.TimestampExpiry))
	data, err := resign(r.timestamp, k.timestamp)
	if err != nil {
		return fmt.Errorf("sign timestamp: %w", err)
	}
	return writeAtomic(filepath.Join(md, "timestamp.json"), data)
}

// installRoot makes sure the channel serves the keys directory's root as
// <version>.root.json, so every channel shares one root of trust and a root
// rotated offline reaches every channel at its next commit.
func (r *channelRepo) installRoot(rootJSON []byte) error {
	root, err := metadata.Root().FromBytes(rootJSON)
	if err != nil {
		return fmt.Errorf("read root.json: %w", err)
	}
	p := filepath.Join(r.dir, metadataDir, strconv.FormatInt(root.Signed.Version, 10)+".root.json")
	if existing, err := os.ReadFile(p); err == nil {
		if !bytes.Equal(existing, rootJSON) {
			return fmt.Errorf("root version %d differs from the keys directory's: %w", root.Signed.Version, release.ErrInvalid)
		}
		return nil
	}
	return writeAtomic(p, rootJSON)
}

// metaFile records version, length and hash, so a client refuses a file of
// the right version from another channel (all channels share keys).
func metaFile(version int64, data []byte) *metadata.MetaFiles {
	sum := sha256.Sum256(data)
	return &metadata.MetaFiles{Version: version, Length: int64(len(data)), Hashes: metadata.Hashes{"sha256": sum[:]}}
}

func resign[T metadata.Roles](md *metadata.Metadata[T], signer signature.Signer) ([]byte, error) {
	md.ClearSignatures()
	if _, err := md.Sign(signer); err != nil {
		return nil, err
	}
	return md.ToBytes(true)
}

// writeAtomic writes a repository file world-readable (the plane serves the
// directory) through atomicfile, so the plane never sends a half-written file.
func writeAtomic(p string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return atomicfile.Write(p, data, 0o644)
}

// targetDiskPath is where a target is stored: consistent snapshots put the
// hash in front of the file name (dir/<sha256>.<name>), which is also the
// URL go-tuf clients ask for.
func targetDiskPath(dir, target string, sha string) string {
	d, base := path.Split(target)
	return filepath.Join(dir, targetsDir, filepath.FromSlash(d), sha+"."+base)
}

func targetSHA256(tf *metadata.TargetFiles) (string, error) {
	h, ok := tf.Hashes["sha256"]
	if !ok {
		return "", fmt.Errorf("target has no sha256: %w", release.ErrInvalid)
	}
	return hex.EncodeToString(h), nil
}

// Publish adds a release to a channel: it copies each artifact in as a
// target, writes the manifest as target releases/<version>.json and signs
// new targets, snapshot and timestamp versions with the online keys. A
// version that is already published or was revoked is refused.
func Publish(ctx context.Context, repoDir, keysDir string, o PublishOptions, now time.Time) (release.Manifest, error) {
	m := release.Manifest{
		Version:     o.Version,
		Channel:     o.Channel,
		Artifacts:   map[string]release.Artifact{},
		Images:      map[string]string{},
		MinFrom:     o.MinFrom,
		Schema:      release.SchemaRange{Min: o.SchemaMin, Max: o.SchemaMax},
		Notes:       o.Notes,
		PublishedAt: now.UTC().Truncate(time.Second),
	}
	for name, ref := range o.Images {
		m.Images[name] = ref
	}
	for name := range o.Artifacts {
		m.Artifacts[name] = release.Artifact{Target: release.ArtifactTarget(o.Version, name), SHA256: strings.Repeat("0", 64)}
	}
	// Validate before touching anything; hashes are filled in below.
	if err := m.Validate(); err != nil {
		return release.Manifest{}, fmt.Errorf("publish: %w", err)
	}
	k, err := loadOnlineKeys(keysDir)
	if err != nil {
		return release.Manifest{}, fmt.Errorf("publish: keys: %w", err)
	}
	dir, _ := channelDir(repoDir, o.Channel)
	unlock, err := lockChannel(dir)
	if err != nil {
		return release.Manifest{}, fmt.Errorf("publish: lock channel: %w", err)
	}
	defer unlock()

	r, err := openRepo(repoDir, o.Channel)
	if err != nil {
		return release.Manifest{}, fmt.Errorf("publish: %w", err)
	}
	if _, ok := r.targets.Signed.Targets[release.ManifestTarget(o.Version)]; ok {
		return release.Manifest{}, fmt.Errorf("publish: %s on %s: %w", o.Version, o.Channel, ErrExists)
	}
	if revoked(dir, o.Version) {
		return release.Manifest{}, fmt.Errorf("publish: %s on %s was revoked; versions are never reused: %w", o.Version, o.Channel, ErrExists)
	}

	names := make([]string, 0, len(o.Artifacts))
	for name := range o.Artifacts {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return release.Manifest{}, fmt.Errorf("publish: %w", err)
		}
		target := release.ArtifactTarget(o.Version, name)
		tf, err := copyTarget(dir, target, o.Artifacts[name])
		if err != nil {
			return release.Manifest{}, fmt.Errorf("publish: artifact %s: %w", name, err)
		}
		sha, _ := targetSHA256(tf)
		m.Artifacts[name] = release.Artifact{Target: target, SHA256: sha, Size: tf.Length}
		r.targets.Signed.Targets[target] = tf
	}
	if err := r.addManifest(m); err != nil {
		return release.Manifest{}, fmt.Errorf("publish: %w", err)
	}
	if err := r.commit(k, now, true, true); err != nil {
		return release.Manifest{}, fmt.Errorf("publish: %w", err)
	}
	return m, nil
}

// addManifest writes m as target releases/<version>.json, checked by the
// parser agents use, and adds it to the unsigned targets.
func (r *channelRepo) addManifest(m release.Manifest) error {
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("encode manifest: %w", err)
	}
	if _, err := release.ParseManifest(data); err != nil {
		return err
	}
	mt := release.ManifestTarget(m.Version)
	tf, err := metadata.TargetFile().FromBytes(mt, data, "sha256")
	if err != nil {
		return fmt.Errorf("manifest target: %w", err)
	}
	sha, _ := targetSHA256(tf)
	if err := writeAtomic(targetDiskPath(r.dir, mt, sha), data); err != nil {
		return fmt.Errorf("write manifest: %w", err)
	}
	r.targets.Signed.Targets[mt] = tf
	return nil
}

// copyTarget streams a local file into the channel's targets under its
// hash-prefixed name and describes it for targets metadata.
func copyTarget(dir, target, src string) (*metadata.TargetFiles, error) {
	in, err := os.Open(src)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	tmpDir := filepath.Join(dir, targetsDir, filepath.FromSlash(path.Dir(target)))
	if err := os.MkdirAll(tmpDir, 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(tmpDir, ".tmp-")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), in)
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	sum := h.Sum(nil)
	if err := os.Rename(tmp.Name(), targetDiskPath(dir, target, hex.EncodeToString(sum))); err != nil {
		return nil, err
	}
	return &metadata.TargetFiles{Length: n, Hashes: metadata.Hashes{"sha256": sum}, Path: target}, nil
}

// Revoke removes a release (its manifest and artifacts) from the channel's
// targets and signs new versions, so agents stop seeing it at their next
// refresh. The manifest is kept under revoked/ for the vendor's records.
func Revoke(ctx context.Context, repoDir, keysDir, channel, version string, now time.Time) error {
	if _, err := release.ParseVersion(version); err != nil {
		return fmt.Errorf("revoke: %w", err)
	}
	dir, err := channelDir(repoDir, channel)
	if err != nil {
		return fmt.Errorf("revoke: %w", err)
	}
	k, err := loadOnlineKeys(keysDir)
	if err != nil {
		return fmt.Errorf("revoke: keys: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("revoke: %w", err)
	}
	unlock, err := lockChannel(dir)
	if err != nil {
		return fmt.Errorf("revoke: lock channel: %w", err)
	}
	defer unlock()
	r, err := loadRepo(repoDir, channel)
	if err != nil {
		return fmt.Errorf("revoke: %w", err)
	}
	mt := release.ManifestTarget(version)
	tf, ok := r.targets.Signed.Targets[mt]
	if !ok {
		return fmt.Errorf("revoke: %s on %s: %w", version, channel, ErrNotFound)
	}
	m, err := r.readManifest(tf)
	if err != nil {
		return fmt.Errorf("revoke: %w", err)
	}
	m.Revoked = true
	rec, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("revoke: encode record: %w", err)
	}
	// Record first: if signing fails, a retry still finds the release live.
	if err := writeAtomic(filepath.Join(dir, revokedDir, version+".json"), rec); err != nil {
		return fmt.Errorf("revoke: write record: %w", err)
	}
	delete(r.targets.Signed.Targets, mt)
	for _, a := range m.Artifacts {
		delete(r.targets.Signed.Targets, a.Target)
	}
	if err := r.commit(k, now, true, true); err != nil {
		return fmt.Errorf("revoke: %w", err)
	}
	return nil
}

// readManifest reads a manifest target from disk and checks it against the
// signed hash and length before parsing it.
func (r *channelRepo) readManifest(tf *metadata.TargetFiles) (release.Manifest, error) {
	sha, err := targetSHA256(tf)
	if err != nil {
		return release.Manifest{}, err
	}
	data, err := os.ReadFile(targetDiskPath(r.dir, tf.Path, sha))
	if err != nil {
		return release.Manifest{}, fmt.Errorf("read manifest: %w", err)
	}
	if err := tf.VerifyLengthHashes(data); err != nil {
		return release.Manifest{}, fmt.Errorf("read manifest: %w", err)
	}
	return release.ParseManifest(data)
}

// Refresh re-signs whatever is within half its lifetime of expiring, in every
// channel: timestamp (hours), snapshot (days) and targets (weeks). The plane
// calls it periodically; without it agents refuse a frozen repository.
func Refresh(ctx context.Context, repoDir, keysDir string, now time.Time) error {
	k, err := loadOnlineKeys(keysDir)
	if err != nil {
		return fmt.Errorf("refresh: keys: %w", err)
	}
	channels, err := Channels(repoDir)
	if err != nil {
		return fmt.Errorf("refresh: %w", err)
	}
	var errs []error
	for _, ch := range channels {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("refresh: %w", err)
		}
		if err := refreshChannel(repoDir, ch, k, now); err != nil {
			errs = append(errs, fmt.Errorf("refresh %s: %w", ch, err))
		}
	}
	return errors.Join(errs...)
}

func refreshChannel(repoDir, channel string, k *onlineKeys, now time.Time) error {
	dir, _ := channelDir(repoDir, channel)
	unlock, err := lockChannel(dir)
	if err != nil {
		return err
	}
	defer unlock()
	r, err := loadRepo(repoDir, channel)
	if err != nil {
		return err
	}
	due := func(expires time.Time, lifetime duration) bool {
		return !now.Before(expires.Add(-time.Duration(lifetime) / 2))
	}
	bumpTargets := due(r.targets.Signed.Expires, k.policy.TargetsExpiry)
	bumpSnapshot := due(r.snapshot.Signed.Expires, k.policy.SnapshotExpiry)
	if !bumpTargets && !bumpSnapshot && !due(r.timestamp.Signed.Expires, k.policy.TimestampExpiry) {
		return nil
	}
	return r.commit(k, now, bumpTargets, bumpSnapshot)
}

// Channels lists the channels that have a repository under repoDir.
func Channels(repoDir string) ([]string, error) {
	entries, err := os.ReadDir(repoDir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if !e.IsDir() || release.ValidateChannel(e.Name()) != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(repoDir, e.Name(), metadataDir, "timestamp.json")); err == nil {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// List returns a channel's releases, newest first: the live ones from the
// current signed targets and the revoked ones (Revoked set) from the
// vendor's records. A channel with nothing published yields an empty list.
func List(repoDir, channel string) ([]release.Manifest, error) {
	r, err := loadRepo(repoDir, channel)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list: %w", err)
	}
	var out []release.Manifest
	for p, tf := range r.targets.Signed.Targets {
		if !strings.HasPrefix(p, "releases/") {
			continue
		}
		tf.Path = p
		m, err := r.readManifest(tf)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", channel, err)
		}
		out = append(out, m)
	}
	revoked, err := os.ReadDir(filepath.Join(r.dir, revokedDir))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("list: %w", err)
	}
	for _, e := range revoked {
		data, err := os.ReadFile(filepath.Join(r.dir, revokedDir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("list: %w", err)
		}
		m, err := release.ParseManifest(data)
		if err != nil {
			return nil, fmt.Errorf("list %s: revoked record: %w", channel, err)
		}
		out = append(out, m)
	}
	release.SortNewestFirst(out)
	return out, nil
}
