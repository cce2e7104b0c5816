package api_test

import (
	"bytes"
	"io"
	"net/http"
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	apidoc "github.com/tetherhq/tether/docs/api"
	"github.com/tetherhq/tether/docs/api/apitest"
	"github.com/tetherhq/tether/internal/api"
)

// Every route docsvc registers, on either listener and however the
// listeners are split, is described in docs/api/docsvc.openapi.json, and
// everything it describes is routed. The patterns come from running the
// server's own registration code.
func TestEveryRouteIsDescribed(t *testing.T) {
	t.Parallel()
	if err := apitest.Docsvc().ValidateDocument(); err != nil {
		t.Fatal(err)
	}
	var all []string
	for _, split := range []bool{false, true} {
		srv := &api.Server{Auth: func(h http.Handler) http.Handler { return h }, Registry: prometheus.NewRegistry(), SplitInternal: split}
		public, internal := srv.RoutePatterns()
		if len(public) == 0 || len(internal) == 0 {
			t.Fatalf("split=%v: no routes recorded (public %v, internal %v)", split, public, internal)
		}
		all = append(all, public...)
		all = append(all, internal...)
	}
	slices.Sort(all)
	apitest.Docsvc().CompareRoutes(t, slices.Compact(all))
}

// The service serves the checked-in document itself, byte for byte.
func TestOpenAPIDocumentIsServed(t *testing.T) {
	t.Parallel()
	b := setup(t, 1<<20)
	res, err := http.Get(b.url + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	got, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/json" || !bytes.Equal(got, apidoc.Docsvc) {
		t.Fatalf("GET /openapi.json: %d %s, %d bytes; want 200 application/json with docs/api/docsvc.openapi.json", res.StatusCode, res.Header.Get("Content-Type"), len(got))
	}
}
