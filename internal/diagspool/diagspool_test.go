package diagspool

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tetherhq/tether/internal/boundary"
)

// A bundle built before manifests were written holds the collected files
// and nothing else.
func TestReadBundleWithoutManifest(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "bundle"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, name := range append(legacyFiles(), "stray.swp") {
		if err := os.WriteFile(filepath.Join(dir, "bundle", name), []byte(name), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	files, err := readBundle(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, f.Name)
	}
	if strings.Join(names, ",") != strings.Join(legacyFiles(), ",") {
		t.Fatalf("bundle without a manifest = %v, want %v", names, legacyFiles())
	}
}

// tetherctl links this package, so it may not pull in the agent or any
// package that reads documents, their storage or their queue.
func TestImportsNeitherAgentNorDocuments(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	forbidden := append(boundary.DocumentReaders(), boundary.AgentPackage)
	for _, p := range strings.Fields(string(out)) {
		if boundary.Matches(p, forbidden) {
			t.Errorf("diagspool links %s", p)
		}
	}
}
