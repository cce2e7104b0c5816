package ctl

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tetherhq/tether/internal/boundary"
)

// tetherctl runs on the customer's workstation, outside the data
// boundary: none of its code may import the agent or a package that reads
// documents, their storage or their queue. The diagnostics commands use
// internal/diagspool, the agent's on-disk format, not the agent.
var forbiddenImports = append(boundary.DocumentReaders(), boundary.AgentPackage)

func TestTrustBoundaryImports(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if boundary.Matches(path, forbiddenImports) {
				t.Errorf("%s imports %s, which tetherctl must not", name, path)
			}
		}
	}
}
