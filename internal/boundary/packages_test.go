package boundary

import (
	"slices"
	"testing"
)

func TestViolations(t *testing.T) {
	s3 := "github.com/aws/aws-sdk-go-v2/service/s3"
	graph := map[string][]string{
		"example.com/cmd":      {ExchangePackage, "example.com/other"},
		ExchangePackage:        {s3},
		s3:                     {s3 + "/types"},
		"example.com/other":    {s3 + "/types", "github.com/tetherhq/tether/internal/blob"},
		"example.com/harmless": {"fmt"},
	}
	got := Violations(graph, DocumentReaders())
	want := []string{
		"example.com/other imports " + s3 + "/types",
		"example.com/other imports github.com/tetherhq/tether/internal/blob",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("Violations = %v, want %v", got, want)
	}
}
