package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/varde-eid/varde/internal/store"
)

// PostgreSQL SQLSTATEs that mean the server cannot serve the request
// now, though nothing about the request was wrong (PostgreSQL
// documentation, Appendix A).
const (
	pgClassConnection    = "08" // connection exception
	pgClassResources     = "53" // insufficient resources: too many connections, out of memory or disk
	pgAdminShutdown      = "57P01"
	pgCrashShutdown      = "57P02"
	pgCannotConnectNow   = "57P03"
	pgQueryCanceled      = "57014" // statement_timeout, or a cancel request
	pgIdleSessionTimeout = "57P05"
	// A write refused by a server that takes none: a primary demoted to
	// a standby, or one reached through a proxy that has not yet moved
	// to the new primary, at a failover. The write changed nothing.
	pgReadOnlyTransaction = "25006"
	// What only a primary can do, asked of a server in recovery (a
	// standby: "recovery is in progress"), is refused with 55000
	// object_not_in_prerequisite_state; so are requests that are wrong
	// on any server (currval before nextval, say). The writer tells them
	// apart by asking the server whether it is in recovery (errStandby).
	pgObjectNotInPrerequisiteState = "55000"
)

// errStandby marks a write's error that a server in recovery gave to
// what only a primary can do (pgObjectNotInPrerequisiteState), as the
// server itself said (writer.markStandby): the write changed nothing,
// and a primary may serve it once a failover has made one.
var errStandby = errors.New("the database server is a standby in recovery, which takes no writes")

// unavailable returns err wrapped with store.ErrUnavailable when it
// means the store could not be reached or is overloaded, and err as it
// is otherwise. ownDeadline says the operation ran under a time limit
// of the store's own (a write transaction's), not only its caller's, so
// that a deadline met is the store's slowness. A constraint violation, a
// missing row, bad data and an outcome that is unknown (a write that may
// have been stored: see store.ErrOutcomeUnknown) are never unavailable.
func unavailable(err error, ownDeadline bool) error {
	if err == nil || errors.Is(err, store.ErrUnavailable) || errors.Is(err, store.ErrOutcomeUnknown) {
		return err
	}
	if isUnavailable(err) || (ownDeadline && errors.Is(err, context.DeadlineExceeded)) {
		return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
	}
	return err
}

// isUnavailable classifies a driver error of either backend.
func isUnavailable(err error) bool {
	if errors.Is(err, errStandby) {
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		if len(pe.Code) == 5 && (pe.Code[:2] == pgClassConnection || pe.Code[:2] == pgClassResources) {
			return true
		}
		switch pe.Code {
		case pgAdminShutdown, pgCrashShutdown, pgCannotConnectNow, pgQueryCanceled, pgIdleSessionTimeout, pgReadOnlyTransaction:
			return true
		case pgSerializationFailure, pgDeadlockDetected:
			// The writer runs a clashing operation again (clashTries):
			// one that still clashes reaches its caller as a store too
			// busy to serve it now.
			return true
		}
		return false
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		// SQLITE_BUSY and SQLITE_LOCKED come after the busy timeout
		// (sqliteBusyTimeoutMS): another connection or process held the
		// lock all that time.
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
			return true
		}
		return false
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return true
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		// The caller's: it gave up (context.DeadlineExceeded is a
		// net.Error too). The store's own deadline is unavailable's.
		return false
	}
	if pgconn.SafeToRetry(err) || errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) {
		return true
	}
	// A read whose connection failed under it: the statement changed
	// nothing (reads do not write; writes that may have are
	// store.ErrOutcomeUnknown before they come here).
	var ne net.Error
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &ne)
}

// read passes on what a read's QueryContext returned, its error
// classified as unavailable classifies it: the one place a list's
// query, and not only its rows, says the store could not be reached
// (SQLite's reads have no driver wrapper to do it, as PostgreSQL's read
// pool has in postgresReadConn). It is called around the QueryContext
// call itself: rows, err := read(st.QueryContext(ctx, args...)).
func read(rows *sql.Rows, err error) (*sql.Rows, error) {
	return rows, unavailable(err, false)
}
