package apidoc_test

import (
	"testing"

	"github.com/tetherhq/tether/docs/api/apitest"
)

// Both documents are valid OpenAPI 3.1, and every JSON example in them
// matches its schema.
func TestDocuments(t *testing.T) {
	for _, spec := range []*apitest.Spec{apitest.Docsvc(), apitest.PlaneAdmin()} {
		t.Run(spec.Name(), func(t *testing.T) {
			if err := spec.ValidateDocument(); err != nil {
				t.Fatal(err)
			}
			if err := spec.CheckExamples(); err != nil {
				t.Fatal(err)
			}
		})
	}
}
