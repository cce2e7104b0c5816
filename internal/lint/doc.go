// Package lint holds repository-wide checks that are tests rather than
// linter rules: each states one of the project's code conventions (every
// package says what it is for, say) and fails with the places that break it.
// It has no code of its own.
package lint
