// Package planestore is the vendor plane's storage on SQLite or PostgreSQL:
// licenses, installs and their heartbeats, nonces, telemetry, diagnostic
// requests, queued alerts, staff, automation tokens, the append-only audit
// log, and the state the plane's replicas share (dashboard sessions, leases,
// rate counters), with the migrations that make its schema.
//
// It stands apart from the plane's HTTP side (package plane: agent API,
// admin API, dashboard, alerts), which uses only what is exported here; the
// store links no HTTP or template code (TestStoreStandsApartFromTheAPI).
package planestore
