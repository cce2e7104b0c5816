package operator

import (
	"testing"

	"github.com/tetherhq/tether/internal/boundary"
)

// The operator's half reaches S3 only through exchange.Client: it imports
// nothing that reads documents, S3 included, nor the agent. (Its behaviour
// against a bucket is tested with the agent's Mirror in internal/exchange.)
func TestImportsNoS3(t *testing.T) {
	graph := boundary.MustDeps(t, ".")
	if v := graph.Violations(append(boundary.DocumentReaders(), boundary.AgentPackage)); len(v) > 0 {
		t.Fatalf("exchange/operator: %v", v)
	}
}
