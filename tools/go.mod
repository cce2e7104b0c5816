// This go.mod only keeps the Go tool out of tools/node_modules (the CDK CLI
// ships Go template files that are not part of this project).
module github.com/tetherhq/tether/tools

go 1.26
