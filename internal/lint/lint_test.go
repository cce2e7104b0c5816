package lint

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
)

// TestEveryPackageHasADocComment: a reviewer should learn what a package is
// for from its first line.
func TestEveryPackageHasADocComment(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{if .Doc}}ok{{else}}missing{{end}}", "github.com/tetherhq/tether/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, state, _ := strings.Cut(line, " ")
		checked++
		if state != "ok" {
			t.Errorf("%s has no package doc comment (// Package x ...)", pkg)
		}
	}
	if checked < 20 {
		t.Fatalf("go list found only %d packages; the check is not looking at the tree", checked)
	}
}

// TestNoPointersOutsideTheProject: the product's files are read by customers
// and reviewers who have only this repository, so none may send them to
// planning notes that live beside it.
func TestNoPointersOutsideTheProject(t *testing.T) {
	out, err := exec.Command("git", "grep", "-n", "-I", "-E", `\.\./shared|shared/(DESIGN|PLAN|CONVENTIONS)\.md`, "--", ":(top)", ":(top,exclude)internal/lint/lint_test.go").Output()
	var exit *exec.ExitError
	if err != nil && !(errors.As(err, &exit) && exit.ExitCode() == 1) { // 1: no match
		t.Fatalf("git grep: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line != "" {
			t.Errorf("points outside the project: %s", line)
		}
	}
}
