package main

import (
	"flag"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/tetherhq/tether/internal/boundary"
)

var update = flag.Bool("update", false, "rewrite deps.txt from go list")

func goListDeps(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	// Sorted: go list's order follows the import graph's shape, which
	// changes with harmless edits; the list is about which packages.
	deps := strings.Fields(string(out))
	slices.Sort(deps)
	return deps
}

// The agent reaches S3 only through its gateway, internal/exchange, which
// addresses the agent exchange bucket alone (boundary.Gateways).
func TestNoForbiddenImports(t *testing.T) {
	graph, err := boundary.DepGraph(".", ".")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range boundary.Violations(graph, boundary.DocumentReaders()) {
		t.Errorf("tether-agent: %s, which could read documents; the agent may only see docsvc's /readyz and /metrics (and S3 only through %s)", v, boundary.ExchangePackage)
	}
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
			t.Errorf("isForbidden(%s) = %v, want %v", pkg, got, want)
		}
	}
}

// TestDepsList keeps deps.txt, the checked-in list of everything the agent
// links, in step with the code, so any new dependency shows up in review.
func TestDepsList(t *testing.T) {
	got := strings.Join(goListDeps(t), "\n") + "\n"
	if *update {
		if err := os.WriteFile("deps.txt", []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile("deps.txt")
	if err != nil {
		t.Fatalf("read deps.txt: %v (run go test ./cmd/tether-agent -update)", err)
	}
	if got == string(want) {
		return
	}
	wantSet := map[string]bool{}
	for _, p := range strings.Fields(string(want)) {
		wantSet[p] = true
	}
	var diff []string
	for _, p := range strings.Fields(got) {
		if !wantSet[p] {
			diff = append(diff, "+ "+p)
		}
		delete(wantSet, p)
	}
	for p := range wantSet {
		diff = append(diff, "- "+p)
	}
	t.Fatalf("tether-agent's dependencies changed (review, then run go test ./cmd/tether-agent -update):\n%s", strings.Join(diff, "\n"))
}
