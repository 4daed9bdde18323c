// Package storetest is the conformance suite every store backend must
// pass: Run(t, open) checks each aggregate of package store with named
// subtests for round trips, not-found and conflict errors,
// compare-and-swap updates, expiry, time zones and concurrency.
//
// A backend's own test is a few lines that call Run with a function
// returning a fresh, empty store. Never skip a subtest for one backend:
// fix the backend. The rules the suite holds every backend to are listed
// on store.Store; store.VerifyAuditChain checks the audit log's chain.
//
// The package only runs in tests; it imports testing and embeds the time
// zone database so the zone checks work on hosts without one.
package storetest
