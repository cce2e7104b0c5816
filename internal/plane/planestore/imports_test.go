package planestore_test

import (
	"slices"
	"testing"

	"github.com/tetherhq/tether/internal/boundary"
)

const (
	storePkg = "github.com/tetherhq/tether/internal/plane/planestore"
	apiPkg   = "github.com/tetherhq/tether/internal/plane"
)

// The plane's API, dashboard and alerts stand apart from its storage: the
// store links nothing that serves or renders HTTP, nor the plane's other
// packages, and the API package reaches the database only through the
// store's exported surface.
func TestStoreStandsApartFromTheAPI(t *testing.T) {
	g, err := boundary.Deps(apiPkg)
	if err != nil {
		t.Fatal(err)
	}
	byPath := map[string]boundary.Package{}
	for _, p := range g {
		byPath[p.ImportPath] = p
	}
	api, ok := byPath[apiPkg]
	if !ok || !slices.Contains(api.Imports, storePkg) {
		t.Fatalf("%s does not import %s: the graph is not the plane's", apiPkg, storePkg)
	}

	// Walk what the store links, noting who imported each package.
	// (planestore lies under the API's path, but the walk starts past it.)
	forbidden := []string{"net/http", "html/template", apiPkg}
	via := map[string]string{storePkg: ""}
	queue := []string{storePkg}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, imp := range byPath[p].Imports {
			if _, seen := via[imp]; seen {
				continue
			}
			via[imp] = p
			if boundary.Matches(imp, forbidden) {
				t.Errorf("%s links %s (imported by %s): storage must not depend on the API, HTTP or templates", storePkg, imp, p)
				continue
			}
			queue = append(queue, imp)
		}
	}
	if _, ok := via["database/sql"]; !ok {
		t.Fatalf("the walk from %s never reached database/sql: it read the wrong graph", storePkg)
	}

	for _, imp := range api.Imports {
		if imp == "database/sql" || boundary.Matches(imp, []string{"github.com/tetherhq/tether/internal/sqldb"}) {
			t.Errorf("%s imports %s: it must reach the database only through %s", apiPkg, imp, storePkg)
		}
	}
}
