package ctl_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tetherhq/tether/internal/release/publish"
)

func TestAirgapImport(t *testing.T) {
	vendor := t.TempDir()
	keys, repo := filepath.Join(vendor, "keys"), filepath.Join(vendor, "repo")
	init, err := publish.InitKeys(keys, publish.KeyOptions{RootKeys: 1, RootThreshold: 1}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	artifact := filepath.Join(vendor, "docsvc")
	os.WriteFile(artifact, []byte("the docsvc binary"), 0o755)
	if _, err := publish.Publish(context.Background(), repo, keys, publish.PublishOptions{
		Version: "1.4.0", Channel: "stable", Artifacts: map[string]string{"docsvc": artifact}, MinFrom: "1.3.0",
		SchemaMin: 1, SchemaMax: 3,
	}, time.Now()); err != nil {
		t.Fatal(err)
	}
	var bundle bytes.Buffer
	if err := publish.Export(repo, "stable", &bundle); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(vendor, "stable.tar.gz")
	os.WriteFile(file, bundle.Bytes(), 0o600)

	install := t.TempDir()
	if _, err := run(t, "airgap", "import", file, "--data-dir", install); err == nil || !strings.Contains(err.Error(), "--trusted-root") {
		t.Fatalf("import without any trusted root: %v, want a pointer to --trusted-root", err)
	}
	out, err := run(t, "airgap", "import", file, "--data-dir", install, "--trusted-root", init.RootPath)
	if err != nil || !strings.Contains(out, "1.4.0") {
		t.Fatalf("import: %q, %v", out, err)
	}
	imported := filepath.Join(install, "airgap-targets")
	var found bool
	filepath.WalkDir(imported, func(p string, d os.DirEntry, _ error) error {
		if b, _ := os.ReadFile(p); d != nil && !d.IsDir() && string(b) == "the docsvc binary" {
			found = true
		}
		return nil
	})
	if !found {
		t.Fatalf("the verified artifact is not under %s", imported)
	}

	// A bundle signed by someone else is refused.
	other := t.TempDir()
	if _, err := publish.InitKeys(filepath.Join(other, "keys"), publish.KeyOptions{RootKeys: 1, RootThreshold: 1}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := publish.Publish(context.Background(), filepath.Join(other, "repo"), filepath.Join(other, "keys"), publish.PublishOptions{
		Version: "9.9.9", Channel: "stable", Artifacts: map[string]string{"docsvc": artifact}, MinFrom: "1.0.0", SchemaMin: 1, SchemaMax: 1,
	}, time.Now()); err != nil {
		t.Fatal(err)
	}
	bundle.Reset()
	publish.Export(filepath.Join(other, "repo"), "stable", &bundle)
	forged := filepath.Join(other, "forged.tar.gz")
	os.WriteFile(forged, bundle.Bytes(), 0o600)
	if out, err := run(t, "airgap", "import", forged, "--data-dir", install); err == nil || strings.Contains(out, "9.9.9") {
		t.Fatalf("a bundle from other keys was imported: %q, %v", out, err)
	}
}
