package sqlitetest

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"testing"
	"time"
)

// Store is what the package needs of a store: its connection pools by
// role ("read", "write"), as the SQLite backend's Pools gives them.
type Store interface {
	Pools() map[string]*sql.DB
}

// LockWrites holds db's write lock (BEGIN IMMEDIATE) until release:
// db's writes meet SQLITE_BUSY after its busy timeout, while its reads
// go on (WAL).
func LockWrites(t testing.TB, db Store) (release func()) {
	t.Helper()
	return hold(t, db, "BEGIN IMMEDIATE")
}

// LockAll holds db's file in exclusive locking mode until release, and
// makes db keep no idle connection from then on: each of db's reads and
// writes opens a connection that meets SQLITE_BUSY after its busy
// timeout. In WAL mode only a lock taken while db holds no connection
// keeps its reads out.
func LockAll(t testing.TB, db Store) (release func()) {
	t.Helper()
	for _, p := range db.Pools() {
		p.SetMaxIdleConns(0)
	}
	// The lock outlives the transaction in exclusive locking mode: the
	// read after BEGIN takes it, and only closing the connection lets it
	// go.
	return hold(t, db, "PRAGMA locking_mode=EXCLUSIVE", "BEGIN EXCLUSIVE", "SELECT count(*) FROM sqlite_master")
}

// hold runs lock on a connection of its own to db's file, waiting up
// to 30 s for the file, and returns what closes it.
func hold(t testing.TB, db Store, lock ...string) (release func()) {
	t.Helper()
	ctx := context.Background()
	var path string
	if err := db.Pools()["read"].QueryRowContext(ctx, "SELECT file FROM pragma_database_list WHERE name = 'main'").Scan(&path); err != nil {
		t.Fatal(err)
	}
	other, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(1000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	// An exclusive lock in WAL mode is refused at once, whatever the
	// busy timeout, while one of db's connections still has the file
	// open (a write finishing, a connection on its way back to the
	// pool), and a busy store may leave it only short gaps: try again
	// on a fresh connection, a second at a time, for a bounded time.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		conn, err := take(ctx, other, lock)
		if err == nil {
			return func() {
				conn.Close()
				if err := other.Close(); err != nil {
					t.Error(err)
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// take runs the lock statements on a new connection of other, closed
// again if one fails.
func take(ctx context.Context, other *sql.DB, lock []string) (*sql.Conn, error) {
	conn, err := other.Conn(ctx)
	if err != nil {
		return nil, err
	}
	for _, q := range lock {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			// Raw drops the connection rather than pooling it in
			// exclusive locking mode.
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
			conn.Close()
			return nil, fmt.Errorf("%s: %w", q, err)
		}
	}
	return conn, nil
}
