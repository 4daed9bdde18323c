// Package store defines Varde's stored records, the small per-aggregate
// interfaces that hold them, and the errors every backend returns.
//
// It owns no driver code: backends live in sqlstore (SQLite and
// PostgreSQL), and every backend must pass the conformance suite in
// storetest. Records are plain values; policy about them lives in the
// broker, session, audit and oidc packages.
package store
