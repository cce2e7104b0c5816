package ctl

import (
	"flag"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the generated docs (docs/preflight.md, docs/iam.md)")

// docs/preflight.md is generated from the checklist; this fails when the
// checked-in file is stale. Regenerate:
//
//	go test ./internal/ctl -run TestPreflightDoc -update
func TestPreflightDoc(t *testing.T) {
	checkGeneratedDoc(t, "preflight.md", preflightDoc(), "TestPreflightDoc")
}

// Every check is documented, with a fix, and its ID is unique.
func TestPreflightChecksAreDescribed(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range preflightChecks() {
		if seen[c.ID] {
			t.Errorf("check ID %s used twice", c.ID)
		}
		seen[c.ID] = true
		if c.Title == "" || c.What == "" || c.Fix == "" || c.run == nil {
			t.Errorf("check %s lacks a title, description, fix or function", c.ID)
		}
		if (c.applies == nil) != (c.When == "") {
			t.Errorf("check %s: a condition must come with its description for the doc, and the reverse", c.ID)
		}
		if strings.Contains(c.What+c.Fix, "\n") {
			t.Errorf("check %s: keep each text to one paragraph", c.ID)
		}
	}
}
