// Package lint holds repository-wide checks that are tests rather than
// linter rules: each names a convention from CONVENTIONS.md and fails with
// the places that break it. It has no code of its own.
package lint
