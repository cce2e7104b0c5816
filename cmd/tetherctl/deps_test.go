package main

import (
	"flag"
	"testing"

	"github.com/tetherhq/tether/internal/boundary"
)

var update = flag.Bool("update", false, "rewrite deps.txt from go list")

// maxLines bounds the lines of non-test Go, in this module, that tetherctl
// links for the shipped build (boundary.Shipped). No size goal is set for
// the CLI: this is what it measured rounded up to the next thousand, so
// growth is a decision someone makes in review: 11,872 lines with deploy,
// bootstrap, the exchange bucket commands, images push, migrate and tokens;
// 14,347 with init, status, destroy and the permissions check (and
// docs/iam.md's generator, kept beside preflight.md's); 15,415 with
// releases, upgrade and rollback and the RDS client; 16,077 with destroy's
// database step, preflight's VPC, Bedrock and image checks, and
// egress verify --expect-head; 17,118 with jobs, backup and restore (the
// local backup package; it brings the SQLite driver, not docsvc's packages);
// 20,273 with upgrades on the local runtime (the supervisor's control
// client), upgrade --stage, scale, status's storage and certificate checks
// and secrets rotate.
const maxLines = 21000

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
