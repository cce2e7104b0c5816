// Package releasetest builds the product's binaries as one release for
// tests: version set at link time, optional build tags (upgradetest_v2,
// upgradetest_unhealthy) that change a test release's behaviour without
// touching the product's normal build.
package releasetest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Build compiles docsvc, tether-agent and tether-plane into dir with
// docsvc's and the agent's Version set to version, and returns each
// binary's path by name.
func Build(t testing.TB, dir, version string, tags ...string) map[string]string {
	t.Helper()
	root := moduleRoot(t)
	ldflags := "-s -w -X github.com/tetherhq/tether/internal/docsvc.Version=" + version +
		" -X github.com/tetherhq/tether/internal/agent.Version=" + version
	args := []string{"build", "-ldflags", ldflags}
	if len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	args = append(args, "-o", dir+string(filepath.Separator), "./cmd/docsvc", "./cmd/tether-agent", "./cmd/tether-plane")
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	bins := map[string]string{}
	for _, n := range []string{"docsvc", "tether-agent", "tether-plane"} {
		bins[n] = filepath.Join(dir, n)
	}
	return bins
}

func moduleRoot(t testing.TB) string {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}
