package main

import (
	"flag"
	"testing"

	"github.com/tetherhq/tether/internal/boundary"
)

var update = flag.Bool("update", false, "rewrite deps.txt from go list")

// tether-exchange writes the customer's exchange bucket, so it must not be
// able to talk to the vendor: it links, of this module, only the mirror,
// the diagnostics spool and ledger formats it reads, and nothing of the
// agent, its plane client, request signing, licenses or releases.
// maxLines holds its size (2,656 lines when set, 622 of them
// internal/wire, which diagspool checks request IDs with).
const maxLines = 2656

// inModule is every package of this module the shipped build may link.
var inModule = map[string]bool{
	"github.com/tetherhq/tether/cmd/tether-exchange":        true,
	"github.com/tetherhq/tether/internal/exchange":          true,
	"github.com/tetherhq/tether/internal/diagspool":         true,
	"github.com/tetherhq/tether/internal/ledger":            true,
	"github.com/tetherhq/tether/internal/ledger/ledgerread": true, // Tail, the copy's reader
	"github.com/tetherhq/tether/internal/atomicfile":        true,
	"github.com/tetherhq/tether/internal/wire":              true, // IDs and digests, as the agent checks them
	"github.com/tetherhq/tether/internal/cli":               true,
}

// vendorFacing are what talks to the vendor or proves the agent to it;
// named so a failure says why, though inModule already keeps them out.
var vendorFacing = []string{
	boundary.AgentPackage,
	"github.com/tetherhq/tether/internal/updater",
	"github.com/tetherhq/tether/internal/reqsign",
	"github.com/tetherhq/tether/internal/license",
	"github.com/tetherhq/tether/internal/release",
	"github.com/tetherhq/tether/internal/apiclient",
	"github.com/theupdateframework/go-tuf",
}

func TestLinksOnlyWhatItNeeds(t *testing.T) {
	g := boundary.MustDeps(t, ".")
	for _, p := range g {
		if p.Module != nil && p.Module.Main && !inModule[p.ImportPath] {
			t.Errorf("tether-exchange links %s; it may link only %v", p.ImportPath, inModule)
		}
	}
	for _, p := range g.Linking(append(vendorFacing, boundary.VendorOnly()...)) {
		t.Errorf("tether-exchange links %s, which talks to the vendor or is the vendor's", p)
	}
	// S3, and only through the gateway; nothing else that reads documents.
	for _, v := range g.Violations(boundary.DocumentReaders()) {
		t.Errorf("tether-exchange: %s; it reaches S3 only through %s", v, boundary.ExchangePackage)
	}
	if len(g.Linking([]string{"github.com/aws/aws-sdk-go-v2/service/s3"})) == 0 {
		t.Error("the gateway check checks nothing: tether-exchange no longer links service/s3")
	}
}

// TestLines keeps tether-exchange small enough to audit; -v prints the
// count per package.
func TestLines(t *testing.T) {
	boundary.CheckLines(t, boundary.MustDeps(t, "."), maxLines)
}

// TestDepsList keeps deps.txt, the third-party packages tether-exchange
// links for the shipped build, in step with the code.
func TestDepsList(t *testing.T) {
	boundary.CheckList(t, "deps.txt", boundary.MustDeps(t, ".").ThirdParty(), *update)
}
