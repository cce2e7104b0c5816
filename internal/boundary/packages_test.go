package boundary

import (
	"slices"
	"testing"
)

func TestViolations(t *testing.T) {
	s3 := "github.com/aws/aws-sdk-go-v2/service/s3"
	graph := Graph{
		{ImportPath: "example.com/cmd", Imports: []string{ExchangePackage, "example.com/other"}},
		{ImportPath: ExchangePackage, Imports: []string{s3}},
		{ImportPath: s3, Imports: []string{s3 + "/types"}},
		{ImportPath: "example.com/other", Imports: []string{s3 + "/types", "github.com/tetherhq/tether/internal/blob"}},
		{ImportPath: "example.com/harmless", Imports: []string{"fmt"}},
	}
	got := graph.Violations(DocumentReaders())
	want := []string{
		"example.com/other imports " + s3 + "/types",
		"example.com/other imports github.com/tetherhq/tether/internal/blob",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("Violations = %v, want %v", got, want)
	}
}
