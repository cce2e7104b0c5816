package boundary

import (
	"fmt"
	"os/exec"
	"sort"
	"strings"
)

// AgentPackage is the agent. tetherctl, which runs on the operator's
// workstation, and the packages it shares with the agent must not link it.
const AgentPackage = "github.com/tetherhq/tether/internal/agent"

// DocumentReaders returns the packages that read documents, their storage
// or their queue. The agent, tetherctl and what they share must never link
// one of them, or anything under one (internal/blob/blobtest,
// service/s3/types, ...): this is the code half of the data boundary.
func DocumentReaders() []string {
	return []string{
		"github.com/tetherhq/tether/internal/document",
		"github.com/tetherhq/tether/internal/blob",
		"github.com/tetherhq/tether/internal/queue",
		"github.com/tetherhq/tether/internal/extract",
		"github.com/tetherhq/tether/internal/analyze",
		"github.com/tetherhq/tether/internal/sqldb",
		"github.com/tetherhq/tether/internal/api",
		"github.com/tetherhq/tether/internal/worker",
		"github.com/tetherhq/tether/internal/docsvc",
		"github.com/aws/aws-sdk-go-v2/service/s3",
		"github.com/aws/aws-sdk-go-v2/service/sqs",
	}
}

// Matches reports whether pkg is one of forbidden or lies under one.
func Matches(pkg string, forbidden []string) bool {
	for _, f := range forbidden {
		if pkg == f || strings.HasPrefix(pkg, f+"/") {
			return true
		}
	}
	return false
}

// ExchangePackage is the one package through which the agent and tetherctl
// reach S3: the agent exchange bucket (diagnostics requests for the
// operator to review, the egress ledger's copy). It addresses only the
// bucket it is given, and only that bucket's diagnostics/ and ledger/ keys;
// the CDK stack gives the agent's role no other bucket, and denies it the
// documents bucket by name.
const ExchangePackage = "github.com/tetherhq/tether/internal/exchange"

// Gateways maps a package of DocumentReaders to the one package that may
// import it in the agent and tetherctl.
func Gateways() map[string]string {
	return map[string]string{"github.com/aws/aws-sdk-go-v2/service/s3": ExchangePackage}
}

// Violations checks a dependency graph (each package's direct imports, as
// DepGraph returns it) and returns "A imports B" for each package A that
// imports a forbidden package B from outside it, unless A is B's gateway.
// Forbidden packages' own imports of each other (service/s3 of
// service/s3/types) are not edges into them.
func Violations(graph map[string][]string, forbidden []string) []string {
	gateways := Gateways()
	var out []string
	for from, imports := range graph {
		for _, to := range imports {
			for _, f := range forbidden {
				if !Matches(to, []string{f}) || Matches(from, []string{f}) || gateways[f] == from {
					continue
				}
				out = append(out, from+" imports "+to)
			}
		}
	}
	sort.Strings(out)
	return out
}

// DepGraph is pkg's dependency graph from 'go list -deps', run in dir:
// each package with its direct imports.
func DepGraph(dir, pkg string) (map[string][]string, error) {
	cmd := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}{{range .Imports}} {{.}}{{end}}", pkg)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list -deps %s: %w", pkg, err)
	}
	graph := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) > 0 {
			graph[f[0]] = f[1:]
		}
	}
	return graph, nil
}
