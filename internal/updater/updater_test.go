package updater

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/tetherhq/tether/internal/release"
	"github.com/tetherhq/tether/internal/release/publish"
	"github.com/tetherhq/tether/internal/release/publish/publishtest"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// bundle is a vendor repository (publishtest) and an agent metadata
// directory initialized with the vendor's root.
type bundle struct {
	*publishtest.Repo
	t        *testing.T
	agentDir string
}

func setup(t *testing.T) *bundle {
	t.Helper()
	b := &bundle{Repo: publishtest.New(t), t: t, agentDir: filepath.Join(t.TempDir(), "agent")}
	if err := Init(b.agentDir, b.RootJSON()); err != nil {
		t.Fatal(err)
	}
	return b
}

func (b *bundle) client(channel string, mods ...func(*Config)) *Client {
	b.t.Helper()
	cfg := Config{
		MetadataDir:       b.agentDir,
		RemoteMetadataURL: b.URL + "/tuf/" + channel + "/metadata",
		RemoteTargetsURL:  b.URL + "/tuf/" + channel + "/targets",
		Now:               func() time.Time { return b.Now.Add(time.Minute) },
		Channel:           channel,
	}
	for _, m := range mods {
		m(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		b.t.Fatal(err)
	}
	return c
}

func (b *bundle) repoFile(channel, area, name string) []byte {
	b.t.Helper()
	data, err := os.ReadFile(filepath.Join(b.RepoDir, channel, area, name))
	if err != nil {
		b.t.Fatal(err)
	}
	return data
}

func TestHappyPath(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	b.Publish("stable", "1.0.0", "")
	m11 := b.Publish("stable", "1.1.0", "1.0.0")

	c := b.client("stable")
	ms, err := c.Releases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := publishtest.Versions(ms); !slices.Equal(got, []string{"1.1.0", "1.0.0"}) {
		t.Fatalf("Releases = %v", got)
	}
	if ms[0].Artifacts["tether-agent"] != m11.Artifacts["tether-agent"] || ms[0].Images["api"] != m11.Images["api"] {
		t.Errorf("verified manifest differs from published: %+v", ms[0])
	}

	latest, ok, err := c.Latest(ctx, "1.0.0")
	if err != nil || !ok || latest.Version != "1.1.0" {
		t.Fatalf("Latest(1.0.0) = %v, %v, %v", latest, ok, err)
	}
	// The trusted metadata persisted: a restarted agent can refresh again.
	for _, f := range []string{"root.json", "timestamp.json", "snapshot.json", "targets.json"} {
		if _, err := os.Stat(filepath.Join(b.agentDir, f)); err != nil {
			t.Errorf("trusted %s not persisted: %v", f, err)
		}
	}
	if _, err := b.client("stable").Releases(ctx); err != nil {
		t.Errorf("refresh after restart: %v", err)
	}
}

func TestLatest(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.Publish("stable", "1.0.0", "")
	b.Publish("stable", "1.1.0", "1.0.0")
	b.Publish("stable", "2.0.0", "1.1.0")
	b.Publish("stable", "2.1.0-rc.1", "2.0.0")
	c := b.client("stable")
	tests := []struct {
		current string
		want    string // "" means nothing applies
		wantErr bool
	}{
		{current: "0.9.0", want: "1.0.0"},
		{current: "1.0.0", want: "1.1.0"},
		{current: "1.0.5", want: "1.1.0"},
		{current: "1.1.0", want: "2.0.0"},
		{current: "2.0.0", want: "2.1.0-rc.1"},
		{current: "2.1.0-rc.1", want: ""},
		{current: "3.0.0", want: ""},
		{current: "v1", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.current, func(t *testing.T) {
			m, ok, err := c.Latest(context.Background(), tt.current)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v", err)
			}
			got := ""
			if ok {
				got = m.Version
			}
			if got != tt.want {
				t.Errorf("Latest(%s) = %q, want %q", tt.current, got, tt.want)
			}
		})
	}
}

// signedTargets is c's channel's verified targets metadata, refreshed now.
func signedTargets(t *testing.T, c *Client) map[string]*metadata.TargetFiles {
	t.Helper()
	up, err := NewTUF(TUFOptions{MetadataDir: c.cfg.MetadataDir, TargetsDir: t.TempDir(), MetadataURL: c.cfg.RemoteMetadataURL,
		TargetsURL: c.cfg.RemoteTargetsURL, Fetcher: &HTTPFetcher{Ctx: context.Background(), Client: c.cfg.HTTPClient}, Now: c.cfg.Now()})
	if err == nil {
		err = up.Refresh()
	}
	if err != nil {
		t.Fatal(err)
	}
	return up.GetTopLevelTargets()
}

