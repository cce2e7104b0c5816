package lint

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
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

// systemClockReads are the only places production code may read the system
// clock itself; everything else is handed a clock (a Now func, defaulted to
// time.Now where a program or constructor starts), so tests can set it.
// Each entry says how many reads the file may have and why it may.
var systemClockReads = map[string]struct {
	n   int
	why string
}{
	"cmd/tether-tuf-client/main.go":                       {2, "a conformance test client, not shipped: it falls back to Go's clock when date(1) fails, and has no clock to inject"},
	"internal/api/documents.go":                           {1, "a connection's read deadline is wall time, whatever the injected clock says"},
	"internal/ctl/deploy.go":                              {2, "a context's deadline is wall time"},
	"internal/release/publish/publishtest/publishtest.go": {1, "a test repository signs its metadata now, for clients that check it against the real clock"},
}

// TestTimeComesFromTheInjectedClock: time.Now(), time.Since and time.Until
// read the system clock where they stand, which a test cannot set. Passing
// time.Now as a clock is how a program supplies the real one.
func TestTimeComesFromTheInjectedClock(t *testing.T) {
	out, err := exec.Command("git", "ls-files", "--cached", "--others", "--exclude-standard", "--full-name", "--", ":(top)*.go").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	top, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Fatalf("git rev-parse: %v", err)
	}
	root := strings.TrimSpace(string(top))
	found := map[string][]string{}
	checked := 0
	for _, path := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		// bench/ programs measure wall time.
		if strings.HasSuffix(path, "_test.go") || strings.HasPrefix(path, "bench/") {
			continue
		}
		checked++
		for _, at := range clockReads(t, filepath.Join(root, path)) {
			found[path] = append(found[path], at)
		}
	}
	if checked < 100 {
		t.Fatalf("checked only %d files; the check is not looking at the tree", checked)
	}
	for path, at := range found {
		if allowed, ok := systemClockReads[path]; ok && len(at) == allowed.n {
			continue
		}
		t.Errorf("%s reads the system clock at %s: take a clock instead (a Now func() time.Time field or argument, time.Now only as its default)",
			path, strings.Join(at, ", "))
	}
	for path, allowed := range systemClockReads {
		if len(found[path]) != allowed.n {
			t.Errorf("%s is allowed %d system clock reads (%s) but has %d: update systemClockReads", path, allowed.n, allowed.why, len(found[path]))
		}
	}
}

// clockReads returns the lines of path's calls to time.Now, time.Since and
// time.Until, whatever name the file imports package time under.
func clockReads(t *testing.T, path string) []string {
	t.Helper()
	src, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // deleted, not yet staged
	}
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, src, parser.SkipObjectResolution)
	if err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	name := ""
	for _, imp := range f.Imports {
		if imp.Path.Value == `"time"` {
			name = "time"
			if imp.Name != nil {
				name = imp.Name.Name
			}
		}
	}
	if name == "" {
		return nil
	}
	var at []string
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		if pkg, ok := sel.X.(*ast.Ident); ok && pkg.Name == name && (sel.Sel.Name == "Now" || sel.Sel.Name == "Since" || sel.Sel.Name == "Until") {
			at = append(at, fmt.Sprintf("line %d", fset.Position(call.Pos()).Line))
		}
		return true
	})
	return at
}
