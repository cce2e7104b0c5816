package ctl

import (
	"fmt"
	"strings"
)

// iamDoc renders docs/iam.md from deployerPermissions, the list the
// preflight check "permissions" simulates, so the two cannot differ. A
// test fails when the checked-in file is stale; `go test ./internal/ctl
// -run TestIAMDoc -update` rewrites it.
func iamDoc() string {
	var b strings.Builder
	b.WriteString(`<!-- Generated from internal/ctl/iampolicy.go; do not edit.
     Regenerate: go test ./internal/ctl -run TestIAMDoc -update -->

# IAM: what the deploying principal needs

The role or user that runs ` + "`tetherctl`" + ` and the CDK CLI for a deployment needs
the permissions below, and no more. Everything the stacks create (buckets,
databases, roles, services) is created by CloudFormation under the CDK
bootstrap's execution role, not by this principal: it needs to assume the
bootstrap's roles and to drive the stacks, and, for the steps tetherctl
takes itself, to copy images, run the migrate task, write its markers, read
and set the deployment's secrets and read the deployment's state.

` + "`tetherctl preflight`" + `'s check [` + "`permissions`" + `](preflight.md#permissions) asks
IAM's policy simulator whether the credentials in use are allowed each of
these actions on the deployment's own resources, and names any that are
denied. (It needs the ` + "`PreflightSimulate`" + ` statement itself; without it the
check warns and the rest of preflight still runs.)

Bootstrapping the account for the CDK (` + "`cdk bootstrap`" + `) is a one-time step
that creates IAM roles, and needs an administrator; it is not covered here.
Nor is support work: reviewing diagnostics requests and the egress ledger
through the agent exchange bucket (` + "`tetherctl diag`" + ` and ` + "`egress`" + ` with
` + "`--config`" + `) takes a smaller policy of its own, given in the
[support.md](support.md#review-from-your-workstation).
With ` + "`plane.automatic_upgrades`" + `, staged releases are applied by the
scheduled ` + "`tether-upgrade`" + ` task under its own task role, which the services
stack creates ([deploy/cdk/README.md](../deploy/cdk/README.md#automatic-upgrades)):
nothing more is needed here, and the agent's role cannot change a stack.
The exchange bucket is written by the ` + "`tether-exchange`" + ` service under
its own task role; the agent's role has no S3 permission.

## Statements

| Sid | for | actions | resources |
|---|---|---|---|
`)
	for _, p := range deployerPermissions() {
		forText := p.For
		if p.BuildOnly {
			forText += " (only with `images.source: build`)"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", p.Sid, forText, codeList(p.Actions), codeList(p.Resources))
	}
	policy, err := policyDocument(deployerPermissions())
	if err != nil {
		panic(err) // strings and lists of strings always encode
	}
	b.WriteString(`
## The policy

Replace ` + "`ACCOUNT`" + ` (the 12-digit account ID), ` + "`REGION`" + `, ` + "`NAME`" + `
(deployment.yaml's ` + "`name`" + `) and ` + "`QUALIFIER`" + ` (deployment.yaml's ` + "`cdk.qualifier`" + `,
or the CDK's default ` + "`" + defaultQualifier + "`" + `), and leave out the ` + "`ImageBuild…`" + `
statements unless images are built in the account. The resources are
patterns: ` + "`NAME-*`" + ` matches only this deployment's stacks and roles, so one
principal per deployment stays within its own.

` + "```json\n")
	b.Write(policy)
	b.WriteString("\n```\n")
	return b.String()
}

func codeList(items []string) string {
	quoted := make([]string, len(items))
	for i, s := range items {
		quoted[i] = "`" + s + "`"
	}
	return strings.Join(quoted, "<br>")
}
