// Package archtest holds tests that keep Varde's architecture honest:
// every package documents itself, protocol packages never depend on
// policy packages or storage drivers, and only package config reads the
// environment. It has no code outside its tests; each checker is itself
// tested on a small module in testdata that breaks every rule.
package archtest
