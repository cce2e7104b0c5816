// Package doccheck keeps the operator documentation true. Its tests read
// every Markdown document of the repository and check that:
//
//   - each command of tetherctl, tether-plane, docsvc, tether-agent and
//     tether-upgrade they show (in a code block or a code span) answers
//     --help, run in-process, and lists each flag shown;
//   - each aws command in a code block runs, placeholders filled, with the
//     pinned AWS CLI against the AWS API emulator holding a deployment's
//     resources (aws_test.go: placeholders, world, motoGaps), and each aws
//     command quoted in prose is one the CLI accepts;
//   - links and headings resolve, nothing links outside the repository but
//     externalLinks, and the runbooks in pendingRunbooks are the only
//     targets allowed to be missing;
//   - the generated sections are current: the fields the agent sends
//     (PayloadFields, docs/support.md) and the keys of deployment.yaml
//     (DeploymentKeys, docs/deployment-config.md); `make docs` rewrites them
//     with docs/iam.md and docs/preflight.md;
//   - the configuration tables name only what docsvc and the agent read, the
//     documents the code names and the tests the documents name exist, and
//     no document promises what does not exist.
package doccheck
