package boundary

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
)

// Shipped is the build the release binaries are made for (build/*.Dockerfile).
// The graph checks list packages for it, not for the machine running the
// tests: the set of files a package compiles, and so what a customer audits,
// depends on GOOS, GOARCH and cgo.
var Shipped = []string{"GOOS=linux", "GOARCH=amd64", "CGO_ENABLED=0"}

// Package is one package of a binary's import graph, as go list -json
// describes it.
type Package struct {
	ImportPath string
	Dir        string
	GoFiles    []string // non-test Go files compiled for the build, after build constraints
	Imports    []string // its direct imports, for the build
	Standard   bool
	Module     *struct{ Main bool }
}

// Graph is a binary's package and everything it links.
type Graph []Package

// Deps lists pkg (an import path or a pattern such as ".") and every package
// it imports, directly or not, for the Shipped build.
func Deps(pkg string) (Graph, error) {
	cmd := exec.Command("go", "list", "-deps", "-json", pkg)
	cmd.Env = append(os.Environ(), Shipped...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list -deps %s: %w: %s", pkg, err, stderr.Bytes())
	}
	var g Graph
	for dec := json.NewDecoder(bytes.NewReader(out)); ; {
		var p Package
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("go list -deps %s: %w", pkg, err)
		}
		g = append(g, p)
	}
	if len(g) == 0 {
		return nil, fmt.Errorf("go list -deps %s listed nothing", pkg)
	}
	return g, nil
}

// MustDeps is Deps for tests.
func MustDeps(t testing.TB, pkg string) Graph {
	t.Helper()
	g, err := Deps(pkg)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// Linking returns the packages of g that are one of forbidden or lie under
// one (see Matches), sorted.
func (g Graph) Linking(forbidden []string) []string {
	var out []string
	for _, p := range g {
		if Matches(p.ImportPath, forbidden) {
			out = append(out, p.ImportPath)
		}
	}
	slices.Sort(out)
	return out
}

// ThirdParty returns the import paths of the packages that are neither in
// the standard library nor in this module, sorted.
func (g Graph) ThirdParty() []string {
	var out []string
	for _, p := range g {
		if !p.Standard && (p.Module == nil || !p.Module.Main) {
			out = append(out, p.ImportPath)
		}
	}
	slices.Sort(out)
	return out
}

// Lines counts the lines of each in-module package's non-test Go files
// (GoFiles: tests, and files another platform's build constraints leave
// out, are not counted). Every line counts, comments and blank lines too:
// it is what a reviewer reads.
func (g Graph) Lines() (map[string]int, error) {
	lines := map[string]int{}
	for _, p := range g {
		if p.Module == nil || !p.Module.Main {
			continue
		}
		for _, f := range p.GoFiles {
			n, err := countLines(filepath.Join(p.Dir, f))
			if err != nil {
				return nil, err
			}
			lines[p.ImportPath] += n
		}
	}
	return lines, nil
}

func countLines(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		n++
	}
	return n, sc.Err()
}

// CheckLines fails t when the in-module packages of g add up to more than
// max lines (Lines), and always logs the count per package, largest first.
func CheckLines(t testing.TB, g Graph, max int) {
	t.Helper()
	lines, err := g.Lines()
	if err != nil {
		t.Fatal(err)
	}
	pkgs := make([]string, 0, len(lines))
	total := 0
	for p, n := range lines {
		pkgs = append(pkgs, p)
		total += n
	}
	sort.Slice(pkgs, func(i, j int) bool {
		if lines[pkgs[i]] != lines[pkgs[j]] {
			return lines[pkgs[i]] > lines[pkgs[j]]
		}
		return pkgs[i] < pkgs[j]
	})
	var b strings.Builder
	for _, p := range pkgs {
		fmt.Fprintf(&b, "%7d  %s\n", lines[p], p)
	}
	fmt.Fprintf(&b, "%7d  total (limit %d)\n", total, max)
	if total > max {
		t.Errorf("%d lines of non-test Go in this module's packages, more than %d; per package:\n%s", total, max, b.String())
		return
	}
	t.Logf("lines of non-test Go per in-module package (%s):\n%s", strings.Join(Shipped, " "), b.String())
}

// CheckList compares got with the sorted list, one entry a line, in the
// file path, and fails t on any difference, naming what was added (+) and
// removed (-). With update it rewrites the file instead.
func CheckList(t testing.TB, path string, got []string, update bool) {
	t.Helper()
	text := strings.Join(got, "\n") + "\n"
	if update {
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v (rerun this test with -update to write it)", path, err)
	}
	if string(data) == text {
		return
	}
	want := strings.Fields(string(data))
	var diff []string
	for _, p := range got {
		if !slices.Contains(want, p) {
			diff = append(diff, "+ "+p)
		}
	}
	for _, p := range want {
		if !slices.Contains(got, p) {
			diff = append(diff, "- "+p)
		}
	}
	if len(diff) == 0 {
		diff = append(diff, "(same entries; the file is not sorted one a line)")
	}
	t.Fatalf("%s is out of date (review the change, then rerun this test with -update):\n%s", path, strings.Join(diff, "\n"))
}

// Imports returns the direct imports of the package pkg in g, or nil.
func (g Graph) Imports(pkg string) []string {
	for _, p := range g {
		if p.ImportPath == pkg {
			return p.Imports
		}
	}
	return nil
}

// Violations returns "A imports B" for each package A of g that imports a
// forbidden package B from outside it, unless A is B's gateway (Gateways).
// Forbidden packages' imports of each other (service/s3 of
// service/s3/types) are not edges into them.
func (g Graph) Violations(forbidden []string) []string {
	gateways := Gateways()
	var out []string
	for _, p := range g {
		for _, to := range p.Imports {
			for _, f := range forbidden {
				if !Matches(to, []string{f}) || Matches(p.ImportPath, []string{f}) || gateways[f] == p.ImportPath {
					continue
				}
				out = append(out, p.ImportPath+" imports "+to)
			}
		}
	}
	sort.Strings(out)
	return out
}
