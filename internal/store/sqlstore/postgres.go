package sqlstore

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/varde-eid/varde/internal/store"
)

//go:embed migrations/postgres/*.sql
var postgresMigrationFiles embed.FS

const (
	// postgresMinReaders is the smallest read pool. Unlike SQLite's,
	// PostgreSQL's reads cross a socket and wait on it, so the pool is
	// larger than the core count.
	postgresMinReaders = 8
	// postgresWriteTimeout bounds a write transaction (dialect.writeTimeout):
	// far above a healthy commit (milliseconds), well below what people
	// wait for before giving up on a page.
	postgresWriteTimeout = 10 * time.Second
	// postgresTCPUserTimeout and postgresKeepAlive: see
	// postgresDialControl.
	postgresTCPUserTimeout = 10 * time.Second
	postgresKeepAlive      = 15 * time.Second
	// postgresConnectTimeout bounds each try to open a connection (TCP,
	// TLS, the startup and authentication), where the operator chose no
	// connect_timeout (postgresConfig): a healthy server
	// answers in milliseconds, even over TLS with SCRAM, and one behind
	// a firewall that drops packets, or a dead host, would otherwise
	// hold a starting node's try (WaitForStore) and a request needing a
	// new pooled connection for TCP's connect timeout, about two
	// minutes, or for ever where something accepts and never answers.
	// It matches postgresTCPUserTimeout, so that a server that has gone
	// is given up on as fast when connecting as when in use, and stays
	// below store.start_timeout's usual values and the pause between a
	// starting node's tries (StoreWaitMax).
	postgresConnectTimeout = 10 * time.Second
	// postgresLockKey names Varde's advisory locks: the audit chain's
	// (transaction-level, see dialect.auditLock) and the migrations'
	// (session-level), in the two-key form (classid, objid) so that other
	// users of advisory locks on the same database are unlikely to
	// collide. 0x7661 is "va".
	postgresLockKey       = 0x7661
	postgresAuditLockID   = 1
	postgresMigrateLockID = 2
)

// OpenPostgres opens the PostgreSQL database named by dsn (a URL or
// key=value connection string, as libpq takes), applies any missing
// migrations and prepares the hot statements. Several nodes may open the
// same database at once: migrations run under an advisory lock, and
// nothing committed is kept in memory beyond its transaction. The
// database must exist; its schema is created on first use.
func OpenPostgres(ctx context.Context, dsn string) (*DB, error) {
	return openPostgresDB(ctx, dsn, true)
}

// OpenExistingPostgres is OpenPostgres for tools that work on a node's
// store (varde clients, keys, status, store): it creates and migrates
// nothing. If the database holds no Varde schema it returns an error
// wrapping ErrNoDatabase, rather than creating one that no node reads;
// if the schema is older or newer than this build's, a *SchemaError
// (checkSchema).
func OpenExistingPostgres(ctx context.Context, dsn string) (*DB, error) {
	return openPostgresDB(ctx, dsn, false)
}

