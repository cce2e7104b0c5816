package main

import (
	"flag"
	"testing"

	"github.com/tetherhq/tether/internal/boundary"
)

var update = flag.Bool("update", false, "rewrite deps.txt from go list")

// tether-upgrade can change the services stack, so it must not be able to
// talk to the vendor: it links, of this module, only what applying a
// staged release needs, and nothing of the agent, its plane client or the
// document service. maxLines holds its size (1,510 lines when set, 622 of
// them internal/wire, for the record's enumerations).
const maxLines = 1510

// inModule is every package of this module the shipped build may link.
var inModule = map[string]bool{
	"github.com/tetherhq/tether/cmd/tether-upgrade":     true,
	"github.com/tetherhq/tether/internal/upgrader":      true,
	"github.com/tetherhq/tether/internal/releasestate":  true,
	"github.com/tetherhq/tether/internal/upgradewindow": true,
	"github.com/tetherhq/tether/internal/wire":          true, // the record's enumerations
	"github.com/tetherhq/tether/internal/cli":           true,
}

func TestLinksOnlyWhatItNeeds(t *testing.T) {
	g := boundary.MustDeps(t, ".")
	for _, p := range g {
		if p.Module != nil && p.Module.Main && !inModule[p.ImportPath] {
			t.Errorf("tether-upgrade links %s; it may link only %v", p.ImportPath, inModule)
		}
	}
	for _, p := range g.Linking(boundary.DocumentReaders()) {
		t.Errorf("tether-upgrade links %s, which reads documents", p)
	}
}

// TestLines keeps tether-upgrade small enough to audit; -v prints the count
// per package.
func TestLines(t *testing.T) {
	boundary.CheckLines(t, boundary.MustDeps(t, "."), maxLines)
}

// TestDepsList keeps deps.txt, the third-party packages tether-upgrade
// links for the shipped build, in step with the code.
func TestDepsList(t *testing.T) {
	boundary.CheckList(t, "deps.txt", boundary.MustDeps(t, ".").ThirdParty(), *update)
}