func TestTamperedTargetRefused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	m := b.Publish("stable", "1.0.0", "")
	a := m.Artifacts["tether-agent"]
	c := b.client("stable")
	if _, err := c.Releases(ctx); err != nil {
		t.Fatal(err)
	}
	// A manifest that claims a different artifact hash or size than the
	// signed targets, or an artifact they do not list, is refused.
	targets := signedTargets(t, c)
	if err := checkArtifact(targets, a); err != nil {
		t.Fatalf("the published artifact: %v", err)
	}
	for name, forged := range map[string]release.Artifact{
		"hash": {Target: a.Target, SHA256: strings.Repeat("0", 64), Size: a.Size},
		"size": {Target: a.Target, SHA256: a.SHA256, Size: a.Size + 1},
	} {
		if err := checkArtifact(targets, forged); !errors.Is(err, ErrManifestMismatch) {
			t.Errorf("forged %s: %v, want ErrManifestMismatch", name, err)
		}
	}
	if err := checkArtifact(targets, release.Artifact{Target: "artifacts/1.0.0/other"}); !errors.Is(err, ErrUnknownArtifact) {
		t.Errorf("an artifact the targets do not list: %v, want ErrUnknownArtifact", err)
	}

	// A tampered manifest target is refused as well.
	mPath := filepath.Join(b.RepoDir, "stable", "targets", "releases")
	entries, _ := os.ReadDir(mPath)
	raw, _ := os.ReadFile(filepath.Join(mPath, entries[0].Name()))
	b.ServeInstead("stable/targets/releases/"+entries[0].Name(), bytes.Replace(raw, []byte(`"max": 2`), []byte(`"max": 9`), 1))
	if _, err := b.client("stable", func(cfg *Config) { cfg.MetadataDir = b.freshAgentDir() }).Releases(ctx); !lengthOrHashRefused(err) {
		t.Errorf("Releases with a tampered manifest: %v", err)
	}
}

func TestFreshAgentDir(t *testing.T) {
	t.Parallel()
	// Used above: a client on a fresh metadata dir must be initialized first.
	if _, err := New(Config{MetadataDir: t.TempDir(), RemoteMetadataURL: "http://x"}); !errors.Is(err, ErrNotInitialized) {
		t.Errorf("New without a root: %v, want ErrNotInitialized", err)
	}
}

func TestRollbackRefused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	b.Publish("stable", "1.0.0", "")
	c := b.client("stable")
	if _, err := c.Releases(ctx); err != nil {
		t.Fatal(err)
	}
	oldTimestamp := b.repoFile("stable", "metadata", "timestamp.json")
	b.Publish("stable", "1.1.0", "")
	if _, err := c.Releases(ctx); err != nil {
		t.Fatal(err)
	}

	t.Run("older timestamp", func(t *testing.T) {
		b.ServeInstead("stable/metadata/timestamp.json", oldTimestamp)
		defer b.ServeInstead("stable/metadata/timestamp.json", b.repoFile("stable", "metadata", "timestamp.json"))
		_, err := c.Releases(ctx)
		if !errors.Is(err, &metadata.ErrBadVersionNumber{}) {
			t.Fatalf("Releases with rolled-back timestamp: %v", err)
		}
		// Fail closed: nothing is offered until a refresh succeeds.
		if _, err := c.Releases(ctx); err == nil {
			t.Error("Releases answered after a refused refresh")
		}
		// The trusted state survives a restart of the agent.
		if _, err := b.client("stable").Releases(ctx); !errors.Is(err, &metadata.ErrBadVersionNumber{}) {
			t.Errorf("restarted agent accepted the rollback: %v", err)
		}
	})

	t.Run("newer timestamp naming an older snapshot", func(t *testing.T) {
		ts, err := metadata.Timestamp().FromBytes(b.repoFile("stable", "metadata", "timestamp.json"))
		if err != nil {
			t.Fatal(err)
		}
		ts.Signed.Version++
		ts.Signed.Meta["snapshot.json"] = metadata.MetaFile(1)
		b.ServeInstead("stable/metadata/timestamp.json", b.resign(ts, "timestamp.key"))
		if _, err := c.Releases(ctx); !errors.Is(err, &metadata.ErrBadVersionNumber{}) {
			t.Fatalf("Releases with snapshot rollback: %v", err)
		}
	})
}

