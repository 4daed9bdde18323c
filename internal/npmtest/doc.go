// Package npmtest checks, for tests, that an npm package Varde's tests
// use (axe-core, openid-client) is installed under third_party/ at the
// version its package.json pins. Installing is the scripts' business
// (scripts/ensure-*.sh, run by make test); whether a missing package
// skips or fails a test is the caller's.
package npmtest
