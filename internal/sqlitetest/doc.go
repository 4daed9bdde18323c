// Package sqlitetest holds a SQLite store's file locked from another
// connection, as another process could, so that a test meets the
// store's busy timeout and the real SQLITE_BUSY that follows it: a store
// that cannot be reached or is overloaded, without a fake in front of
// it; and a store of an older schema than this build's (Older), as an
// operator has one before upgrading. It is used only by tests; nothing in a node imports it.
//
// It opens its connection through database/sql's "sqlite" driver, which
// the test binary registers by importing the SQLite store backend.
package sqlitetest
