// Package storetest is the conformance suite every store backend must
// pass: Run(t, open) checks each aggregate of package store with named
// subtests for round trips, not-found and conflict errors,
// compare-and-swap updates, expiry, time zones and concurrency.
//
// A backend's own test is a few lines that call Run with a function
// returning a fresh, empty store. A backend that several nodes share
// (PostgreSQL) also passes RunShared, whose open returns two stores over
// one fresh database, as two nodes hold them: neither may trust what it
// remembers of its own writes over the other's, and single-use and
// read-then-write operations must hold when the two race (audit chain,
// codes, session client lists, passkey removal, webhook leases, incident
// timelines), and an operation whose transaction clashed with the other
// node's (a deadlock) runs again rather than fail. Never skip a subtest for one backend:
// fix the backend. The rules the suite holds every backend to are listed
// on store.Store; store.VerifyAuditChain checks the audit log's chain.
//
// The package only runs in tests; it imports testing and embeds the time
// zone database so the zone checks work on hosts without one.
package storetest
