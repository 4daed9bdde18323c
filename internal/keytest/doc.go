// Package keytest gives tests the RSA signing key of a node on
// localhost without key files, made once per test binary: such a node
// would make up one of its own, at keys.RSABits, which costs more CPU
// than most tests spend. A node is given it through
// app.Options.RSASigner. It is used only by tests; nothing in a node
// imports it.
package keytest