// openPostgresDB opens the database at dsn, and migrates it
// (migrateSchema) or checks that it needs no migration.
func openPostgresDB(ctx context.Context, dsn string, migrateSchema bool) (*DB, error) {
	d, err := postgresDialect()
	if err != nil {
		return nil, err
	}
	cfg, err := postgresConfig(dsn)
	if err != nil {
		return nil, err
	}
	where := postgresWhere(cfg)

	db := &DB{d: d}
	// One write connection, for the writer's group commit as with SQLite:
	// a batch is one transaction, so one commit (and one WAL flush on
	// the server) serves every login waiting at that moment.
	db.w = sql.OpenDB(postgresWriteConnector{
		Connector:   stdlib.GetConnector(*cfg, stdlib.OptionShouldPing(postgresShouldPing), stdlib.OptionAfterConnect(commitDurably)),
		beginLocked: "BEGIN; " + d.auditLock,
	})
	db.w.SetMaxOpenConns(1)
	db.w.SetMaxIdleConns(1)
	db.w.SetConnMaxIdleTime(0)
	if err := db.w.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open postgres %s: %w", where, openUnavailable(err))
	}
	if migrateSchema {
		err = takesWrites(ctx, db.w)
		if err == nil {
			db.migrated, err = migratePostgres(ctx, db.w, d)
			err = notOwner(err, cfg)
		}
		err = openUnavailable(err)
	} else {
		err = checkPostgresSchema(ctx, db.w, d)
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open postgres %s: %w", where, err)
	}

	// A read that meets a session the server ended runs again on another
	// connection (postgresReadConnector).
	db.r = sql.OpenDB(postgresReadConnector{stdlib.GetConnector(*cfg)})
	n := max(postgresMinReaders, 4*runtime.GOMAXPROCS(0))
	db.r.SetMaxOpenConns(n)
	db.r.SetMaxIdleConns(n)
	db.r.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.r.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open postgres %s: %w", where, openUnavailable(err))
	}
	if err := db.start(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open postgres %s: %w", where, openUnavailable(err))
	}
	return db, nil
}

// openUnavailable is unavailable for an error met while opening the
// store, so that a node starting while its server cannot be reached, is
// starting up or is a standby can tell that waiting may help
// (store.ErrUnavailable). A server whose certificate does not verify
// is a configuration to fix, not a server to wait for, although pgx
// reports it as a failed connection.
func openUnavailable(err error) error {
	var cv *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	var ci x509.CertificateInvalidError
	if errors.As(err, &cv) || errors.As(err, &ua) || errors.As(err, &he) || errors.As(err, &ci) {
		return err
	}
	return unavailable(err, false)
}

// ErrReadOnly means the PostgreSQL server a node opened its store on
// takes no writes: a standby, reached before a failover has made it a
// primary (or through a proxy or DNS name that still points at it), or
// a server set read-only. OpenPostgres's error wraps it with
// store.ErrUnavailable: a primary may answer there soon.
var ErrReadOnly = errors.New("the database server is read-only (a standby, or set read-only), and a node must write")

// takesWrites checks, before migrating, that the server on the write
// connection takes writes: one that is in recovery or read-only would
// refuse the migrations only if one is missing, and a node that started
// on it with its schema up to date would fail at its first write
// instead, with no word of why.
func takesWrites(ctx context.Context, w *sql.DB) error {
	var recovery bool
	var readOnly string
	if err := w.QueryRowContext(ctx, "SELECT pg_is_in_recovery(), current_setting('transaction_read_only')").Scan(&recovery, &readOnly); err != nil {
		return fmt.Errorf("ask whether the server takes writes: %w", err)
	}
	if recovery || readOnly == "on" {
		return fmt.Errorf("%w: %w", store.ErrUnavailable, ErrReadOnly)
	}
	return nil
}

// commitDurablySQL sets the session's synchronous_commit to on if it
// is off, and leaves any other setting (local, remote_write, on,
// remote_apply) as the operator made it, in one round trip.
const commitDurablySQL = "SELECT CASE WHEN current_setting('synchronous_commit') = 'off' " +
	"THEN set_config('synchronous_commit', 'on', false) ELSE current_setting('synchronous_commit') END"

// commitDurably makes a new write connection's session commit
// synchronously (ADR 65): a node answers only after the commit that
// holds its write, and answers as though that write will outlive a
// crash of the server. With synchronous_commit off, which a server,
// database, role or DSN may set, the server acknowledges a COMMIT
// before its WAL is written, and a crash or immediate shutdown loses
// the last of them: tokens a relying party holds, passkeys a person
// was told were added, the audit events of both.
func commitDurably(ctx context.Context, conn *pgx.Conn) error {
	var setting string
	if err := conn.QueryRow(ctx, commitDurablySQL).Scan(&setting); err != nil {
		return fmt.Errorf("make commits synchronous: %w", err)
	}
	return nil
}

