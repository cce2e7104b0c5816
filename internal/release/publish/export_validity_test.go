package publish_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tetherhq/tether/internal/release"
	"github.com/tetherhq/tether/internal/release/publish"
	"github.com/tetherhq/tether/internal/updater"
	"github.com/tetherhq/tether/internal/updater/airgap"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

type timestampFile struct {
	Signed struct {
		Version int64     `json:"version"`
		Expires time.Time `json:"expires"`
	} `json:"signed"`
}

func bundleTimestamp(t *testing.T, bundle []byte) timestampFile {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(bundle))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("no metadata/timestamp.json in the bundle: %v", err)
		}
		if h.Name == "metadata/timestamp.json" {
			var ts timestampFile
			data, _ := io.ReadAll(tr)
			if err := json.Unmarshal(data, &ts); err != nil {
				t.Fatal(err)
			}
			return ts
		}
	}
}

// An air-gapped hand-off can take weeks: the exported copy stays valid for
// the asked window while the online channel keeps short-lived metadata
// (and a newer version, so online agents never step back to the export).
func TestExportValidFor(t *testing.T) {
	dir := t.TempDir()
	keys, repo := filepath.Join(dir, "keys"), filepath.Join(dir, "repo")
	now := time.Now().UTC()
	init, err := publish.InitKeys(keys, publish.KeyOptions{RootKeys: 1, RootThreshold: 1}, now)
	if err != nil {
		t.Fatal(err)
	}
	art := filepath.Join(dir, "docsvc")
	os.WriteFile(art, []byte("binary"), 0o755)
	if _, err := publish.Publish(context.Background(), repo, keys, publish.PublishOptions{
		Version: "1.0.0", Channel: "stable", Artifacts: map[string]string{"docsvc": art}, MinFrom: "0.9.0", SchemaMin: 1, SchemaMax: 1,
	}, now); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := publish.ExportValidFor(context.Background(), repo, keys, "stable", 30*24*time.Hour, &buf, now); err != nil {
		t.Fatal(err)
	}
	exported := bundleTimestamp(t, buf.Bytes())
	if exported.Signed.Expires.Before(now.Add(29 * 24 * time.Hour)) {
		t.Fatalf("exported timestamp expires %s, want about 30 days out", exported.Signed.Expires)
	}
	var online timestampFile
	data, _ := os.ReadFile(filepath.Join(repo, "stable", "metadata", "timestamp.json"))
	if err := json.Unmarshal(data, &online); err != nil {
		t.Fatal(err)
	}
	if online.Signed.Expires.After(now.Add(2*24*time.Hour)) || online.Signed.Version <= exported.Signed.Version {
		t.Fatalf("online timestamp v%d expires %s; want a newer, short-lived one than the export's v%d", online.Signed.Version, online.Signed.Expires, exported.Signed.Version)
	}

	root, _ := os.ReadFile(init.RootPath)
	// Imported 29 days on, the export still verifies; 31 days on, it has
	// expired (each into a fresh copy of the trusted root).
	fresh := func() string {
		md := filepath.Join(t.TempDir(), "tuf")
		if err := updater.Init(md, root); err != nil {
			t.Fatal(err)
		}
		return md
	}
	ms, err := airgap.ImportBundle(context.Background(), fresh(), t.TempDir(), bytes.NewReader(buf.Bytes()), now.Add(29*24*time.Hour))
	if err != nil || len(ms) != 1 || ms[0].Version != "1.0.0" {
		t.Fatalf("import: %v, %v", ms, err)
	}
	if _, err := airgap.ImportBundle(context.Background(), fresh(), t.TempDir(), bytes.NewReader(buf.Bytes()), now.Add(31*24*time.Hour)); !errors.Is(err, &metadata.ErrExpiredMetadata{}) {
		t.Fatalf("import after the export expired: %v, want ErrExpiredMetadata", err)
	}

	if err := publish.ExportValidFor(context.Background(), repo, keys, "stable", 365*24*time.Hour, io.Discard, now); !errors.Is(err, release.ErrInvalid) {
		t.Fatalf("a year's validity: %v, want ErrInvalid", err)
	}
}
