// Package plane is the vendor's coordination plane: the store of licenses,
// installs, heartbeats, diagnostics and alerts; the signed agent API; the
// admin API; and the fleet dashboard.
//
// The plane never connects to an agent. Everything it knows arrives in a
// signed, strictly decoded request, and everything it keeps is typed and
// allow-listed, so a customer's reviewer can check what crosses the boundary
// by reading internal/wire.
package plane
