// Package upgradetest holds the end-to-end tests of the local runtime's
// release lifecycle: real releases built with test-only build tags,
// published with tether-plane, installed with tetherctl upgrade --local on a
// running tetherctl dev stack under load.
package upgradetest
