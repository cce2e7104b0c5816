package publish

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/tetherhq/tether/internal/blob"
	"github.com/tetherhq/tether/internal/release"
)

// ObjectStore holds release repositories for a plane that runs as several
// replicas: a directory (blob.File) on one host, an S3 bucket in production.
// Each channel's files sit under "<channel>/" exactly as in a repository
// directory, so the plane serves an agent's request straight from it.
type ObjectStore interface {
	blob.Store
	blob.Lister
}

// timestampName is the one repository file that is ever replaced: every
// other metadata file carries its version in its name and every target its
// hash, so they are written once. timestamp.json is therefore the pointer
// to the current set, and it is written last.
const timestampName = metadataDir + "/timestamp.json"

// Mirror is a local working copy of the repositories in an ObjectStore.
// The signing code (Publish, Revoke, Refresh) works on directories; a
// writer pulls a channel into Dir, signs there, and pushes what changed:
// immutable files first, timestamp.json last. A writer that dies before the
// last step leaves only files no timestamp names, so readers go on seeing
// the previous complete set; the next writer overwrites them.
//
// Writers must not run at once (two would sign the same snapshot version
// differently): the plane serialises them with a lease in its database
// (planestore.Store.WithLease), which `release publish` also takes.
type Mirror struct {
	Store ObjectStore
	Dir   string // absolute; holds <channel>/ working copies
}

// Stamps records each local file of a channel (path relative to the channel
// directory) by size and modification time right after a pull, so a push
// sends only what signing rewrote.
type Stamps map[string]stamp

type stamp struct {
	size int64
	mod  time.Time
}

// Channels lists the channels the store holds a timestamp for.
func (m *Mirror) Channels(ctx context.Context) ([]string, error) {
	objs, err := m.Store.List(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("mirror: list channels: %w", err)
	}
	var out []string
	for _, o := range objs {
		ch, rest, ok := strings.Cut(o.Key, "/")
		if ok && rest == timestampName && release.ValidateChannel(ch) == nil {
			out = append(out, ch)
		}
	}
	return out, nil
}

// Pull makes Dir/<channel> a copy of the store's channel: it fetches every
// file it lacks (or holds at another size), then timestamp.json, then checks
// the snapshot and targets metadata the timestamp names against their
// recorded hashes, fetching again any the local copy got wrong (a file left
// behind by a writer that died). A channel the store does not hold leaves
// an empty directory, ready for a first Publish.
func (m *Mirror) Pull(ctx context.Context, channel string) (Stamps, error) {
	dir, err := channelDir(m.Dir, channel)
	if err != nil {
		return nil, fmt.Errorf("mirror: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("mirror: %w", err)
	}
	objs, err := m.Store.List(ctx, channel+"/")
	if err != nil {
		return nil, fmt.Errorf("mirror: pull %s: %w", channel, err)
	}
	hasTimestamp := false
	for _, o := range objs {
		rel := strings.TrimPrefix(o.Key, channel+"/")
		if rel == timestampName {
			hasTimestamp = true
			continue
		}
		if st, err := os.Stat(filepath.Join(dir, filepath.FromSlash(rel))); err == nil && st.Size() == o.Size {
			continue
		}
		if err := m.fetch(ctx, channel, rel); err != nil {
			return nil, err
		}
	}
	if hasTimestamp {
		if err := m.fetch(ctx, channel, timestampName); err != nil {
			return nil, err
		}
		if err := m.repair(ctx, channel); err != nil {
			return nil, err
		}
	} else if err := os.Remove(filepath.Join(dir, filepath.FromSlash(timestampName))); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("mirror: %w", err)
	}
	return localStamps(dir)
}

// repair re-fetches the snapshot and targets metadata the pulled timestamp
// names when the local copy does not match the recorded hash and length.
func (m *Mirror) repair(ctx context.Context, channel string) error {
	dir := filepath.Join(m.Dir, channel, metadataDir)
	check := func(name string, mf *metadata.MetaFiles) ([]byte, error) {
		rel := metadataDir + "/" + strconv.FormatInt(mf.Version, 10) + "." + name
		for attempt := 0; ; attempt++ {
			data, err := os.ReadFile(filepath.Join(dir, strconv.FormatInt(mf.Version, 10)+"."+name))
			if err == nil && mf.VerifyLengthHashes(data) == nil {
				return data, nil
			}
			if attempt == 1 {
				return nil, fmt.Errorf("mirror: channel %s: %s in the store does not match timestamp/snapshot: %w", channel, rel, release.ErrInvalid)
			}
			if err := m.fetch(ctx, channel, rel); err != nil {
				return nil, err
			}
		}
	}
	ts, err := metadata.Timestamp().FromFile(filepath.Join(dir, "timestamp.json"))
	if err != nil {
		return fmt.Errorf("mirror: channel %s: read timestamp: %w", channel, err)
	}
	sm, ok := ts.Signed.Meta["snapshot.json"]
	if !ok {
		return fmt.Errorf("mirror: channel %s: timestamp names no snapshot: %w", channel, release.ErrInvalid)
	}
	data, err := check("snapshot.json", sm)
	if err != nil {
		return err
	}
	snap, err := metadata.Snapshot().FromBytes(data)
	if err != nil {
		return fmt.Errorf("mirror: channel %s: read snapshot: %w", channel, err)
	}
	tm, ok := snap.Signed.Meta["targets.json"]
	if !ok {
		return fmt.Errorf("mirror: channel %s: snapshot names no targets: %w", channel, release.ErrInvalid)
	}
	_, err = check("targets.json", tm)
	return err
}

