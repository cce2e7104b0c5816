package airgap

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/tetherhq/tether/internal/release/publish/publishtest"
	"github.com/tetherhq/tether/internal/updater"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// agentDir is a fresh agent metadata directory trusting r's root.
func agentDir(t *testing.T, r *publishtest.Repo) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "agent")
	if err := updater.Init(dir, r.RootJSON()); err != nil {
		t.Fatal(err)
	}
	return dir
}

func lengthOrHashRefused(err error) bool {
	return errors.Is(err, &metadata.ErrLengthOrHashMismatch{}) || errors.Is(err, &metadata.ErrDownloadLengthMismatch{})
}

type tarEntry struct {
	hdr  tar.Header
	data []byte
}

func untar(t *testing.T, data []byte) []tarEntry {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var out []tarEntry
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		d, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, tarEntry{*h, d})
	}
}

func retar(t *testing.T, entries []tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		h := e.hdr
		h.Size = int64(len(e.data))
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// editBundle rewrites the entry whose name starts with prefix.
func editBundle(t *testing.T, data []byte, prefix string, edit func([]byte) []byte) []byte {
	t.Helper()
	entries := untar(t, data)
	found := false
	for i := range entries {
		if strings.HasPrefix(entries[i].hdr.Name, prefix) {
			entries[i].data = edit(entries[i].data)
			found = true
		}
	}
	if !found {
		t.Fatalf("bundle has no %s", prefix)
	}
	return retar(t, entries)
}

func TestImportBundle(t *testing.T) {
	b := publishtest.New(t)
	ctx := context.Background()
	b.Publish("stable", "1.0.0", "")
	m11 := b.Publish("stable", "1.1.0", "1.0.0")
	targetsDir := t.TempDir()
	dir := agentDir(t, b)

	ms, err := ImportBundle(ctx, dir, targetsDir, bytes.NewReader(b.Export("stable")), b.Now)
	if err != nil {
		t.Fatal(err)
	}
	if got := publishtest.Versions(ms); !slices.Equal(got, []string{"1.1.0", "1.0.0"}) {
		t.Fatalf("imported %v", got)
	}
	got, err := os.ReadFile(BundleArtifactPath(targetsDir, m11.Artifacts["tether-agent"]))
	if err != nil || !bytes.Equal(got, publishtest.ArtifactBytes("1.1.0")) {
		t.Fatalf("kept artifact %q, %v", got, err)
	}

	// A later online refresh continues from the imported trusted state.
	c, err := updater.New(updater.Config{
		MetadataDir:       dir,
		RemoteMetadataURL: b.URL + "/tuf/stable/metadata",
		RemoteTargetsURL:  b.URL + "/tuf/stable/targets",
		Now:               func() time.Time { return b.Now.Add(time.Minute) },
		Channel:           "stable",
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Releases(ctx); err != nil {
		t.Errorf("online refresh after import: %v", err)
	}
}

func TestImportBundleRefusesTampering(t *testing.T) {
	b := publishtest.New(t)
	ctx := context.Background()
	m := b.Publish("stable", "1.0.0", "")
	good := b.Export("stable")
	stranger := publishtest.New(t)
	stranger.Publish("stable", "1.0.0", "")

	tests := []struct {
		name  string
		data  []byte
		check func(error) bool
	}{
		{"artifact bytes changed", editBundle(t, good, "targets/artifacts/", func(d []byte) []byte {
			return append(d[:len(d)-1:len(d)-1], d[len(d)-1]^0xff)
		}), lengthOrHashRefused},
		{"manifest changed", editBundle(t, good, "targets/releases/", func(d []byte) []byte {
			return bytes.Replace(d, []byte(`"max": 2`), []byte(`"max": 3`), 1)
		}), lengthOrHashRefused},
		{"timestamp expiry pushed out", editBundle(t, good, "metadata/timestamp.json", func(d []byte) []byte {
			i := bytes.Index(d, []byte(`"expires": "`)) + len(`"expires": "`)
			return append(append(append([]byte{}, d[:i]...), "2099"...), d[i+4:]...)
		}), func(err error) bool { return errors.Is(err, &metadata.ErrUnsignedMetadata{}) }},
		{"signed by another vendor", stranger.Export("stable"),
			func(err error) bool { return errors.Is(err, &metadata.ErrUnsignedMetadata{}) }},
		{"not gzip", []byte("PK\x03\x04 a zip"), func(err error) bool { return errors.Is(err, ErrBadBundle) }},
		{"path traversal", retar(t, append(untar(t, good), tarEntry{tar.Header{Name: "targets/../../etc/x", Typeflag: tar.TypeReg, Mode: 0o644}, []byte("x")})),
			func(err error) bool { return errors.Is(err, ErrBadBundle) }},
		{"symlink", retar(t, append(untar(t, good), tarEntry{tar.Header{Name: "targets/link", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"}, nil})),
			func(err error) bool { return errors.Is(err, ErrBadBundle) }},
		{"metadata missing", retar(t, slices.DeleteFunc(untar(t, good), func(e tarEntry) bool { return e.hdr.Name == "metadata/timestamp.json" })),
			func(err error) bool { return errors.Is(err, &metadata.ErrDownloadHTTP{}) }},
		{"empty", retar(t, nil), func(err error) bool { return errors.Is(err, ErrBadBundle) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			targetsDir := t.TempDir()
			_, err := ImportBundle(ctx, agentDir(t, b), targetsDir, bytes.NewReader(tt.data), b.Now)
			if !tt.check(err) {
				t.Fatalf("ImportBundle: %v", err)
			}
			if _, err := os.Stat(BundleArtifactPath(targetsDir, m.Artifacts["tether-agent"])); err == nil {
				t.Error("artifact kept from a refused bundle")
			}
		})
	}
}

func TestImportBundleRollback(t *testing.T) {
	b := publishtest.New(t)
	ctx := context.Background()
	b.Publish("stable", "1.0.0", "")
	old := b.Export("stable")
	b.Publish("stable", "1.1.0", "")
	newer := b.Export("stable")
	dir := agentDir(t, b)
	if _, err := ImportBundle(ctx, dir, t.TempDir(), bytes.NewReader(newer), b.Now); err != nil {
		t.Fatal(err)
	}
	_, err := ImportBundle(ctx, dir, t.TempDir(), bytes.NewReader(old), b.Now)
	if !errors.Is(err, &metadata.ErrBadVersionNumber{}) {
		t.Fatalf("importing an older bundle: %v", err)
	}
}

func TestImportBundleNeedsRoot(t *testing.T) {
	b := publishtest.New(t)
	b.Publish("stable", "1.0.0", "")
	_, err := ImportBundle(context.Background(), t.TempDir(), t.TempDir(), bytes.NewReader(b.Export("stable")), b.Now)
	if !errors.Is(err, updater.ErrNotInitialized) {
		t.Fatalf("import without a trusted root: %v", err)
	}
}

func FuzzReadBundle(f *testing.F) {
	b := publishtest.New(f)
	b.Publish("stable", "1.0.0", "")
	f.Add(b.Export("stable"))
	f.Add([]byte{0x1f, 0x8b})
	f.Add([]byte("not a bundle"))
	f.Fuzz(func(t *testing.T, data []byte) {
		files, err := readBundle(context.Background(), bytes.NewReader(data))
		if err != nil {
			return
		}
		names := make([]string, 0, len(files))
		for name := range files {
			if !bundleName(name) {
				t.Fatalf("accepted bad name %q", name)
			}
			names = append(names, name)
		}
		sort.Strings(names)
		if len(names) == 0 {
			t.Fatal("accepted an empty bundle")
		}
	})
}
