package sqlstore

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/varde-eid/varde/internal/store"
)

var _ store.Snapshots = (*DB)(nil)

// snapshotStart is the first read of a snapshot, which fixes it: SQLite
// takes a deferred transaction's snapshot at its first read of a table,
// and PostgreSQL a REPEATABLE READ transaction's at its first query.
// Until then a commit could still show in it.
const snapshotStart = "SELECT count(*) FROM schema_migrations"

// ReadSnapshot implements store.Snapshots with one read transaction on
// one connection of the read pool: on SQLite a deferred BEGIN, whose
// reads in WAL mode all see the database as the first one did, without
// a lock that holds the writer back; on PostgreSQL REPEATABLE READ READ
// ONLY. The transaction is rolled back when fn returns or panics.
func (db *DB) ReadSnapshot(ctx context.Context, fn func(ctx context.Context, s store.Snapshot) error) error {
	tx, err := db.r.BeginTx(ctx, db.snapshotOptions())
	if err != nil {
		return fmt.Errorf("begin snapshot: %w", unavailable(err, false))
	}
	defer tx.Rollback() //nolint:errcheck // read-only: nothing to keep
	var n int64
	if err := tx.QueryRowContext(ctx, snapshotStart).Scan(&n); err != nil {
		return fmt.Errorf("begin snapshot: %w", unavailable(err, false))
	}
	view := &DB{d: db.d, path: db.path, r: db.r, st: db.st, snap: tx}
	view.idle.Store(db.idle.Load())
	view.log.Store(db.log.Load())
	return fn(ctx, snapshotReads{view})
}

// snapshotOptions are the options of a snapshot's transaction: the
// dialect's for one snapshot, or else read-only (which the SQLite driver
// begins as a deferred transaction whatever the pool's _txlock).
func (db *DB) snapshotOptions() *sql.TxOptions {
	if db.d.snapshot != nil {
		return db.d.snapshot
	}
	return &sql.TxOptions{ReadOnly: true}
}

// snapshotReads is a snapshot's DB with only the reads of store.Snapshot
// to call: it has no writer, and no cache of records, which may hold
// what was committed after the snapshot.
type snapshotReads struct{ store.Snapshot }

// readQuerier runs a read query.
type readQuerier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// reads is where a plain read runs: the read pool, or in a snapshot its
// transaction.
func (db *DB) reads() readQuerier {
	if db.snap != nil {
		return db.snap
	}
	return db.r
}

// rstmt is st, a statement prepared on the read pool, as a read runs
// it: itself, or in a snapshot bound to its transaction.
func (db *DB) rstmt(ctx context.Context, st *sql.Stmt) *sql.Stmt {
	if db.snap != nil {
		return db.snap.StmtContext(ctx, st)
	}
	return st
}