// resign signs doctored metadata with one of the vendor's real online keys,
// the strongest attacker short of a root compromise.
func (b *bundle) resign(ts *metadata.Metadata[metadata.TimestampType], keyFile string) []byte {
	b.t.Helper()
	pemData, err := os.ReadFile(filepath.Join(b.KeysDir, keyFile))
	if err != nil {
		b.t.Fatal(err)
	}
	block, _ := pem.Decode(pemData)
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		b.t.Fatal(err)
	}
	signer, err := signature.LoadSigner(k.(ed25519.PrivateKey), crypto.Hash(0))
	if err != nil {
		b.t.Fatal(err)
	}
	ts.ClearSignatures()
	if _, err := ts.Sign(signer); err != nil {
		b.t.Fatal(err)
	}
	data, err := ts.ToBytes(true)
	if err != nil {
		b.t.Fatal(err)
	}
	return data
}

func TestFreezeRefused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	b.Publish("stable", "1.0.0", "")
	if _, err := b.client("stable").Releases(ctx); err != nil {
		t.Fatal(err)
	}
	// Two days later the plane still serves the same (1-day) timestamp.
	late := b.client("stable", func(cfg *Config) { cfg.Now = func() time.Time { return b.Now.Add(48 * time.Hour) } })
	if _, err := late.Releases(ctx); !errors.Is(err, &metadata.ErrExpiredMetadata{}) {
		t.Fatalf("Releases of frozen repository: %v", err)
	}
	if _, _, err := late.Latest(ctx, "0.1.0"); !errors.Is(err, &metadata.ErrExpiredMetadata{}) {
		t.Errorf("Latest on frozen repository: %v", err)
	}
	// Once the vendor refreshes, the same agent proceeds.
	if err := publish.Refresh(ctx, b.RepoDir, b.KeysDir, b.Now.Add(47*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := late.Releases(ctx); err != nil {
		t.Errorf("Releases after the vendor re-signed: %v", err)
	}
}

// lengthOrHashRefused reports whether go-tuf refused a file because it did
// not match the length or hash the signed metadata above it recorded: a
// longer file is cut off while downloading, any other mismatch is caught
// when hashed.
func lengthOrHashRefused(err error) bool {
	return errors.Is(err, &metadata.ErrLengthOrHashMismatch{}) || errors.Is(err, &metadata.ErrDownloadLengthMismatch{})
}

func TestMixAndMatchRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("targets of another channel with the same version", func(t *testing.T) {
		b := setup(t)
		b.Publish("stable", "1.0.0", "")
		b.Publish("beta", "2.0.0-beta.1", "")
		// Both are 1.targets.json, validly signed by the same targets key.
		b.ServeInstead("stable/metadata/1.targets.json", b.repoFile("beta", "metadata", "1.targets.json"))
		_, err := b.client("stable").Releases(ctx)
		if !lengthOrHashRefused(err) {
			t.Fatalf("Releases with another channel's targets: %v", err)
		}
	})
	t.Run("older targets served as the current version", func(t *testing.T) {
		b := setup(t)
		b.Publish("stable", "1.0.0", "")
		b.Publish("stable", "1.1.0", "")
		b.ServeInstead("stable/metadata/2.targets.json", b.repoFile("stable", "metadata", "1.targets.json"))
		_, err := b.client("stable").Releases(ctx)
		if !lengthOrHashRefused(err) {
			t.Fatalf("Releases with mismatched targets version: %v", err)
		}
	})
	t.Run("snapshot of another channel", func(t *testing.T) {
		b := setup(t)
		b.Publish("stable", "1.0.0", "")
		b.Publish("beta", "2.0.0-beta.1", "")
		b.ServeInstead("stable/metadata/1.snapshot.json", b.repoFile("beta", "metadata", "1.snapshot.json"))
		_, err := b.client("stable").Releases(ctx)
		if !lengthOrHashRefused(err) {
			t.Fatalf("Releases with another channel's snapshot: %v", err)
		}
	})
}