// postgresShouldPing tells the write pool whether to ping a connection
// before handing it out: after a second at rest, as pgx does by
// default, and whenever the server has spoken or hung up on it since its
// last answer (postgresHeard), which on a connection at rest means the
// server ended its session. A ping that fails drops the connection and
// the pool takes a new one, before anything of the write was sent: a
// write of one statement in autocommit, which cannot be run again once
// sent (its statement is its commit), is not sent on a session that
// has visibly ended, however recently it was used.
func postgresShouldPing(_ context.Context, p stdlib.ShouldPingParams) bool {
	return p.IdleDuration > time.Second || postgresHeard(p.Conn.PgConn().Conn())
}

// errPostgresDSN is any DSN pgx cannot parse; its own message can quote
// the DSN, password included.
var errPostgresDSN = errors.New("open postgres: the store's DSN is not a valid PostgreSQL connection string")

// postgresConfig parses dsn and dials every connection as
// postgresDialControl says: dead connections are found by keepalives
// when idle and by TCP_USER_TIMEOUT when data is waiting. A connection
// that cannot be opened is given up on after postgresConnectTimeout,
// unless the operator chose another connect_timeout: in dsn, where 0
// waits for as long as TCP does, or in PGCONNECT_TIMEOUT, which pgx
// reads and whose 0 cannot be told from none.
func postgresConfig(dsn string) (*pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, errPostgresDSN
	}
	cfg.DialFunc = (&net.Dialer{KeepAlive: postgresKeepAlive, Control: postgresDialControl}).DialContext
	if cfg.ConnectTimeout == 0 && !namesConnectTimeout(dsn) {
		cfg.ConnectTimeout = postgresConnectTimeout
	}
	return cfg, nil
}

// connectTimeoutSentinel is a connect_timeout no DSN names in
// practice (about 31 years), put before a keyword=value DSN by
// namesConnectTimeout: a setting the DSN names later replaces it.
const connectTimeoutSentinel = 987654321

// namesConnectTimeout reports whether dsn, which pgx has parsed
// already, names a connect_timeout: in a URL's query, or as a
// keyword=value setting, told by pgx's own parser from a quoted value
// that holds the words.
func namesConnectTimeout(dsn string) bool {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		return err == nil && u.Query().Has("connect_timeout")
	}
	cfg, err := pgx.ParseConfig("connect_timeout=" + strconv.Itoa(connectTimeoutSentinel) + " " + dsn)
	return err == nil && cfg.ConnectTimeout != connectTimeoutSentinel*time.Second
}

// DescribeDSN names the database a store DSN points at, for messages and
// logs: a SQLite file's path, or a PostgreSQL database and server
// without user or password. Whatever the driver, nothing that may hold a
// credential is shown: a DSN's query or fragment (a file: URI's
// ?_pragma=key(...)), a URL's user information, or a connection string
// of keyword=value settings.
func DescribeDSN(driver, dsn string) string {
	if driver != "postgres" {
		return describePath(dsn)
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return "an invalid PostgreSQL connection string"
	}
	return postgresWhere(cfg)
}

// describePath is DescribeDSN for a DSN that should be a file path.
func describePath(dsn string) string {
	if strings.Contains(strings.ToLower(dsn), "password=") {
		return "a connection string (not shown: it holds a password)"
	}
	shown, _, cut := strings.Cut(dsn, "?")
	shown, _, frag := strings.Cut(shown, "#")
	cut = cut || frag
	if scheme, after, ok := strings.Cut(shown, "://"); ok {
		host, path, slash := strings.Cut(after, "/")
		if at := strings.LastIndex(host, "@"); at >= 0 {
			host = host[at+1:]
		}
		shown = scheme + "://" + host
		if slash {
			shown += "/" + path
		}
	}
	if cut {
		return shown + " (its parameters not shown)"
	}
	return shown
}

// postgresWhere names the server and database of cfg for messages,
// without user or password.
func postgresWhere(cfg *pgx.ConnConfig) string {
	return fmt.Sprintf("database %q on %s:%d", cfg.Database, cfg.Host, cfg.Port)
}

