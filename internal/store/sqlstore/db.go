package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/varde-eid/varde/internal/store"
)

// Interface guards: DB is a whole store and each of its parts.
var (
	_ store.Store         = (*DB)(nil)
	_ store.Clients       = (*DB)(nil)
	_ store.Persons       = (*DB)(nil)
	_ store.Passkeys      = (*DB)(nil)
	_ store.RecoveryCodes = (*DB)(nil)
	_ store.DeskCodes     = (*DB)(nil)
	_ store.AuthRequests  = (*DB)(nil)
	_ store.Challenges    = (*DB)(nil)
	_ store.Sessions      = (*DB)(nil)
	_ store.AuthCodes     = (*DB)(nil)
	_ store.Grants        = (*DB)(nil)
	_ store.Tokens        = (*DB)(nil)
	_ store.ReplayCache   = (*DB)(nil)
	_ store.AuditLog      = (*DB)(nil)
	_ store.PublicKeys    = (*DB)(nil)
	_ store.Sweeper       = (*DB)(nil)
)

// DB is a store over one SQL database. It is safe for concurrent use.
// OpenSQLite returns one; the query layer below it is the same for every
// dialect.
type DB struct {
	d dialect
	// path is the SQLite database file.
	path string
	// w has exactly one connection and takes every write, so writers
	// queue in Go rather than contend for the database lock.
	w *sql.DB
	// r is a pool of read-only connections.
	r *sql.DB
	// snap is, in a snapshot's view of the store (ReadSnapshot), the
	// read transaction its reads run in; nil otherwise.
	snap *sql.Tx
	st   statements
	// wr runs every write on w, batching concurrent ones.
	wr *writer
	// migrated is what opening the database migrated (Migrated).
	migrated SchemaUpgrade
	// ckpt checkpoints the WAL in the background; nil if not running.
	ckpt *checkpointer
	// log receives what the store finds going wrong in the background
	// (SetLogger); nil: slog.Default().
	log atomic.Pointer[slog.Logger]
	// authReqs and sessions hold the auth requests and sessions this
	// process wrote, as committed (cache.go).
	authReqs *recent[store.AuthRequest]
	sessions *recent[store.Session]
	// people caches persons as read (cache.go).
	people *persons
	// idle is the session idle timeout (SetSessionIdleTimeout), in
	// nanoseconds; 0: none.
	idle atomic.Int64

	closeOnce sync.Once
	closeErr  error
}

// start prepares the statements and starts the writer; the pools are open
// and migrated.
func (db *DB) start(ctx context.Context) error {
	if err := db.prepare(ctx); err != nil {
		return err
	}
	if !db.d.shared {
		// Left nil (keeping nothing) where other nodes write too.
		db.authReqs = newRecent(func(r *store.AuthRequest) time.Time { return r.ExpiresAt }, (*store.AuthRequest).Clone)
		db.sessions = newRecent(func(s *store.Session) time.Time { return s.ExpiresAt }, (*store.Session).Clone)
		db.people = newPersons()
	}
	db.wr = newWriter(db.w, db.d, &db.st, func() {
		db.authReqs.clear()
		db.sessions.clear()
		db.people.clear()
	})
	return nil
}

// Close stops the writer and the checkpointer after the writes in
// progress, then closes the statements and the pools. It may be called
// more than once.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		var errs []error
		if db.wr != nil {
			db.wr.close()
		}
		if db.ckpt != nil {
			errs = append(errs, db.ckpt.close())
		}
		errs = append(errs, db.st.close())
		if db.r != nil {
			errs = append(errs, db.r.Close())
		}
		if db.w != nil {
			errs = append(errs, db.w.Close())
		}
		db.closeErr = errors.Join(errs...)
	})
	return db.closeErr
}

// SetLogger sends what the store finds going wrong in the background,
// such as failed WAL checkpoints, to l instead of slog.Default().
func (db *DB) SetLogger(l *slog.Logger) { db.log.Store(l) }

func (db *DB) logger() *slog.Logger {
	if l := db.log.Load(); l != nil {
		return l
	}
	return slog.Default()
}

