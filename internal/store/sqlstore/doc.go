// Package sqlstore implements every interface of package store over SQL.
//
// OpenSQLite opens the embedded default backend, SQLite through the pure
// Go driver modernc.org/sqlite, for one node. OpenPostgres opens the
// backend several nodes share, PostgreSQL through pgx (ADR 13). The
// query layer (the files named after the aggregates) is written once
// with '?' placeholders and portable SQL (INSERT ... ON CONFLICT,
// UPDATE ... RETURNING); what differs per database lives in the dialect
// value (dialect.go), sqlite.go, postgres.go and migrations/<dialect>/.
//
// Storage conventions, the same in every dialect:
//   - times are integer unix microseconds in UTC; the zero time.Time is 0
//     and reads back as the zero time, and every other time reads back in
//     UTC (so 1970-01-01T00:00:00Z itself cannot be stored);
//   - booleans are integers 0 and 1;
//   - string slices, identifier lists and maps are JSON text, which keeps
//     a nil slice apart from an empty one;
//   - byte slices are blobs (an empty slice may read back as nil).
//
// Schema changes are numbered SQL files under migrations/<dialect>/,
// embedded in the binary and applied in order, each in its own
// transaction, with the applied versions recorded in schema_migrations.
// Migrations are additive, so an older node ignores versions it does
// not know. The tools that open a node's database (OpenExistingSQLite,
// OpenExistingPostgres) migrate nothing, and refuse a schema older or
// newer than their build's (SchemaError), except the backup's
// (BackupSQLite), which copies a store of an older schema as it is,
// and the check of such a backup, which reads it on a migrated copy
// (OpenSQLiteUpgradedCopy); both read a store or backup as its node
// left it (ReadSQLiteAsLeft), changing no file beside it.
//
// SQLite specifics: the database runs in WAL mode with synchronous=NORMAL,
// a busy timeout and foreign keys on, set through the DSN so every pooled
// connection gets them; the write connection overwrites what it deletes
// (secure_delete), so that a deleted audit address (ADR 38) is not left
// in the file's free space. Reads use a pool of query-only connections and
// never wait for writes. Every write goes through one goroutine that owns
// the single write connection (writer.go): it takes all the operations
// waiting at that moment, runs them in one BEGIN IMMEDIATE transaction
// and commits once (group commit). A commit costs several statements'
// worth of system calls, so under load this multiplies write throughput;
// writers in this process never contend for the file lock, and each
// operation still returns only after its own data is committed. An
// operation of several statements runs inside a savepoint, so its
// failure undoes only its own work. A background checkpointer copies the
// WAL into the database file, keeping checkpoints and their fsyncs off
// the write path; one that fails (a full disk) is counted
// (DB.CheckpointFailures) and logged, at most once a minute, since the
// WAL grows until one succeeds.
//
// What the writer and the node keep in memory, because this process is
// the only one writing its SQLite file (ADR 5): the writer goroutine
// keeps the audit chain's head (seq and hash) as of its last commit, so
// an append does not read it back; a rollback makes it read it again,
// and an append that clashes with another process's event (same seq)
// reads it and tries once more. The auth requests and sessions this DB
// wrote are kept as committed, updated by the writer after each commit
// in commit order (cache.go), so reading back the request or session a
// login wrote moments before costs a map lookup instead of a query on a
// connection whose page cache the last commit emptied. Persons are kept
// as read (a login reads its person twice); a read is kept only if no
// write of persons committed while it ran, and the writer drops a person
// after each commit that changed it. If another process commits (PRAGMA
// data_version, checked at every write transaction and every second when
// idle), the writer drops all of these copies and the audit head.
//
// Six operations exist to save a commit each and are atomic (a
// savepoint): CreateSession with events stores a session with the audit
// events recording how it began, CreateGrantTokens stores a grant with
// its tokens (and the audit event recording their issue),
// CreateGrantTokensForCode does so and spends the code the grant is
// issued from, with RedeemAuthCode's conditional UPDATE, so a code is
// spent only if its grant is stored, RotateToken
// uses up a refresh token and stores its successors (and their event),
// RetryRotation replaces what a rotation issued with new tokens (and
// their event), only if none of it was used (ADR 55),
// and CreateAuthCodeForRequest deletes an authorization request and
// stores its code, only if the delete found the request, so a request
// yields one code at most.
//
// Most operations are one statement: RedeemAuthCode, UseRecoveryCode,
// UseDeskCode (which reads why after an UPDATE that changed nothing),
// TakeChallenge and the use in RotateToken are a conditional UPDATE or
// DELETE with RETURNING, so two concurrent callers cannot both win. Operations
// that mark something used (RedeemAuthCode, CreateGrantTokensForCode,
// RotateToken, RetryRotation, MarkTokenUsed, UseRecoveryCode,
// UseDeskCode, RevokeGrant) reject a zero now, since a zero time is how "unused" is
// stored. Constraint violations become store.ErrConflict (unique and
// primary keys) or store.ErrNotFound (a missing referenced person), by
// SQLite's extended result code.
//
// Errors that mean the store could not be reached or is overloaded
// wrap store.ErrUnavailable (unavailable.go): on PostgreSQL a refused or
// dropped connection, SQLSTATE classes 08 and 53, 57P01-57P03, 57P05,
// 57014 (statement timeout), 25006 (a write refused by a server that
// takes none), 55000 for a write when the server then says it is in
// recovery (a standby refusing what only a primary can do:
// writer.markStandby; from a primary 55000 is the request's fault and
// stays a failure), and a clash (40001, 40P01) still there after the writer
// ran the operation again; on SQLite SQLITE_BUSY or SQLITE_LOCKED after
// the busy timeout; and a write transaction's own deadline. Constraint
// violations, missing rows, bad data and writes whose outcome is
// unknown never do: a write of one statement in autocommit answered
// with 57P01 admin_shutdown or 57P02 crash_shutdown, like one whose
// connection dropped after it was sent, may have been committed before
// the server ended its session (unansweredPostgres), so its outcome is
// unknown, not unavailable. Reads are marked where their
// errors leave the store: the PostgreSQL read pool's connections, a
// single-row read's not-found check, and the row scan of a list.
//
// The status page's records (status.go, webhooks.go) rest on the same
// single-statement or savepoint discipline: a partial unique index on
// the component of open incidents makes OpenIncident the cluster-wide
// compare-and-swap that opens one incident per outage; a timeline entry
// is numbered by its own INSERT ... SELECT max(seq) + 1; ClaimWebhooks is
// one UPDATE ... RETURNING over the due, unleased deliveries, so no two
// claims share one; and FinishWebhookAttempt holds only for the node
// named in the lease.
//
// Who may open a SQLite store (owner.go): a file SQLite or the node
// makes belongs to the user who runs it, mode 0600, so one made by
// another user than the store's owner would stop the owner's node.
// Run as root, OpenSQLite and LockNode (the node) refuse a store whose
// file, or, before the node's first start, directory, is another
// user's; the tools' opens (OpenExistingSQLite, OpenSQLiteReadOnly) do
// not, since SQLite gives the -wal, -shm and journal files it makes as
// root to the database's owner. Any other user may open only a store
// whose file is theirs, and no store beside whose file lies a -wal,
// -shm or .lock file of another user. The error (ErrWrongUser) names
// the owner and what to run. A PostgreSQL store has no files here.
//
// Benchmarks: go test -bench . -run '^$' ./internal/store/sqlstore/
// (BenchmarkLogin runs the store calls of whole logins at several
// concurrency levels and reports logins/s and writes per commit).
//
// PostgreSQL specifics (ADR 13): other nodes write the same database at
// any moment, so nothing committed is kept in memory beyond its
// transaction (the caches above are nil there); the writer keeps the
// audit head of its last commit, and an append whose seq another node
// took meanwhile inserts nothing and reads the head in the same
// statement, without the error that would abort the transaction (ADR
// 52); every write transaction first takes
// the audit chain's transaction-level advisory lock, before any row
// lock, so appends from every node follow one another and transactions
// that append cannot deadlock over the order of their locks, so what
// polls writes only when there is something to write (a webhook poll
// with nothing due is one read, ClaimWebhooks); the lock
// goes with the BEGIN, "BEGIN; SELECT pg_advisory_xact_lock(...)" as
// one simple query, in one round trip (postgres_writes.go); reads that an operation follows with a write of
// the same row are FOR UPDATE. Each statement is a round trip to
// another process, so writes that go together are one statement where
// a WITH may hold an INSERT or DELETE (dialect.writableWith): an event
// and its address kept apart (ADR 38) are one INSERT, a grant and its
// tokens are one, and so are a request's delete and its code's insert
// (CreateAuthCodeForRequest), which then runs in autocommit when alone. TestPostgresRoundTrips
// counts them at the wire (pgtest.Counter), and
// internal/app's TestLoginRoundTripsPostgres a whole login's. Any server error aborts a PostgreSQL
// transaction, so a lone operation runs without a savepoint and is
// rolled back whole if it fails, and a server error inside a batch rolls
// the batch back and runs the other operations again alone; after a
// deadlock or serialization failure its own operation also runs again,
// alone and whole (its reads included), up to 8 times in all, each time
// after a short random pause (writer.again).
// Keys that are not UTF-8 text without NUL, which PostgreSQL cannot
// compare, name no record; the replay cache, whose keys carry values
// from requests, stores such a key hex-encoded (storedKey). Each node keeps its writer's group commit on
// one connection, and reads use a pool. A write transaction that has not
// committed within 10 s (a server that stopped answering) is rolled
// back and its connection dropped, so the writer is never held for long.
// A BEGIN that fails (the server ended the session: a restart, a
// failover) is tried once more on a new connection, since nothing ran.
// The write pool pings a connection before handing it out after a second
// at rest, and also whenever the server has spoken or hung up on it
// since its last answer (a peek at the socket that waits for and sends
// nothing: postgresShouldPing), so that a write of one statement in
// autocommit, whose statement is its commit and which cannot be run
// again once sent, is not sent on a session that has visibly ended. A
// write transaction that fails before its COMMIT was sent because its
// session was gone (57P01-57P03 or 57P05 from the server, a broken or
// closed connection: sessionEndedPostgres) cannot have taken effect, so
// it runs again whole, every operation of its batch, once, on a new
// connection, within its first run's deadline and only while a caller
// still waits (writer.rerun); what runs after a commit runs only after
// the one that succeeded. A connection that broke without the server
// ending its session (a network partition) may leave the server holding
// the first run's locks, which the second run then waits for, at most
// until that deadline. A failure at or after COMMIT is never run again:
// its outcome is unknown (store.ErrOutcomeUnknown), unless the server
// refused the COMMIT for a clash (ADR 28).
// A read that meets a session the server ended (a SELECT, or the BEGIN
// of a read transaction) runs again on another connection, as
// database/sql does with a connection its driver reports bad; no other
// statement on the read pool is run again (postgresReadConnector).
//
// The behaviour every backend must show is pinned down by the conformance
// suite in package storetest, not here.
package sqlstore
