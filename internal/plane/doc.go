// Package plane is the vendor's coordination plane: the signed agent API,
// the admin API, the fleet dashboard and alert delivery. Its storage
// (licenses, installs, heartbeats, diagnostics, alerts, staff and the audit
// log) is package planestore, which this package uses only through its
// exported surface.
//
// The plane never connects to an agent. Everything it knows arrives in a
// signed, strictly decoded request, and everything it keeps is typed and
// allow-listed, so a customer's reviewer can check what crosses the boundary
// by reading internal/wire.
package plane