// CheckpointFailures returns how many background WAL checkpoints have
// failed since the store was opened: 0 where none run (PostgreSQL, a
// read-only SQLite store). A count that keeps rising means the WAL file
// is growing (a full disk, an I/O error).
func (db *DB) CheckpointFailures() uint64 {
	if db.ckpt == nil {
		return 0
	}
	return db.ckpt.failures.Load()
}

// Pools returns the connection pools, by name ("write", "read", and on
// SQLite "checkpoint", the background checkpointer's), for monitoring
// their use (database/sql's DBStats): how many connections are open and
// in use, and how often and how long callers waited for one.
func (db *DB) Pools() map[string]*sql.DB {
	pools := map[string]*sql.DB{"write": db.w, "read": db.r}
	if db.ckpt != nil {
		pools["checkpoint"] = db.ckpt.db
	}
	return pools
}

// Ping reports whether the database answers a query on both pools.
func (db *DB) Ping(ctx context.Context) error {
	var one int
	if err := db.r.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("ping read pool: %w", err)
	}
	err := db.w.PingContext(ctx)
	if errors.Is(err, driver.ErrBadConn) && ctx.Err() == nil {
		// The server ended the write connection's session since its last
		// use (a restart, a failover), and the pool has dropped it: the
		// database answers if a new connection does.
		err = db.w.PingContext(ctx)
	}
	if err != nil {
		return fmt.Errorf("ping write pool: %w", err)
	}
	return nil
}

// update runs an operation of several statements through the writer;
// if it fails, none of its statements take effect.
func (db *DB) update(ctx context.Context, fn op) error {
	return db.wr.do(ctx, true, fn)
}

// one runs an operation of one write statement, which may read after
// it only to explain its failure (writeReq.oneStatement).
func (db *DB) one(ctx context.Context, fn op) error {
	return db.wr.doOne(ctx, fn, nil)
}

// single runs an operation that writes with a single statement (it may
// read before or after) through the writer.
func (db *DB) single(ctx context.Context, fn op) error {
	return db.wr.do(ctx, false, fn)
}

// execN runs one write statement through the writer and returns how many
// rows it changed.
func (db *DB) execN(ctx context.Context, st *sql.Stmt, args ...any) (int64, error) {
	return db.execThen(ctx, nil, st, args...)
}

// execThen is execN that runs onCommit (if not nil) on the writer
// goroutine after the statement succeeded and committed (see
// writer.doThen).
func (db *DB) execThen(ctx context.Context, onCommit func(n int64), st *sql.Stmt, args ...any) (int64, error) {
	var n int64
	var then func()
	if onCommit != nil {
		then = func() { onCommit(n) }
	}
	err := db.wr.doOne(ctx, func(ctx context.Context, tx querier) error {
		var err error
		n, err = db.execCount(ctx, tx, st, args...)
		return err
	}, then)
	return n, err
}

// execCount runs st with args in tx and returns how many rows it
// changed; a constraint it violates is store.ErrConflict (classify).
func (db *DB) execCount(ctx context.Context, tx querier, st *sql.Stmt, args ...any) (int64, error) {
	res, err := tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	if err != nil {
		return 0, db.d.classify(err)
	}
	return res.RowsAffected()
}

// auditIn appends e, if it is not nil, in tx: the event of what tx
// changed, which commits with it or not at all.
func (db *DB) auditIn(ctx context.Context, tx querier, e *store.AuditEvent) error {
	if e == nil {
		return nil
	}
	return db.appendEvents(ctx, tx, []*store.AuditEvent{e})
}

// exec runs one write statement through the writer.
func (db *DB) exec(ctx context.Context, st *sql.Stmt, args ...any) error {
	_, err := db.execN(ctx, st, args...)
	return err
}

// execOne is exec that returns store.ErrNotFound when no row changed.
func (db *DB) execOne(ctx context.Context, st *sql.Stmt, args ...any) error {
	n, err := db.execN(ctx, st, args...)
	if err == nil && n == 0 {
		err = store.ErrNotFound
	}
	return err
}
