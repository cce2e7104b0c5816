package updater

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

	"github.com/tetherhq/tether/internal/release/publish"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

func (b *bundle) export(channel string) []byte {
	b.t.Helper()
	var buf bytes.Buffer
	if err := publish.Export(b.repoDir, channel, &buf); err != nil {
		b.t.Fatal(err)
	}
	return buf.Bytes()
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
	b := setup(t)
	ctx := context.Background()
	b.publish("stable", "1.0.0", "")
	m11 := b.publish("stable", "1.1.0", "1.0.0")
	targetsDir := t.TempDir()

	ms, err := ImportBundle(ctx, b.agentDir, targetsDir, bytes.NewReader(b.export("stable")))
	if err != nil {
		t.Fatal(err)
	}
	if got := versionsOf(ms); !slices.Equal(got, []string{"1.1.0", "1.0.0"}) {
		t.Fatalf("imported %v", got)
	}
	got, err := os.ReadFile(BundleArtifactPath(targetsDir, m11.Artifacts["tether-agent"]))
	if err != nil || !bytes.Equal(got, append([]byte("1.1.0:"), b.artifact...)) {
		t.Fatalf("kept artifact %q, %v", got, err)
	}

	// A later online refresh continues from the imported trusted state.
	if err := b.client("stable").Refresh(ctx); err != nil {
		t.Errorf("online refresh after import: %v", err)
	}
}

func TestImportBundleRefusesTampering(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	m := b.publish("stable", "1.0.0", "")
	good := b.export("stable")
	stranger := setup(t)
	stranger.publish("stable", "1.0.0", "")

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
		{"signed by another vendor", stranger.export("stable"),
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
			_, err := ImportBundle(ctx, b.freshAgentDir(), targetsDir, bytes.NewReader(tt.data))
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
	b := setup(t)
	ctx := context.Background()
	b.publish("stable", "1.0.0", "")
	old := b.export("stable")
	b.publish("stable", "1.1.0", "")
	newer := b.export("stable")
	if _, err := ImportBundle(ctx, b.agentDir, t.TempDir(), bytes.NewReader(newer)); err != nil {
		t.Fatal(err)
	}
	_, err := ImportBundle(ctx, b.agentDir, t.TempDir(), bytes.NewReader(old))
	if !errors.Is(err, &metadata.ErrBadVersionNumber{}) {
		t.Fatalf("importing an older bundle: %v", err)
	}
}

func TestImportBundleNeedsRoot(t *testing.T) {
	b := setup(t)
	b.publish("stable", "1.0.0", "")
	_, err := ImportBundle(context.Background(), t.TempDir(), t.TempDir(), bytes.NewReader(b.export("stable")))
	if !errors.Is(err, ErrNotInitialized) {
		t.Fatalf("import without a trusted root: %v", err)
	}
}

func FuzzReadBundle(f *testing.F) {
	dir := f.TempDir()
	keys, repo := filepath.Join(dir, "keys"), filepath.Join(dir, "repo")
	if _, err := publish.InitKeys(keys, publish.KeyOptions{RootKeys: 1}, testNow()); err != nil {
		f.Fatal(err)
	}
	if _, err := publish.Publish(context.Background(), repo, keys, publish.PublishOptions{Version: "1.0.0", Channel: "stable", SchemaMax: 1}, testNow()); err != nil {
		f.Fatal(err)
	}
	var buf bytes.Buffer
	if err := publish.Export(repo, "stable", &buf); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
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
