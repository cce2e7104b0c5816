// Package updater is the agent's view of releases. It trusts nothing but the
// root metadata installed with the agent: every timestamp, snapshot, targets
// file, release manifest and artifact is checked by go-tuf's updater against
// that root before this package acts on it, so rollback to older metadata,
// freeze (serving expired metadata) and mix-and-match (combining files from
// different repository states or channels) are refused with go-tuf's typed
// errors (metadata.ErrBadVersionNumber, ErrExpiredMetadata,
// ErrLengthOrHashMismatch, ...), which callers match with errors.Is.
//
// Online agents use Client against the plane's /v1/tuf/{channel}/ endpoints;
// tetherctl verifies air-gap exports with internal/updater/airgap.
package updater

import (
	"bytes"
	"cmp"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/fetcher"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"

	"github.com/tetherhq/tether/internal/atomicfile"
	"github.com/tetherhq/tether/internal/release"
)

// Errors of this package; go-tuf's own typed errors pass through wrapped.
var (
	// ErrNotInitialized means the metadata directory has no trusted root:
	// the agent was not installed with one, and it never trusts on first use.
	ErrNotInitialized = errors.New("updater: no trusted root installed")
	// ErrAlreadyInitialized means Init was given a root other than the one
	// already trusted; replacing it would undo root rotations.
	ErrAlreadyInitialized = errors.New("updater: a different trusted root is already installed")
	// ErrChannelMismatch means a verified manifest names another channel.
	// All channels share signing keys, so this is the check that stops a
	// plane (or a man in the middle) from serving one channel's repository
	// to an agent on another.
	ErrChannelMismatch = errors.New("updater: manifest is for another channel")
	// ErrManifestMismatch means a manifest disagrees with the signed targets
	// metadata about its own path or an artifact's hash or size.
	ErrManifestMismatch = errors.New("updater: manifest disagrees with signed targets")
	// ErrUnknownArtifact means an artifact a manifest names is not among
	// the signed targets.
	ErrUnknownArtifact = errors.New("updater: unknown artifact")
)

const rootFile = "root.json"

// Config configures a Client.
type Config struct {
	MetadataDir       string // persisted trusted metadata; holds the install-time root.json
	RemoteMetadataURL string // e.g. https://plane/v1/tuf/stable/metadata
	RemoteTargetsURL  string // e.g. https://plane/v1/tuf/stable/targets
	HTTPClient        *http.Client
	// Sign, if set, signs every TUF request (the plane authenticates agents
	// on these endpoints like on any other).
	Sign func(*http.Request) error
	// Now is the clock expiry is checked against; default time.Now.
	Now func() time.Time
	// Channel, if set, is the only channel whose manifests are accepted.
	Channel string
}

// Init installs the trusted root an agent ships with. The root must verify
// against itself (threshold of its own root keys); installing it again is a
// no-op, and installing a different one over an existing root is refused.
func Init(metadataDir string, trustedRoot []byte) error {
	root, err := metadata.Root().FromBytes(trustedRoot)
	if err != nil {
		return fmt.Errorf("updater: init: parse root: %w", err)
	}
	if err := root.VerifyDelegate(metadata.ROOT, root); err != nil {
		return fmt.Errorf("updater: init: root does not verify itself: %w", err)
	}
	if err := os.MkdirAll(metadataDir, 0o700); err != nil {
		return fmt.Errorf("updater: init: %w", err)
	}
	p := filepath.Join(metadataDir, rootFile)
	existing, err := os.ReadFile(p)
	switch {
	case err == nil && bytes.Equal(existing, trustedRoot):
		return nil
	case err == nil:
		return fmt.Errorf("updater: init: %w", ErrAlreadyInitialized)
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("updater: init: %w", err)
	}
	// Synced, file and directory: a power cut must not leave an agent
	// without the root it trusts.
	if err := atomicfile.Write(p, trustedRoot, 0o600); err != nil {
		return fmt.Errorf("updater: init: %w", err)
	}
	return nil
}

// Client is an agent's verified view of one channel. It is safe for
// concurrent use; calls are serialized because go-tuf's Updater is not.
type Client struct {
	cfg     Config
	mu      sync.Mutex
	fetcher *HTTPFetcher
}

