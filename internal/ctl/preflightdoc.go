package ctl

import (
	"fmt"
	"strings"
)

// preflightDoc renders docs/preflight.md from the checklist itself, so the
// document lists exactly the checks preflight runs. A test fails when the
// checked-in file differs; `go test ./internal/ctl -run TestPreflightDoc
// -update` rewrites it.
func preflightDoc() string {
	var b strings.Builder
	b.WriteString(`<!-- Generated from internal/ctl/preflightchecks.go; do not edit.
     Regenerate: go test ./internal/ctl -run TestPreflightDoc -update -->

# Prerequisites checklist: ` + "`tetherctl preflight`" + `

Before deploying (and whenever something looks wrong after), run from the
repository root:

` + "```sh" + `
go run ./cmd/tetherctl preflight --config /path/to/deployment.yaml
` + "```" + `

with the AWS credentials you deploy with (` + "`--profile`" + ` and ` + "`--region`" + ` work as
they do for the AWS CLI). Every check runs at once, each under its own time
limit (` + "`--timeout`" + `, 10 seconds by default, at most 25), so the whole run ends
within about that limit even when AWS or the plane never answers. Nothing is
changed, in the account or on this machine; the secrets are judged without
printing them.

Each check ends PASS, WARN (deployable, but look at it) or FAIL (fix it
first), and every WARN and FAIL prints its own one-line fix; the fixes below
are the usual ones. ` + "`--output json`" + ` prints the same as an array of
` + "`{id, title, status, detail, fix}`" + `. The exit status is 0 when no check FAILs.

`)
	checks := preflightChecks()
	b.WriteString("| id | check | runs |\n|---|---|---|\n")
	for _, c := range checks {
		when := "always"
		if c.When != "" {
			when = "when " + c.When
		}
		fmt.Fprintf(&b, "| [`%s`](#%s) | %s | %s |\n", c.ID, c.ID, c.Title, when)
	}
	for _, c := range checks {
		fmt.Fprintf(&b, "\n## %s\n\n**%s.** %s\n", c.ID, c.Title, c.What)
		if c.When != "" {
			fmt.Fprintf(&b, "\nRuns only when %s.\n", c.When)
		}
		fmt.Fprintf(&b, "\n**Fix:** %s\n", c.Fix)
	}
	return b.String()
}
