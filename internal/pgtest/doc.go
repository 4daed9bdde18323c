// Package pgtest gives tests a real PostgreSQL database: each test gets a
// fresh, empty database of its own on a private, throwaway server that
// lives only as long as its test binary. It is used only by tests, such
// as those of the PostgreSQL store backend; nothing in a node imports it.
//
// A package whose tests need PostgreSQL runs them through Main, from its
// TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
//
// and each test calls NewDatabase for a DSN. The first call starts the
// server: initdb into a temporary directory, then the postgres binary as
// a child process listening only on 127.0.0.1, with durability switched
// off for speed. Main stops it when the tests have run and removes its
// directory. When run as root, as CI does, the server runs as the
// postgres system user, because PostgreSQL refuses to run as root.
//
// A test that stops, starts or fails over a server has one of its own:
// NewServer, whose Stop and Start end every session and serve the same
// cluster again, whose Crash ends it as an immediate shutdown does (Start
// then recovers the cluster from its WAL, which Log shows), and NewStandby, a hot standby of it made with
// pg_basebackup that refuses writes until Promote.
//
// Dump and Restore run the server's pg_dump and pg_restore, for a test
// of what an operator does with the backups they make.
//
// A missing PostgreSQL fails the test, never skips it: install it with
// scripts/ensure-postgres.sh (Debian's postgresql package; make test
// does this).
package pgtest