func TestRevokedReleaseDisappears(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	b.Publish("stable", "1.0.0", "")
	b.Publish("stable", "1.1.0", "")
	c := b.client("stable")
	before, err := c.Releases(ctx)
	if err != nil || len(before) != 2 {
		t.Fatalf("Releases before revoke = %v, %v", publishtest.Versions(before), err)
	}
	if err := publish.Revoke(ctx, b.RepoDir, b.KeysDir, "stable", "1.1.0", b.Now); err != nil {
		t.Fatal(err)
	}
	after, err := c.Releases(ctx)
	if err != nil || !slices.Equal(publishtest.Versions(after), []string{"1.0.0"}) {
		t.Fatalf("Releases after revoke = %v, %v", publishtest.Versions(after), err)
	}
	if m, ok, _ := c.Latest(ctx, "1.0.0"); ok {
		t.Errorf("Latest offers %s after revoke", m.Version)
	}
	// The revoked release's artifact is no longer a signed target.
	if err := checkArtifact(signedTargets(t, c), before[0].Artifacts["tether-agent"]); !errors.Is(err, ErrUnknownArtifact) {
		t.Errorf("the revoked release's artifact: %v, want ErrUnknownArtifact", err)
	}
}

func TestChannels(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	b.Publish("stable", "1.0.0", "")
	b.Publish("beta", "2.0.0-beta.1", "")

	ms, err := b.client("stable").Releases(ctx)
	if err != nil || !slices.Equal(publishtest.Versions(ms), []string{"1.0.0"}) {
		t.Errorf("stable sees %v, %v", publishtest.Versions(ms), err)
	}
	// A beta repository served to a stable agent (same keys, so TUF alone
	// cannot tell) is refused by the manifest's channel.
	wrong := b.client("stable", func(cfg *Config) {
		cfg.MetadataDir = b.freshAgentDir()
		cfg.RemoteMetadataURL = b.URL + "/tuf/beta/metadata"
		cfg.RemoteTargetsURL = b.URL + "/tuf/beta/targets"
	})
	if _, err := wrong.Releases(ctx); !errors.Is(err, ErrChannelMismatch) {
		t.Errorf("stable agent on beta repository: %v, want ErrChannelMismatch", err)
	}
	// A channel with no repository (or one the plane refuses) fails.
	var e *metadata.ErrDownloadHTTP
	if _, err := b.client("nightly", func(cfg *Config) { cfg.MetadataDir = b.freshAgentDir() }).Releases(ctx); !errors.As(err, &e) || e.StatusCode != http.StatusNotFound {
		t.Errorf("refresh of a missing channel: %v", err)
	}
}

func (b *bundle) freshAgentDir() string {
	b.t.Helper()
	dir := filepath.Join(b.t.TempDir(), "agent")
	if err := Init(dir, b.RootJSON()); err != nil {
		b.t.Fatal(err)
	}
	return dir
}

func TestInit(t *testing.T) {
	t.Parallel()
	b := setup(t)
	root := b.RootJSON()
	if err := Init(b.agentDir, root); err != nil {
		t.Errorf("re-installing the same root: %v", err)
	}
	other := setup(t)
	if err := Init(b.agentDir, other.RootJSON()); !errors.Is(err, ErrAlreadyInitialized) {
		t.Errorf("installing a different root: %v, want ErrAlreadyInitialized", err)
	}

	// A root without its threshold of signatures is refused at install.
	md, err := metadata.Root().FromBytes(root)
	if err != nil {
		t.Fatal(err)
	}
	md.Signatures = md.Signatures[:1]
	weak, err := md.ToBytes(true)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "m")
	if err := Init(dir, weak); !errors.Is(err, &metadata.ErrUnsignedMetadata{}) {
		t.Errorf("Init with 1 of 2 root signatures: %v", err)
	}
	if err := Init(dir, []byte("{}")); err == nil {
		t.Error("Init accepted garbage")
	}
	if _, err := New(Config{MetadataDir: dir, RemoteMetadataURL: "http://x"}); !errors.Is(err, ErrNotInitialized) {
		t.Errorf("New after refused Init: %v, want ErrNotInitialized", err)
	}
}

func TestSignedRequests(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	b.Publish("stable", "1.0.0", "")
	var signed int
	c := b.client("stable", func(cfg *Config) {
		cfg.Sign = func(r *http.Request) error {
			signed++
			r.Header.Set("Tether-Install", "inst-1")
			return nil
		}
	})
	if _, err := c.Releases(ctx); err != nil {
		t.Fatal(err)
	}
	n := len(b.Requests())
	if signed == 0 || signed != n {
		t.Errorf("signed %d of %d requests", signed, n)
	}
	boom := errors.New("no key")
	c = b.client("stable", func(cfg *Config) { cfg.Sign = func(*http.Request) error { return boom } })
	if _, err := c.Releases(ctx); !errors.Is(err, boom) {
		t.Errorf("Releases with failing signer: %v", err)
	}
}
