package publish

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/tetherhq/tether/internal/release"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const testImage = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/tether/api@sha256:" +
	"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

type bundle struct {
	keysDir, repoDir string
	artifact         string // path of a local artifact file
	artifactBytes    []byte
}

func setup(t *testing.T) bundle {
	t.Helper()
	b := bundle{keysDir: filepath.Join(t.TempDir(), "keys"), repoDir: t.TempDir()}
	if _, err := InitKeys(b.keysDir, KeyOptions{}, t0); err != nil {
		t.Fatalf("InitKeys: %v", err)
	}
	b.artifactBytes = []byte("#!/bin/sh\necho tether agent\n")
	b.artifact = filepath.Join(t.TempDir(), "tether-agent")
	if err := os.WriteFile(b.artifact, b.artifactBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

func (b bundle) publish(t *testing.T, channel, version string, now time.Time) release.Manifest {
	t.Helper()
	m, err := Publish(context.Background(), b.repoDir, b.keysDir, PublishOptions{
		Version: version, Channel: channel,
		Artifacts: map[string]string{"tether-agent": b.artifact},
		Images:    map[string]string{"api": testImage},
		SchemaMin: 1, SchemaMax: 3, Notes: "fixes",
	}, now)
	if err != nil {
		t.Fatalf("Publish %s %s: %v", channel, version, err)
	}
	return m
}

// verifiedRepo checks the channel's current metadata chain with go-tuf's own
// verification against the keys directory's root.
func (b bundle) verifiedRepo(t *testing.T, channel string) *channelRepo {
	t.Helper()
	root, err := metadata.Root().FromFile(filepath.Join(b.keysDir, "root.json"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := loadRepo(b.repoDir, channel)
	if err != nil {
		t.Fatalf("loadRepo: %v", err)
	}
	for role, md := range map[string]any{metadata.TARGETS: r.targets, metadata.SNAPSHOT: r.snapshot, metadata.TIMESTAMP: r.timestamp} {
		if err := root.VerifyDelegate(role, md); err != nil {
			t.Fatalf("%s does not verify against root: %v", role, err)
		}
	}
	return r
}

func TestInitKeys(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	res, err := InitKeys(dir, KeyOptions{RootKeys: 5, RootThreshold: 3}, t0)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(dir)
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("keys dir mode = %v, %v; want 0700", st.Mode().Perm(), err)
	}
	for _, f := range []string{"root-1.key", "root-5.key", "targets.key", "snapshot.key", "timestamp.key", "license.key"} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, %v; want 0600", f, st.Mode().Perm(), err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "root-6.key")); err == nil {
		t.Error("made more root keys than asked")
	}
	if len(res.RootKeyIDs) != 5 || res.RootThreshold != 3 || len(res.OnlineKeyIDs) != 3 {
		t.Errorf("result = %+v", res)
	}

	root, err := metadata.Root().FromFile(res.RootPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := root.VerifyDelegate(metadata.ROOT, root); err != nil {
		t.Fatalf("root does not verify itself: %v", err)
	}
	if got := root.Signed.Roles[metadata.ROOT].Threshold; got != 3 {
		t.Errorf("root threshold = %d", got)
	}
	if !root.Signed.ConsistentSnapshot {
		t.Error("consistent snapshots off")
	}
	// Below threshold: two signatures must not be enough.
	root.Signatures = root.Signatures[:2]
	if err := root.VerifyDelegate(metadata.ROOT, root); err == nil {
		t.Error("root verified with 2 of 3 required signatures")
	}

	priv, err := LoadLicenseKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := LoadLicensePublicKey(res.LicensePublicPath)
	if err != nil {
		t.Fatal(err)
	}
	if !ed25519.Verify(pub, []byte("x"), ed25519.Sign(priv, []byte("x"))) {
		t.Error("license.pub does not match license.key")
	}

	if _, err := InitKeys(dir, KeyOptions{}, t0); !errors.Is(err, ErrExists) {
		t.Errorf("second InitKeys: %v, want ErrExists", err)
	}
}

func TestInitKeysOptions(t *testing.T) {
	tests := []struct {
		name    string
		o       KeyOptions
		wantErr bool
	}{
		{"defaults", KeyOptions{}, false},
		{"single key", KeyOptions{RootKeys: 1}, false},
		{"threshold above keys", KeyOptions{RootKeys: 2, RootThreshold: 3}, true},
		{"negative keys", KeyOptions{RootKeys: -1, RootThreshold: 1}, true},
		{"tiny expiry", KeyOptions{TimestampExpiry: time.Second}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := InitKeys(filepath.Join(t.TempDir(), "k"), tt.o, t0)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, release.ErrInvalid) {
				t.Errorf("err = %v, want ErrInvalid", err)
			}
		})
	}
}

func TestPublishListRevoke(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	m := b.publish(t, "stable", "1.0.0", t0)
	b.publish(t, "stable", "1.1.0", t0.Add(time.Hour))
	b.publish(t, "beta", "2.0.0-rc.1", t0.Add(time.Hour))

	sum := sha256.Sum256(b.artifactBytes)
	a := m.Artifacts["tether-agent"]
	if a.SHA256 != hex.EncodeToString(sum[:]) || a.Size != int64(len(b.artifactBytes)) || a.Target != "artifacts/1.0.0/tether-agent" {
		t.Errorf("artifact = %+v", a)
	}
	served, err := os.ReadFile(filepath.Join(b.repoDir, "stable", "targets", "artifacts", "1.0.0", a.SHA256+".tether-agent"))
	if err != nil || !bytes.Equal(served, b.artifactBytes) {
		t.Fatalf("artifact not stored under its hash-prefixed name: %v", err)
	}

	r := b.verifiedRepo(t, "stable")
	if r.targets.Signed.Version != 2 || r.snapshot.Signed.Version != 2 || r.timestamp.Signed.Version != 2 {
		t.Errorf("versions targets/snapshot/timestamp = %d/%d/%d, want 2/2/2",
			r.targets.Signed.Version, r.snapshot.Signed.Version, r.timestamp.Signed.Version)
	}
	if _, err := os.Stat(filepath.Join(b.repoDir, "stable", "metadata", "1.root.json")); err != nil {
		t.Errorf("channel does not serve the shared root: %v", err)
	}

	got := versions(t, b.repoDir, "stable")
	if want := []string{"1.1.0", "1.0.0"}; !slices.Equal(got, want) {
		t.Errorf("List stable = %v, want %v", got, want)
	}
	if got := versions(t, b.repoDir, "beta"); !slices.Equal(got, []string{"2.0.0-rc.1"}) {
		t.Errorf("List beta = %v", got)
	}
	if got := versions(t, b.repoDir, "nightly"); len(got) != 0 {
		t.Errorf("List of an empty channel = %v", got)
	}

	_, err = Publish(ctx, b.repoDir, b.keysDir, PublishOptions{Version: "1.0.0", Channel: "stable", SchemaMax: 1}, t0)
	if !errors.Is(err, ErrExists) {
		t.Errorf("republish: %v, want ErrExists", err)
	}

	if err := Revoke(ctx, b.repoDir, b.keysDir, "stable", "1.1.0", t0.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	r = b.verifiedRepo(t, "stable")
	for p := range r.targets.Signed.Targets {
		if strings.Contains(p, "1.1.0") {
			t.Errorf("revoked target %s still signed", p)
		}
	}
	list, err := List(b.repoDir, "stable")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Version != "1.1.0" || !list[0].Revoked || list[1].Revoked {
		t.Errorf("List after revoke = %+v", list)
	}
	_, err = Publish(ctx, b.repoDir, b.keysDir, PublishOptions{Version: "1.1.0", Channel: "stable", SchemaMax: 1}, t0)
	if !errors.Is(err, ErrExists) {
		t.Errorf("publish of a revoked version: %v, want ErrExists", err)
	}
	if err := Revoke(ctx, b.repoDir, b.keysDir, "stable", "9.9.9", t0); !errors.Is(err, ErrNotFound) {
		t.Errorf("revoke unknown: %v, want ErrNotFound", err)
	}
}

func versions(t *testing.T, repoDir, channel string) []string {
	t.Helper()
	list, err := List(repoDir, channel)
	if err != nil {
		t.Fatalf("List %s: %v", channel, err)
	}
	var out []string
	for _, m := range list {
		out = append(out, m.Version)
	}
	return out
}

func TestPublishRefusesBadInput(t *testing.T) {
	b := setup(t)
	good := PublishOptions{Version: "1.0.0", Channel: "stable", Images: map[string]string{"api": testImage}, SchemaMax: 2}
	tests := []struct {
		name   string
		change func(*PublishOptions)
	}{
		{"version not semver", func(o *PublishOptions) { o.Version = "v1.0" }},
		{"leading zero", func(o *PublishOptions) { o.Version = "01.0.0" }},
		// A version the agent could not report to the plane (wire.ValidSemver).
		{"build metadata", func(o *PublishOptions) { o.Version = "1.1.0+build.5" }},
		{"pre-release word", func(o *PublishOptions) { o.Version = "1.1.0-confidentialmergerplan" }},
		{"channel upper case", func(o *PublishOptions) { o.Channel = "Stable" }},
		{"channel traversal", func(o *PublishOptions) { o.Channel = "../x" }},
		{"channel too long", func(o *PublishOptions) { o.Channel = strings.Repeat("a", 33) }},
		{"image by tag", func(o *PublishOptions) { o.Images = map[string]string{"api": "tether/api:1.0.0"} }},
		{"image short digest", func(o *PublishOptions) { o.Images = map[string]string{"api": "tether/api@sha256:abc"} }},
		{"artifact name with slash", func(o *PublishOptions) { o.Artifacts = map[string]string{"../x": b.artifact} }},
		{"min_from after version", func(o *PublishOptions) { o.MinFrom = "2.0.0" }},
		{"schema range reversed", func(o *PublishOptions) { o.SchemaMin, o.SchemaMax = 3, 2 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := good
			tt.change(&o)
			_, err := Publish(context.Background(), b.repoDir, b.keysDir, o, t0)
			if !errors.Is(err, release.ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
		})
	}
	if ch, _ := Channels(b.repoDir); len(ch) != 0 {
		t.Errorf("refused publishes created channels %v", ch)
	}
	_, err := Publish(context.Background(), b.repoDir, b.keysDir, PublishOptions{Version: "1.0.0", Channel: "stable", SchemaMax: 1,
		Artifacts: map[string]string{"x": filepath.Join(t.TempDir(), "missing")}}, t0)
	if err == nil {
		t.Error("publish with a missing artifact file succeeded")
	}
}

func TestRefresh(t *testing.T) {
	b := setup(t)
	b.publish(t, "stable", "1.0.0", t0)
	ctx := context.Background()
	version := func() (ts, snap, targets int64) {
		r := b.verifiedRepo(t, "stable")
		return r.timestamp.Signed.Version, r.snapshot.Signed.Version, r.targets.Signed.Version
	}

	// Fresh metadata is left alone.
	if err := Refresh(ctx, b.repoDir, b.keysDir, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if ts, _, _ := version(); ts != 1 {
		t.Errorf("timestamp re-signed while fresh: version %d", ts)
	}
	// Past half of the 1-day timestamp lifetime: only the timestamp moves.
	if err := Refresh(ctx, b.repoDir, b.keysDir, t0.Add(13*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if ts, snap, tg := version(); ts != 2 || snap != 1 || tg != 1 {
		t.Errorf("after 13h versions = %d/%d/%d, want 2/1/1", ts, snap, tg)
	}
	// Past half of the 7-day snapshot lifetime.
	if err := Refresh(ctx, b.repoDir, b.keysDir, t0.Add(4*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if ts, snap, tg := version(); ts != 3 || snap != 2 || tg != 1 {
		t.Errorf("after 4d versions = %d/%d/%d, want 3/2/1", ts, snap, tg)
	}
	r := b.verifiedRepo(t, "stable")
	if want := t0.Add(5 * 24 * time.Hour); !r.timestamp.Signed.Expires.Equal(want) {
		t.Errorf("timestamp expires %v, want %v", r.timestamp.Signed.Expires, want)
	}
	// Past half of the 90-day targets lifetime: everything moves.
	if err := Refresh(ctx, b.repoDir, b.keysDir, t0.Add(50*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if ts, snap, tg := version(); ts != 4 || snap != 3 || tg != 2 {
		t.Errorf("after 50d versions = %d/%d/%d, want 4/3/2", ts, snap, tg)
	}
}

func TestExport(t *testing.T) {
	b := setup(t)
	m := b.publish(t, "stable", "1.0.0", t0)
	b.publish(t, "stable", "1.1.0", t0)
	if err := Revoke(context.Background(), b.repoDir, b.keysDir, "stable", "1.1.0", t0); err != nil {
		t.Fatal(err)
	}
	var buf1, buf2 bytes.Buffer
	if err := Export(b.repoDir, "stable", &buf1); err != nil {
		t.Fatal(err)
	}
	if err := Export(b.repoDir, "stable", &buf2); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf1.Bytes(), buf2.Bytes()) {
		t.Error("export is not deterministic")
	}
	names := tarNames(t, buf1.Bytes())
	r := b.verifiedRepo(t, "stable")
	want := []string{
		"metadata/1.root.json",
		"metadata/" + strconv.FormatInt(r.snapshot.Signed.Version, 10) + ".snapshot.json",
		"metadata/" + strconv.FormatInt(r.targets.Signed.Version, 10) + ".targets.json",
		"metadata/timestamp.json",
		"targets/artifacts/1.0.0/" + m.Artifacts["tether-agent"].SHA256 + ".tether-agent",
	}
	for _, w := range want {
		if !slices.Contains(names, w) {
			t.Errorf("export lacks %s; has %v", w, names)
		}
	}
	for _, n := range names {
		if strings.Contains(n, "1.1.0") || strings.HasPrefix(n, "revoked") || strings.Contains(n, ".lock") {
			t.Errorf("export carries %s", n)
		}
	}
	if len(names) != len(want)+1 { // + the 1.0.0 manifest
		t.Errorf("export has %d entries: %v", len(names), names)
	}
	if err := Export(b.repoDir, "nightly", io.Discard); !errors.Is(err, ErrNotFound) {
		t.Errorf("export of missing channel: %v", err)
	}
}

func tarNames(t *testing.T, data []byte) []string {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
}

func TestRepoFile(t *testing.T) {
	tests := []struct {
		channel, area, name string
		want                string // relative to repoDir; "" means refused
	}{
		{"stable", "metadata", "timestamp.json", "stable/metadata/timestamp.json"},
		{"stable", "targets", "releases/abc.1.0.0.json", "stable/targets/releases/abc.1.0.0.json"},
		{"stable", "metadata", "../keys/targets.key", ""},
		{"stable", "targets", "releases/../../x", ""},
		{"stable", "targets", "/etc/passwd", ""},
		{"stable", "targets", ".lock", ""},
		{"stable", "metadata", "a/b.json", ""},
		{"stable", "revoked", "1.0.0.json", ""},
		{"..", "metadata", "timestamp.json", ""},
		{"stable", "targets", "a//b", ""},
	}
	for _, tt := range tests {
		got, err := RepoFile("/repo", tt.channel, tt.area, tt.name)
		if tt.want == "" {
			if err == nil {
				t.Errorf("RepoFile(%q, %q, %q) = %q, want refusal", tt.channel, tt.area, tt.name, got)
			}
			continue
		}
		if err != nil || got != filepath.Join("/repo", tt.want) {
			t.Errorf("RepoFile(%q, %q, %q) = %q, %v", tt.channel, tt.area, tt.name, got, err)
		}
	}
}
