// Package apidoc holds the OpenAPI 3.1 documents checked in beside it, so
// that each service serves the very file integrators read and generate
// clients from: docsvc.openapi.json (the document service's API) and
// plane-admin.openapi.json (the vendor plane's admin API). docs/api.md is
// their guide.
package apidoc

import (
	_ "embed"
	"net/http"
)

// Docsvc is the document service's OpenAPI document.
//
//go:embed docsvc.openapi.json
var Docsvc []byte

// PlaneAdmin is the plane's admin API OpenAPI document.
//
//go:embed plane-admin.openapi.json
var PlaneAdmin []byte

// Handler serves doc as GET /openapi.json answers it.
func Handler(doc []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write(doc)
	}
}
