// Package archtest holds tests that keep Varde's architecture honest:
// every package documents itself, protocol packages never depend on
// policy packages or storage drivers, only package config reads the
// environment, and docs/spec-coverage.md and docs/fuzzing.md (which
// lists every fuzz target) cite only what exists, and
// docs/audit-reasons.md lists every reason an audit event can carry,
// and no other. It has no code
// outside its tests; each checker is itself tested on a small module in
// testdata that breaks every rule.
package archtest
