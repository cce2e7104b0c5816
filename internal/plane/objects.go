package plane

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"time"

	"github.com/tetherhq/tether/internal/blob"
	"github.com/tetherhq/tether/internal/plane/planestore"
	"github.com/tetherhq/tether/internal/release"
	"github.com/tetherhq/tether/internal/release/publish"
)

// defaultStores fills in the single-host stores: bundles as files in
// DataDir/bundles, releases served from RepoDir. A replicated plane passes
// S3 stores instead (planecmd serve --objects).
func (cfg *Config) defaultStores() error {
	if cfg.Bundles == nil {
		f, err := blob.NewFile(filepath.Join(cfg.DataDir, "bundles"))
		if err != nil {
			return fmt.Errorf("plane: bundle store: %w", err)
		}
		cfg.Bundles = f
	}
	if cfg.Repo == nil && cfg.RepoDir != "" {
		abs, err := filepath.Abs(cfg.RepoDir)
		if err != nil {
			return fmt.Errorf("plane: release repository: %w", err)
		}
		f, err := blob.NewFile(abs)
		if err != nil {
			return fmt.Errorf("plane: release repository: %w", err)
		}
		cfg.Repo = f
	}
	return nil
}

// objectTimeout bounds one request's work with the object store: a bundle
// (16 MiB at most) or a repository file in or out.
const objectTimeout = 2 * time.Minute

// putBundle stores a checked bundle under a name of its own: the
// diagnostic, the content's hash and a random suffix. Two racing uploads
// (an agent's retry reaching another replica while the first is still
// being stored, even with the same bytes) never write the same object, so
// the one the store's MarkUploaded records is intact and the loser removes
// only its own.
func (s *Server) putBundle(ctx context.Context, diagID string, sum [32]byte, data []byte) (string, error) {
	var nonce [4]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return "", err
	}
	name := diagID + "-" + hex.EncodeToString(sum[:8]) + "-" + hex.EncodeToString(nonce[:]) + ".zip"
	ctx, cancel := context.WithTimeout(ctx, objectTimeout)
	defer cancel()
	return name, s.cfg.Bundles.Put(ctx, name, bytes.NewReader(data), int64(len(data)))
}

// openRepoFile opens one repository file for an agent; a name the store
// cannot hold is as missing as one it does not.
func (s *Server) openRepoFile(ctx context.Context, channel, area, file string) (io.ReadCloser, error) {
	key, err := publish.RepoKey(channel, area, file)
	if err != nil {
		return nil, err
	}
	rc, err := s.cfg.Repo.Get(ctx, key)
	if errors.Is(err, blob.ErrInvalidKey) {
		return nil, blob.ErrNotFound
	}
	return rc, err
}

// serveRepoFile answers a TUF request from the release store.
func (s *Server) serveRepoFile(w http.ResponseWriter, r *http.Request, rc io.ReadCloser, area string) {
	defer rc.Close()
	w.Header().Set("Cache-Control", "no-store")
	if area == "metadata" {
		w.Header().Set("Content-Type", "application/json")
	} else {
		w.Header().Set("Content-Type", "application/octet-stream")
	}
	if _, err := io.Copy(w, rc); err != nil {
		s.log.Warn("send repository file", "area", area, "err", err)
	}
}

// releases lists every channel's releases. A plane serving a directory
// reads it; one serving a shared store first pulls each channel into
// DataDir/release-cache (files are fetched once; timestamp.json each time).
func (s *Server) releases() ([]ChannelReleases, error) {
	out := []ChannelReleases{}
	if s.cfg.Repo == nil {
		return out, nil
	}
	dir := s.cfg.RepoDir
	var chans []string
	var err error
	if _, isDir := s.cfg.Repo.(*blob.File); isDir && dir != "" {
		chans, err = publish.Channels(dir)
	} else {
		s.releaseMu.Lock()
		defer s.releaseMu.Unlock()
		dir = filepath.Join(s.cfg.DataDir, "release-cache")
		m := &publish.Mirror{Store: s.cfg.Repo, Dir: dir}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if chans, err = m.Channels(ctx); err == nil {
			for _, ch := range chans {
				if _, err = m.Pull(ctx, ch); err != nil {
					break
				}
			}
		}
	}
	if err != nil {
		return nil, err
	}
	for _, ch := range chans {
		ms, err := publish.List(dir, ch)
		if err != nil {
			return nil, err
		}
		if ms == nil {
			ms = []release.Manifest{}
		}
		out = append(out, ChannelReleases{Channel: ch, Releases: ms})
	}
	return out, nil
}

// ReleaseLease is the lease every writer of a shared release store holds:
// each replica's periodic re-signing and `tether-plane release publish`,
// `revoke` and `refresh` against the store.
const ReleaseLease = "release-repo"

// releaseLeaseTTL is how long a writer that stopped renewing keeps the
// lease: a replica that dies mid-signing blocks the next one this long.
const releaseLeaseTTL = 2 * time.Minute

// WriteReleases changes the shared release store under the release lease:
// it pulls every channel the store holds, plus extra (a channel about to be
// created), into dir, runs fn on dir (publish.Publish, Revoke or Refresh),
// and pushes what fn changed, each channel's timestamp.json last and only
// while the lease is still held. Another writer holding the lease makes it
// return planestore.ErrLeaseHeld without running fn. holder names this
// writer (a replica ID, or the publishing host).
func WriteReleases(ctx context.Context, st *planestore.Store, holder string, repo publish.ObjectStore, dir string,
	extra []string, fn func(ctx context.Context, dir string) error) error {
	return st.WithLease(ctx, ReleaseLease, holder, releaseLeaseTTL, func(ctx context.Context, held func(context.Context) error) error {
		m := &publish.Mirror{Store: repo, Dir: dir}
		chans, err := m.Channels(ctx)
		if err != nil {
			return err
		}
		for _, ch := range extra {
			if !slices.Contains(chans, ch) {
				chans = append(chans, ch)
			}
		}
		before := map[string]publish.Stamps{}
		for _, ch := range chans {
			if before[ch], err = m.Pull(ctx, ch); err != nil {
				return err
			}
		}
		if err := fn(ctx, dir); err != nil {
			return err
		}
		for _, ch := range chans {
			if _, err := m.Push(ctx, ch, before[ch], held); err != nil {
				return err
			}
		}
		return nil
	})
}