// New makes a Client; it fails with ErrNotInitialized unless MetadataDir
// holds a trusted root.
func New(cfg Config) (*Client, error) {
	if cfg.MetadataDir == "" || cfg.RemoteMetadataURL == "" {
		return nil, fmt.Errorf("updater: new: MetadataDir and RemoteMetadataURL are required")
	}
	if _, err := readRoot(cfg.MetadataDir); err != nil {
		return nil, fmt.Errorf("updater: new: %w", err)
	}
	cfg.HTTPClient = cmp.Or(cfg.HTTPClient, &http.Client{Timeout: 5 * time.Minute})
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Client{cfg: cfg, fetcher: &HTTPFetcher{Client: cfg.HTTPClient, Sign: cfg.Sign}}, nil
}

func readRoot(metadataDir string) ([]byte, error) {
	data, err := os.ReadFile(filepath.Join(metadataDir, rootFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotInitialized
	}
	return data, err
}

// TUFOptions are what every go-tuf updater is built from: the Client's, the
// air-gap import's (internal/updater/airgap) and the TUF conformance
// client's (cmd/tether-tuf-client).
type TUFOptions struct {
	MetadataDir, TargetsDir string
	MetadataURL, TargetsURL string
	Fetcher                 fetcher.Fetcher
	Now                     time.Time // the reference time expiry is judged by
}

// NewTUF builds a go-tuf updater on the persisted trusted root. Because
// go-tuf persists every newer verified root, timestamp, snapshot and targets
// it accepts, the next refresh compares against them: that is what makes a
// rollback visible across agent restarts.
func NewTUF(o TUFOptions) (*updater.Updater, error) {
	root, err := readRoot(o.MetadataDir)
	if err != nil {
		return nil, err
	}
	cfg, err := config.New(o.MetadataURL, root)
	if err != nil {
		return nil, err
	}
	cfg.LocalMetadataDir = o.MetadataDir
	cfg.LocalTargetsDir = o.TargetsDir
	cfg.RemoteTargetsURL = o.TargetsURL
	cfg.Fetcher = o.Fetcher
	up, err := updater.New(cfg)
	if err != nil {
		return nil, err
	}
	// go-tuf reads the wall clock when the updater is made; the agent's
	// injected clock is the one expiry is judged by.
	up.UnsafeSetRefTime(o.Now.UTC())
	return up, nil
}

// Releases runs the TUF client workflow (root, timestamp, snapshot,
// targets) against the remote repository and returns the channel's verified
// release manifests, newest first. Each call starts from the persisted
// trusted metadata, so nothing is returned that this refresh did not confirm.
func (c *Client) Releases(ctx context.Context) ([]release.Manifest, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fetcher.Ctx = ctx
	up, err := NewTUF(TUFOptions{
		MetadataDir: c.cfg.MetadataDir,
		TargetsDir:  filepath.Join(c.cfg.MetadataDir, "targets"),
		MetadataURL: c.cfg.RemoteMetadataURL,
		TargetsURL:  c.cfg.RemoteTargetsURL,
		Fetcher:     c.fetcher,
		Now:         c.cfg.Now(),
	})
	if err == nil {
		err = up.Refresh()
	}
	if err != nil {
		return nil, fmt.Errorf("updater: refresh: %w", err)
	}
	ms, err := VerifiedManifests(up, c.cfg.Channel)
	if err != nil {
		return nil, fmt.Errorf("updater: releases: %w", err)
	}
	return ms, nil
}

// VerifiedManifests downloads (or finds cached) every releases/*.json target
// named by up's trusted targets metadata, lets go-tuf check its hash and
// length, then parses it strictly and cross-checks it against the targets.
// It returns them newest first; with channel set, a manifest of another
// channel is ErrChannelMismatch.
func VerifiedManifests(up *updater.Updater, channel string) ([]release.Manifest, error) {
	targets := up.GetTopLevelTargets()
	var out []release.Manifest
	for p, info := range targets {
		version, _ := strings.CutSuffix(strings.TrimPrefix(p, "releases/"), ".json")
		if p != release.ManifestTarget(version) {
			continue
		}
		_, data, err := up.FindCachedTarget(info, "")
		if err != nil {
			return nil, err
		}
		if data == nil {
			if _, data, err = up.DownloadTarget(info, "", ""); err != nil {
				return nil, fmt.Errorf("manifest %s: %w", version, err)
			}
		}
		m, err := release.ParseManifest(data)
		if err != nil {
			return nil, fmt.Errorf("manifest %s: %w", version, err)
		}
		if m.Revoked {
			// Revoke removes releases from targets; a signed manifest
			// that says it is revoked is honoured all the same.
			continue
		}
		if m.Version != version {
			return nil, fmt.Errorf("manifest at %s names version %s: %w", version, m.Version, ErrManifestMismatch)
		}
		if channel != "" && m.Channel != channel {
			return nil, fmt.Errorf("manifest %s: %w", version, ErrChannelMismatch)
		}
		for name, a := range m.Artifacts {
			if err := checkArtifact(targets, a); err != nil {
				return nil, fmt.Errorf("manifest %s artifact %s: %w", version, name, err)
			}
		}
		out = append(out, m)
	}
	release.SortNewestFirst(out)
	return out, nil
}

// checkArtifact makes sure an artifact the manifest names is a signed target
// with the same hash and size, so the manifest cannot point anywhere else.
func checkArtifact(targets map[string]*metadata.TargetFiles, a release.Artifact) error {
	info, ok := targets[a.Target]
	if !ok {
		return ErrUnknownArtifact
	}
	if info.Length != a.Size || hex.EncodeToString(info.Hashes["sha256"]) != a.SHA256 {
		return ErrManifestMismatch
	}
	return nil
}

// Latest returns the newest release that applies to an agent at version
// current: newer than current, and current is at or after its MinFrom. If
// the newest release needs a newer starting point, an older applicable one
// (a stepping stone) is returned. ok is false when nothing applies.
func (c *Client) Latest(ctx context.Context, current string) (*release.Manifest, bool, error) {
	cur, err := release.ParseVersion(current)
	if err != nil {
		return nil, false, fmt.Errorf("updater: latest: current: %w", err)
	}
	ms, err := c.Releases(ctx)
	if err != nil {
		return nil, false, err
	}
	for _, m := range ms {
		v, err := release.ParseVersion(m.Version)
		if err != nil || v.Compare(cur) <= 0 {
			continue
		}
		if m.MinFrom != "" {
			from, err := release.ParseVersion(m.MinFrom)
			if err != nil || cur.Compare(from) < 0 {
				continue
			}
		}
		return &m, true, nil
	}
	return nil, false, nil
}

// HTTPFetcher is go-tuf's Fetcher over an HTTP client: each request is
// made under Ctx (required; go-tuf's interface has none, so Client sets it
// before each call under its mutex) and signed when Sign is set.
type HTTPFetcher struct {
	Ctx    context.Context
	Client *http.Client
	Sign   func(*http.Request) error
}

func (f *HTTPFetcher) DownloadFile(url string, maxLength int64, _ time.Duration) ([]byte, error) {
	req, err := http.NewRequestWithContext(f.Ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	if f.Sign != nil {
		if err := f.Sign(req); err != nil {
			return nil, fmt.Errorf("sign request: %w", err)
		}
	}
	resp, err := f.Client.Do(req)
	if err != nil {
		return nil, &metadata.ErrDownload{Msg: err.Error()}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		// go-tuf reads a 404 on N.root.json as "no newer root".
		return nil, &metadata.ErrDownloadHTTP{StatusCode: resp.StatusCode, URL: url}
	}
	if resp.ContentLength > maxLength {
		return nil, &metadata.ErrDownloadLengthMismatch{Msg: fmt.Sprintf("%s is %d bytes, more than %d", url, resp.ContentLength, maxLength)}
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxLength+1))
	if err != nil {
		return nil, &metadata.ErrDownload{Msg: err.Error()}
	}
	if int64(len(data)) > maxLength {
		return nil, &metadata.ErrDownloadLengthMismatch{Msg: fmt.Sprintf("%s is more than %d bytes", url, maxLength)}
	}
	return data, nil
}
