// Package app is the composition root: it builds a node's components from
// a validated config.Config, wires them together explicitly and mounts
// their handlers. Nothing else imports it except cmd/varde and tests.
package app