// fetch copies one object into the channel directory through a temporary
// file, so a half-copied file never sits under the real name.
func (m *Mirror) fetch(ctx context.Context, channel, rel string) error {
	rc, err := m.Store.Get(ctx, channel+"/"+rel)
	if err != nil {
		return fmt.Errorf("mirror: pull %s/%s: %w", channel, rel, err)
	}
	defer rc.Close()
	dst := filepath.Join(m.Dir, channel, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("mirror: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".pull-*")
	if err != nil {
		return fmt.Errorf("mirror: %w", err)
	}
	_, err = io.Copy(tmp, rc)
	err = errors.Join(err, tmp.Chmod(0o644), tmp.Close())
	if err == nil {
		err = os.Rename(tmp.Name(), dst)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("mirror: pull %s/%s: %w", channel, rel, err)
	}
	return nil
}

// localStamps records every file of a channel directory but the vendor's
// lock file and temporary files (dot names).
func localStamps(dir string) (Stamps, error) {
	out := Stamps{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		out[filepath.ToSlash(rel)] = stamp{size: info.Size(), mod: info.ModTime()}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("mirror: %w", err)
	}
	return out, nil
}

// Push uploads the files of Dir/<channel> that are new or changed since
// before (what Pull returned): targets and versioned metadata first, then
// timestamp.json, the pointer that makes them current. stillHeld, when not
// nil, is asked just before that last write; if it reports the writer's
// lease lost, the pointer is not moved and Push fails. It returns how many
// files it uploaded.
func (m *Mirror) Push(ctx context.Context, channel string, before Stamps, stillHeld func(context.Context) error) (int, error) {
	dir, err := channelDir(m.Dir, channel)
	if err != nil {
		return 0, fmt.Errorf("mirror: %w", err)
	}
	now, err := localStamps(dir)
	if err != nil {
		return 0, err
	}
	var changed []string
	for rel, st := range now {
		if old, ok := before[rel]; ok && old.size == st.size && old.mod.Equal(st.mod) {
			continue
		}
		changed = append(changed, rel)
	}
	// Targets before metadata, metadata before the timestamp: each file is
	// in place before anything that names it.
	rank := func(rel string) int {
		switch {
		case rel == timestampName:
			return 2
		case strings.HasPrefix(rel, metadataDir+"/"):
			return 1
		}
		return 0
	}
	slices.SortFunc(changed, func(a, b string) int {
		return cmp.Or(cmp.Compare(rank(a), rank(b)), strings.Compare(a, b))
	})
	for i, rel := range changed {
		if rel == timestampName && stillHeld != nil {
			if err := stillHeld(ctx); err != nil {
				return i, fmt.Errorf("mirror: push %s: not moving timestamp.json: %w", channel, err)
			}
		}
		if err := m.put(ctx, channel, rel); err != nil {
			return i, err
		}
	}
	return len(changed), nil
}

func (m *Mirror) put(ctx context.Context, channel, rel string) error {
	key := path.Join(channel, rel)
	if err := blob.ValidateKey(key); err != nil {
		return fmt.Errorf("mirror: push %s: the file name cannot be a storage key (%w); rename the artifact or version", key, err)
	}
	f, err := os.Open(filepath.Join(m.Dir, channel, filepath.FromSlash(rel)))
	if err != nil {
		return fmt.Errorf("mirror: push %s: %w", key, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("mirror: push %s: %w", key, err)
	}
	if err := m.Store.Put(ctx, key, f, st.Size()); err != nil {
		return fmt.Errorf("mirror: push %s: %w", key, err)
	}
	return nil
}

// ReadTimestamp returns the store's current timestamp.json for channel, for
// checks and tests; ErrNotFound when the channel has none.
func ReadTimestamp(ctx context.Context, store blob.Store, channel string) ([]byte, error) {
	if err := release.ValidateChannel(channel); err != nil {
		return nil, err
	}
	rc, err := store.Get(ctx, channel+"/"+timestampName)
	if errors.Is(err, blob.ErrNotFound) {
		return nil, fmt.Errorf("channel %s: %w", channel, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, io.LimitReader(rc, 1<<20)); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// RepoKey is RepoFile for an ObjectStore: the key of a file the plane
// serves at /v1/tuf/{channel}/{area}/{name}, with the same refusals.
func RepoKey(channel, area, name string) (string, error) {
	p, err := RepoFile("/", channel, area, name)
	if err != nil {
		return "", err
	}
	return strings.TrimPrefix(filepath.ToSlash(p), "/"), nil
}
