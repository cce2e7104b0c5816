package plane_test

import (
	"bytes"
	"strings"
	"testing"

	apidoc "github.com/tetherhq/tether/docs/api"
	"github.com/tetherhq/tether/docs/api/apitest"
)

// Every admin API route the plane registers (and /healthz, /openapi.json)
// is described in docs/api/plane-admin.openapi.json, and everything it
// describes is routed. The patterns come from running the server's own
// registration code; the other routes are the agent API (docs/protocol.md)
// and the dashboard.
func TestEveryAdminRouteIsDescribed(t *testing.T) {
	if err := apitest.PlaneAdmin().ValidateDocument(); err != nil {
		t.Fatal(err)
	}
	b := setup(t)
	var admin []string
	for _, p := range b.server.RoutePatterns() {
		_, path, _ := strings.Cut(p, " ")
		if apitest.InAdminScope(path) {
			admin = append(admin, p)
		}
	}
	if len(admin) < 3 {
		t.Fatalf("only %v of the plane's routes are in the admin API's scope", admin)
	}
	apitest.PlaneAdmin().CompareRoutes(t, admin)
}

// The plane serves the checked-in document itself, byte for byte.
func TestOpenAPIDocumentIsServed(t *testing.T) {
	b := setup(t)
	res, out := b.call(t, "GET", "/openapi.json", nil, nil)
	if res.StatusCode != 200 || !bytes.Equal(out, apidoc.PlaneAdmin) {
		t.Fatalf("GET /openapi.json: %d, %d bytes; want 200 with docs/api/plane-admin.openapi.json", res.StatusCode, len(out))
	}
}
