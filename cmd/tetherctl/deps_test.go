package main

import (
	"flag"
	"testing"

	"github.com/tetherhq/tether/internal/boundary"
)

var update = flag.Bool("update", false, "rewrite deps.txt from go list")

// maxLines bounds the lines of non-test Go, in this module, that tetherctl
// links for the shipped build (boundary.Shipped). No size goal is set for
// the CLI: this is what it measured (13,260 lines: 11,872 with deploy,
// bootstrap, the exchange bucket commands, images push, migrate and tokens;
// then deployment.yaml's network and adopt fields; and about 1,000 for
// releases, upgrade and rollback with the CloudWatch and RDS clients)
// rounded up to the next thousand, so growth is a decision someone makes in
// review.
const maxLines = 14000

// TestLines keeps tetherctl's size in view; -v prints the count per package.
func TestLines(t *testing.T) {
	boundary.CheckLines(t, boundary.MustDeps(t, "."), maxLines)
}

// TestDepsList keeps deps.txt, the checked-in list of the third-party
// packages tetherctl links for the shipped build, in step with the code, so
// any new dependency shows up in review.
func TestDepsList(t *testing.T) {
	boundary.CheckList(t, "deps.txt", boundary.MustDeps(t, ".").ThirdParty(), *update)
}
