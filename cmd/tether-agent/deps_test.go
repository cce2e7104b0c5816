package main

import (
	"flag"
	"testing"

	"github.com/tetherhq/tether/internal/boundary"
)

var update = flag.Bool("update", false, "rewrite deps.txt from go list")

// The agent is the one piece of vendor code with access inside the
// customer's account, so a customer should be able to read all of it in an
// afternoon: goalLines is the most lines of non-test Go, in this module, it
// should link for the shipped build (boundary.Shipped). maxLines holds
// today's count; it only ever comes down, until it reaches goalLines.
const (
	goalLines = 5000
	maxLines  = 5033
)

// The agent talks to the vendor, so it links no S3 package at all, not
// even the exchange bucket's gateway: tether-exchange, which never talks
// to the vendor, mirrors the agent's data dir there.
func TestNoForbiddenImports(t *testing.T) {
	g := boundary.MustDeps(t, ".")
	for _, v := range g.Violations(boundary.DocumentReaders()) {
		t.Errorf("tether-agent: %s, which could read documents; the agent may only see docsvc's /metrics/summary", v)
	}
	for _, p := range g.Linking(boundary.S3Packages()) {
		t.Errorf("tether-agent links %s; the agent reaches no S3 bucket (tether-exchange mirrors its data dir to the exchange bucket)", p)
	}
	for _, p := range g.Linking(boundary.VendorOnly()) {
		t.Errorf("tether-agent links %s, which only the vendor runs; the agent may link only the halves both sides need", p)
	}
	for _, p := range g.Linking(operatorOnly) {
		t.Errorf("tether-agent links %s, which only tetherctl runs; keep the operator's half out of what a reviewer of the agent reads", p)
	}
}

// operatorOnly are the halves of packages the agent shares with tetherctl
// that only tetherctl runs, split off so the agent does not link them.
var operatorOnly = []string{
	"github.com/tetherhq/tether/internal/diagspool/diagreview",
	"github.com/tetherhq/tether/internal/ledger/ledgerread",
}

func TestForbiddenMatcher(t *testing.T) {
	for pkg, want := range map[string]bool{
		"github.com/tetherhq/tether/internal/blob":              true,
		"github.com/tetherhq/tether/internal/blob/blobtest":     true,
		"github.com/aws/aws-sdk-go-v2/service/s3/types":         true,
		"github.com/aws/aws-sdk-go-v2/service/sqs":              true,
		"github.com/aws/aws-sdk-go-v2/service/secretsmanager":   false,
		"github.com/tetherhq/tether/internal/apiclient":         false,
		"github.com/tetherhq/tether/internal/agent/collect":     false,
		"github.com/aws/aws-sdk-go-v2/service/s3control":        false,
		"github.com/tetherhq/tether/internal/documentation_foo": false,
	} {
		if got := boundary.Matches(pkg, boundary.DocumentReaders()); got != want {
			t.Errorf("Matches(%s, DocumentReaders) = %v, want %v", pkg, got, want)
		}
	}
	for pkg, want := range map[string]bool{
		"github.com/tetherhq/tether/internal/release/publish":   true,
		"github.com/tetherhq/tether/internal/reqsign/reqverify": true,
		"github.com/tetherhq/tether/internal/license/issuer":    true,
		"github.com/tetherhq/tether/internal/plane/planecmd":    true,
		"github.com/tetherhq/tether/internal/plane/planestore":  true,
		"github.com/tetherhq/tether/internal/release":           false,
		"github.com/tetherhq/tether/internal/reqsign":           false,
		"github.com/tetherhq/tether/internal/license":           false,
		"github.com/tetherhq/tether/internal/planet":            false,
	} {
		if got := boundary.Matches(pkg, boundary.VendorOnly()); got != want {
			t.Errorf("Matches(%s, VendorOnly) = %v, want %v", pkg, got, want)
		}
	}
}

// TestLines keeps the agent small enough to audit; -v prints the count per
// package.
func TestLines(t *testing.T) {
	boundary.CheckLines(t, boundary.MustDeps(t, "."), maxLines)
}

// TestDepsList keeps deps.txt, the checked-in list of the third-party
// packages the agent links for the shipped build, in step with the code, so
// any new dependency shows up in review.
func TestDepsList(t *testing.T) {
	boundary.CheckList(t, "deps.txt", boundary.MustDeps(t, ".").ThirdParty(), *update)
}
