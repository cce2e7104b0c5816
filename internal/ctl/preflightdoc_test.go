package ctl

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite docs/preflight.md from the preflight checklist")

// docs/preflight.md is generated from the checklist; this fails when the
// checked-in file is stale. Regenerate:
//
//	go test ./internal/ctl -run TestPreflightDoc -update
func TestPreflightDoc(t *testing.T) {
	path := filepath.Join("..", "..", "docs", "preflight.md")
	want := preflightDoc()
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (generate it: go test ./internal/ctl -run TestPreflightDoc -update)", err)
	}
	if string(got) != want {
		t.Fatalf("%s is stale: regenerate it with go test ./internal/ctl -run TestPreflightDoc -update", path)
	}
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