// checkPostgresSchema is checkSchema, after making sure the database
// has a schema at all.
func checkPostgresSchema(ctx context.Context, db *sql.DB, d dialect) error {
	var schema bool
	if err := db.QueryRowContext(ctx, "SELECT to_regclass('schema_migrations') IS NOT NULL").Scan(&schema); err != nil {
		return err
	}
	if !schema {
		return fmt.Errorf("%w: it holds no Varde store (a node creates it at its first start)", ErrNoDatabase)
	}
	return checkSchema(ctx, db, d)
}

// migratePostgres runs migrate on one connection that holds a
// session-level advisory lock, so that nodes starting together apply
// each migration once rather than racing on CREATE TABLE.
func migratePostgres(ctx context.Context, pool *sql.DB, d dialect) (SchemaUpgrade, error) {
	conn, err := pool.Conn(ctx)
	if err != nil {
		return SchemaUpgrade{}, err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1, $2)", postgresLockKey, postgresMigrateLockID); err != nil {
		return SchemaUpgrade{}, fmt.Errorf("lock migrations: %w", err)
	}
	up, err := migrate(ctx, conn, d, time.Now())
	if _, uerr := conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1, $2)", postgresLockKey, postgresMigrateLockID); uerr != nil {
		// The lock ends with the session; make sure the session ends.
		_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		err = errors.Join(err, fmt.Errorf("unlock migrations: %w", uerr))
	}
	return up, err
}

// notOwner is err, met creating or migrating the schema, with what to do
// if the server refused it for want of a right (SQLSTATE 42501): the
// schema is created by the user the DSN names, in the database's public
// schema, which its owner may create in.
func notOwner(err error, cfg *pgx.ConnConfig) error {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != pgInsufficientPrivilege {
		return err
	}
	db, user := pgx.Identifier{cfg.Database}.Sanitize(), pgx.Identifier{cfg.User}.Sanitize()
	return fmt.Errorf("%w: the user %q may not create the store's tables in database %q: make it the database's owner "+
		"(as a superuser: ALTER DATABASE %s OWNER TO %s; a new one: CREATE DATABASE %s OWNER %s)",
		err, cfg.User, cfg.Database, db, user, db, user)
}

func postgresDialect() (dialect, error) {
	sub, err := fs.Sub(postgresMigrationFiles, "migrations/postgres")
	if err != nil {
		return dialect{}, fmt.Errorf("postgres migrations: %w", err)
	}
	return dialect{
		name:          "postgres",
		migrations:    sub,
		rebind:        rebindDollar,
		classify:      classifyPostgres,
		fatal:         fatalPostgres,
		transient:     transientPostgres,
		unanswered:    unansweredPostgres,
		sessionEnded:  sessionEndedPostgres,
		needsPrimary:  needsPrimaryPostgres,
		inRecovery:    "SELECT pg_is_in_recovery()",
		abortsOnError: true,
		snapshot:      &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true},
		shared:        true,
		textOnly:      true,
		writableWith:  true,
		forUpdate:     " FOR UPDATE",
		forKeyShare:   " FOR KEY SHARE",
		writeTimeout:  postgresWriteTimeout,
		auditLock: "SELECT pg_advisory_xact_lock(" + strconv.Itoa(postgresLockKey) + ", " +
			strconv.Itoa(postgresAuditLockID) + ")",
	}, nil
}

// rebindDollar rewrites '?' placeholders as $1, $2, … The query layer
// writes no '?' inside string literals or identifiers; a quoted '?' is
// left alone all the same.
func rebindDollar(q string) string {
	if !strings.Contains(q, "?") {
		return q
	}
	var (
		b     strings.Builder
		n     int
		quote byte
	)
	b.Grow(len(q) + 8)
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '?':
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// PostgreSQL error codes (SQLSTATE) the store tells apart.
const (
	pgUniqueViolation      = "23505"
	pgForeignKeyViolation  = "23503"
	pgSerializationFailure = "40001"
	pgDeadlockDetected     = "40P01"
	// pgInsufficientPrivilege: a right the user lacks.
	pgInsufficientPrivilege = "42501"
)

// classifyPostgres maps constraint violations by SQLSTATE, never by
// message text.
func classifyPostgres(err error) error {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return err
	}
	switch pe.Code {
	case pgUniqueViolation:
		return fmt.Errorf("%w: %w", store.ErrConflict, err)
	case pgForeignKeyViolation:
		return fmt.Errorf("%w: %w", store.ErrNotFound, err)
	}
	return err
}

