// Package doccheck keeps the operator documentation true. Its tests read
// every Markdown document of the repository and check that each command of
// tetherctl, tether-plane, docsvc and tether-agent they show exists with the
// flags shown, that each aws command in a code block runs against the AWS
// API emulator, that links between documents resolve, and that the
// generated sections are current. PayloadFields generates the table of the
// fields the agent sends (docs/support.md); `make docs` regenerates it.
package doccheck
