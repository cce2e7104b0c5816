package diagspool

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tetherhq/tether/internal/boundary"
)

// A bundle without its manifest (one an older agent built, or one whose
// manifest was removed) is refused, not read by name: nothing would show
// its files are the ones the agent built.
func TestReadBundleWithoutManifest(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "bundle"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"agent-log.txt", "config.json", "stray.swp"} {
		if err := os.WriteFile(filepath.Join(dir, "bundle", name), []byte(name), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	files, err := readBundle(dir)
	if !errors.Is(err, ErrBundleChanged) || !strings.Contains(err.Error(), "manifest.json is missing") || files != nil {
		t.Fatalf("bundle without a manifest: %v, %v; want ErrBundleChanged naming manifest.json", files, err)
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