// fatalPostgres: every failed statement aborts its transaction (see
// dialect.abortsOnError), and so does a broken connection. What an
// operation concludes from statements that succeeded (no row: not found,
// already used: conflict) is not fatal; an error from the server always
// is, whatever it was classified as.
func fatalPostgres(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return true
	}
	return !errors.Is(err, sql.ErrNoRows) && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrConflict)
}

// unansweredPostgres reports a failure of the connection that may have
// come after the statement was sent: one pgconn does not call
// SafeToRetry, or a read that ended early (pgconn returns those as they
// are). It also reports the server's ending the session in the middle
// of a statement (pgEndedMidStatement): the server may have committed
// the statement before it ended the session, and the client then gets
// FATAL in place of the statement's result. Any other answer from the server
// (*pgconn.PgError) is not one, nor is a connection that was never made
// (*pgconn.ConnectError), whatever cut it short: a proxy that takes the
// connection and closes it, as one does while a failover has no primary
// for it, makes it end in unexpected EOF before any statement was sent.
func unansweredPostgres(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pgEndedMidStatement(pe.Code)
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return false
	}
	var r interface{ SafeToRetry() bool }
	if errors.As(err, &r) {
		return !r.SafeToRetry()
	}
	var ne net.Error
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.As(err, &ne)
}

// sessionEndedPostgres reports a failure that means the connection's
// session is gone: the server ended it and said so (57P01 admin_shutdown
// at a restart or pg_terminate_backend, 57P02 crash_shutdown, 57P03 at a
// server starting or stopping, 57P05 idle_session_timeout, all sent as
// FATAL), or the connection broke or was closed (database/sql's and
// pgx's word for a connection that is no longer usable, a read cut
// short, a network error). A deadline met is not one: the time given is
// spent. Any other answer from the server is not one either.
func sessionEndedPostgres(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case pgAdminShutdown, pgCrashShutdown, pgCannotConnectNow, pgIdleSessionTimeout:
			return true
		}
		return false
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err) {
		return false
	}
	if errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) {
		return true
	}
	var r interface{ SafeToRetry() bool }
	if errors.As(err, &r) && r.SafeToRetry() {
		return true // pgx sent nothing: the connection is closed or broken
	}
	var ne net.Error
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.As(err, &ne)
}

// needsPrimaryPostgres reports SQLSTATE 55000 (pgObjectNotInPrerequisiteState)
// not yet marked errStandby. Its message ("recovery is in progress")
// would tell a standby's refusal from a request's fault only in the
// server's language (lc_messages) and only while no other code uses the
// words; the server's own pg_is_in_recovery() says it in any.
func needsPrimaryPostgres(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == pgObjectNotInPrerequisiteState && !errors.Is(err, errStandby)
}

// pgEndedMidStatement reports the SQLSTATEs of a session the server ends
// whatever it is doing, a statement under way included: 57P01
// admin_shutdown (a fast shutdown, pg_terminate_backend) and 57P02
// crash_shutdown (another server process crashed). The others of
// sessionEndedPostgres come only to a session at rest (57P05
// idle_session_timeout) or one not yet made (57P03), which received no
// statement.
func pgEndedMidStatement(code string) bool {
	return code == pgAdminShutdown || code == pgCrashShutdown
}

// transientPostgres reports deadlocks and serialization failures, which
// the server resolves by aborting one of the transactions involved.
func transientPostgres(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == pgSerializationFailure || pe.Code == pgDeadlockDetected)
}
