package boundary

import (
	"slices"
	"strings"
	"testing"
)

// The packages the agent and the plane share hold only what both sides
// need: none may link code only the vendor runs, or the agent would carry
// it into the customer's account.
func TestSharedPackagesLinkNoVendorCode(t *testing.T) {
	for _, pkg := range []string{"wire", "ledger", "license", "reqsign", "updater", "updater/airgap", "release", "atomicfile", "diagspool"} {
		g := MustDeps(t, "github.com/tetherhq/tether/internal/"+pkg)
		for _, p := range g.Linking(VendorOnly()) {
			t.Errorf("internal/%s links %s, which only the vendor runs", pkg, p)
		}
	}
}

// Deps lists the shipped build whatever machine runs the tests: no cgo,
// and Linux's files, not another platform's.
func TestDepsListsTheShippedBuild(t *testing.T) {
	t.Setenv("CGO_ENABLED", "1")
	t.Setenv("GOOS", "windows")
	g := MustDeps(t, "github.com/tetherhq/tether/cmd/tether-agent")
	var paths []string
	for _, p := range g {
		paths = append(paths, p.ImportPath)
	}
	if slices.Contains(paths, "runtime/cgo") {
		t.Error("the graph has runtime/cgo; the agent is built with CGO_ENABLED=0")
	}
	if !slices.Contains(paths, "internal/runtime/syscall/linux") || slices.Contains(paths, "internal/syscall/windows") {
		t.Error("the graph is not Linux's")
	}
	for _, p := range g.ThirdParty() {
		if !strings.Contains(strings.Split(p, "/")[0], ".") {
			t.Errorf("ThirdParty has %s, a standard-library package", p)
		}
		if strings.HasPrefix(p, "github.com/tetherhq/tether/") {
			t.Errorf("ThirdParty has %s, a package of this module", p)
		}
	}
	lines, err := g.Lines()
	if err != nil {
		t.Fatal(err)
	}
	if lines["github.com/tetherhq/tether/internal/agent"] == 0 || len(lines) != len(g.Linking([]string{"github.com/tetherhq/tether"})) {
		t.Errorf("Lines counted %v; want every in-module package of the graph", lines)
	}
}
