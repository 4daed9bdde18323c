package sqlstore

import (
	"database/sql"
	"encoding/hex"
	"io/fs"
	"strings"
	"time"
	"unicode/utf8"
)

// dialect is everything the shared query layer needs to know about one
// database engine. Queries are written with '?' placeholders and portable
// SQL; a dialect rewrites placeholders where its driver wants another
// style and translates driver errors into store errors.
type dialect struct {
	// name names the dialect in errors and the migrations directory.
	name string
	// migrations holds the dialect's NNNN_name.sql files at its root.
	migrations fs.FS
	// rebind rewrites a query's '?' placeholders into the driver's style.
	rebind func(query string) string
	// classify returns store.ErrConflict (wrapping err) for unique and
	// primary key violations, store.ErrNotFound for foreign key violations
	// (the referenced record does not exist), and err unchanged otherwise.
	classify func(err error) error
	// fatal reports whether an error from a statement inside a
	// transaction may have ended or spoiled the transaction, so that
	// operations sharing it must be run again on their own.
	fatal func(err error) bool
	// transient reports whether err is a clash with another transaction
	// (a deadlock, a serialization failure) that running the operation
	// again in a transaction of its own would not meet; nil: never.
	transient func(err error) bool
	// unanswered reports whether err means a statement may have reached
	// the server but its answer never came back (the connection dropped
	// or timed out after it was sent), so the statement may or may not
	// have been carried out; nil: never.
	unanswered func(err error) bool
	// sessionEnded reports whether err, from a statement inside a write
	// transaction before its COMMIT, means the connection's session was
	// gone (the server ended it, or the connection broke), so that the
	// transaction cannot have taken effect and may run again whole on a
	// new connection (writer.rerun); nil: never.
	sessionEnded func(err error) bool
	// needsPrimary reports an error that a server in recovery (a
	// standby) gives to what only a primary can do, and that a primary
	// may give for a fault of the request: the writer asks the server
	// with inRecovery before it takes it for the store's being
	// unavailable (writer.markStandby); nil: never.
	needsPrimary func(err error) bool
	// inRecovery is a query whose one boolean says the server is in
	// recovery.
	inRecovery string
	// abortsOnError: any failed statement spoils the whole transaction
	// until it is rolled back to a savepoint (PostgreSQL), so fatal holds
	// for every error a statement returned, and a savepoint rolled back
	// leaves the transaction whole.
	abortsOnError bool
	// snapshot are the options of a read transaction whose statements
	// must all see one snapshot of the database; nil: the driver's
	// default transaction does (SQLite's deferred transaction reads one
	// snapshot until it ends; PostgreSQL's read committed takes a new
	// one for every statement).
	snapshot *sql.TxOptions
	// shared: other nodes write the database at any moment, so nothing
	// committed may be kept in memory beyond its transaction (no cached
	// records, no audit head across transactions), and there is no
	// cheap way to learn that another process committed.
	shared bool
	// auditLock, if set, is taken with the BEGIN of each of the
	// writer's transactions (postgresWriteConn), before any row's lock,
	// and holds appends by every other node until the transaction ends.
	// Empty where the transaction's write lock serialises appends
	// already (SQLite).
	auditLock string
	// forUpdate ends a read that an operation follows with a write of
	// the same row, where another node could change the row in between
	// (" FOR UPDATE"); empty where the transaction holds the write lock
	// already (SQLite).
	forUpdate string
	// forKeyShare ends a read of a row whose deletion must wait for the
	// reading transaction, and which the read must not find if a
	// deletion committed first (" FOR KEY SHARE": a delete waits, an
	// update of other columns does not); empty where the transaction
	// holds the write lock already (SQLite).
	forKeyShare string
	// writeTimeout, if positive, bounds each write transaction: a server
	// that stops answering (a network partition) must not hold the
	// node's one writer, and every write waiting for it, for as long as
	// TCP takes to give up. The transaction is rolled back and its
	// operations fail.
	writeTimeout time.Duration
	// writableWith: a WITH may hold an INSERT, UPDATE or DELETE whose
	// rows the statement after it uses (PostgreSQL), so that writes that
	// go together are one statement, and one round trip, rather than
	// several; SQLite's WITH holds only SELECTs.
	writableWith bool
	// textOnly: TEXT columns hold only valid UTF-8 without NUL
	// (PostgreSQL), and comparing one with anything else is an error.
	textOnly bool
}

// unmatchable reports whether one of keys cannot name a stored record:
// where the database keeps only UTF-8 text without NUL (textOnly), a key
// that is not such text was never stored, and the database would refuse
// the comparison rather than find nothing. Lookups by such keys (from
// cookies or parameters no one checked) answer "not found" without
// asking.
func (db *DB) unmatchable(keys ...string) bool {
	if !db.d.textOnly {
		return false
	}
	for _, k := range keys {
		if !utf8.ValidString(k) || strings.IndexByte(k, 0) >= 0 {
			return true
		}
	}
	return false
}

// hexKeyPrefix begins a key stored hex-encoded (storedKey).
const hexKeyPrefix = "\x01hex:"

// storedKey returns key as the database stores it, for keys that are
// stored rather than only looked up (the replay cache's, which hold
// values from requests). Where the database keeps only text
// (textOnly), a key that is not text, or that begins with hexKeyPrefix,
// is stored as hexKeyPrefix and its bytes in hex; every other key as it
// is. No two keys are stored alike.
func (db *DB) storedKey(key string) string {
	if !db.d.textOnly || (!db.unmatchable(key) && !strings.HasPrefix(key, hexKeyPrefix)) {
		return key
	}
	return hexKeyPrefix + hex.EncodeToString([]byte(key))
}
