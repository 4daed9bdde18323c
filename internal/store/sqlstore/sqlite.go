package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	// Importing the driver registers it as "sqlite".
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/varde-eid/varde/internal/store"
)

//go:embed migrations/sqlite/*.sql
var sqliteMigrationFiles embed.FS

const (
	// sqliteBusyTimeoutMS is how long a connection waits for a lock held
	// by another process (or by a checkpoint) before failing with
	// SQLITE_BUSY.
	sqliteBusyTimeoutMS = 5000
	// sqliteCheckpointEvery is how often the background checkpointer runs.
	sqliteCheckpointEvery = 100 * time.Millisecond
	// sqliteAutoCheckpointPages is SQLite's own checkpoint threshold, a
	// backstop behind the background checkpointer (default 1000).
	sqliteAutoCheckpointPages = 10000
	// sqliteJournalSizeLimit truncates the WAL file back to this size
	// after the WAL restarts, so a burst does not keep its disk space.
	sqliteJournalSizeLimit = 64 << 20
	// sqliteCacheKiB is each connection's page cache.
	sqliteCacheKiB = 8192
	// sqliteMinReaders is the smallest read pool; reads are short, so a
	// few connections per core keep every core busy.
	sqliteMinReaders = 4
)

// ErrNoDatabase means OpenExistingSQLite found no database file.
var ErrNoDatabase = errors.New("no database")

// OpenSQLite opens (creating it if missing) the SQLite database at path,
// applies any missing migrations and prepares the hot statements. The
// file and its directory are created readable by the owner only. Run as
// root, it refuses a store that belongs to another user, and as anyone
// a store beside which SQLite's files are another user's (checkUser).
func OpenSQLite(ctx context.Context, path string) (*DB, error) {
	if err := checkUser(path, os.Geteuid(), asNode); err != nil {
		return nil, err
	}
	if err := createFile(path); err != nil {
		return nil, err
	}
	return openSQLite(ctx, path, true)
}

// OpenExistingSQLite is OpenSQLite for a database that must exist
// already, for tools that work on a node's database: it creates and
// migrates nothing. If path is not an existing file, or one without a
// Varde schema, it returns an error wrapping ErrNoDatabase, rather than
// a new, empty database that no node reads; if the schema is older or
// newer than this build's, a *SchemaError (checkSchema). Root may open
// another user's store; any other user only their own (checkUser).
func OpenExistingSQLite(ctx context.Context, path string) (*DB, error) {
	if err := existingFile(path); err != nil {
		return nil, err
	}
	if err := checkUser(path, os.Geteuid(), asTool); err != nil {
		return nil, err
	}
	// Checked on a query-only connection, before the write connection's
	// settings (WAL) change the file.
	if err := checkSQLiteSchema(ctx, path, roleRead); err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return openSQLite(ctx, path, false)
}

// OpenSQLiteReadOnly opens an existing SQLite database file only to
// read and check it, such as a backup, which must stay the snapshot it
// is: every connection is read-only (mode=ro and query_only), so
// nothing is migrated, no checkpoint runs, the journal mode stays as it
// is and the file's bytes do not change; any write fails. Like
// OpenExistingSQLite, it refuses a file that holds no Varde store
// (ErrNoDatabase) or whose schema is not this build's (*SchemaError),
// and, since even a read may make a -shm file beside a database in WAL
// mode, a file of another user unless run as root (checkUser).
func OpenSQLiteReadOnly(ctx context.Context, path string) (*DB, error) {
	if err := existingFile(path); err != nil {
		return nil, err
	}
	if err := checkUser(path, os.Geteuid(), asTool); err != nil {
		return nil, err
	}
	return openReadOnly(ctx, path, path, roleReadOnly)
}

// openReadOnly is OpenSQLiteReadOnly for the database at path, named
// name in messages, on connections of role (roleReadOnly,
// roleImmutable).
func openReadOnly(ctx context.Context, name, path string, role dsnRole) (*DB, error) {
	if err := checkSQLiteSchema(ctx, path, role); err != nil {
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	d, err := sqliteDialect()
	if err != nil {
		return nil, err
	}
	dsn, err := sqliteDSN(path, role)
	if err != nil {
		return nil, err
	}
	db := &DB{d: d, path: path}
	// The write pool too, which the statements and the writer need: its
	// writes fail.
	if db.w, err = sql.Open("sqlite", dsn); err != nil {
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	db.w.SetMaxOpenConns(1)
	if db.r, err = sql.Open("sqlite", dsn); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	db.r.SetMaxOpenConns(sqliteMinReaders)
	if err := db.start(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	return db, nil
}

// existingFile returns an error wrapping ErrNoDatabase unless path is
// an existing regular file.
func existingFile(path string) error {
	fi, err := os.Stat(path)
	if err == nil && !fi.Mode().IsRegular() {
		err = errors.New("not a regular file")
	}
	if err != nil {
		return fmt.Errorf("%w at %s: %w", ErrNoDatabase, path, err)
	}
	return nil
}

// openSQLite opens the database at path, and migrates it if
// migrateSchema.
func openSQLite(ctx context.Context, path string, migrateSchema bool) (*DB, error) {
	d, err := sqliteDialect()
	if err != nil {
		return nil, err
	}
	wdsn, err := sqliteDSN(path, roleWrite)
	if err != nil {
		return nil, err
	}
	rdsn, err := sqliteDSN(path, roleRead)
	if err != nil {
		return nil, err
	}

	db := &DB{d: d, path: path}
	if db.w, err = sql.Open("sqlite", wdsn); err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	db.w.SetMaxOpenConns(1)
	db.w.SetMaxIdleConns(1)
	db.w.SetConnMaxLifetime(0)
	db.w.SetConnMaxIdleTime(0)
	if err := db.w.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if migrateSchema {
		if db.migrated, err = migrate(ctx, db.w, d, time.Now()); err != nil {
			db.Close()
			return nil, fmt.Errorf("open %s: %w", path, err)
		}
	}

	if db.r, err = sql.Open("sqlite", rdsn); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	n := max(sqliteMinReaders, 2*runtime.GOMAXPROCS(0))
	db.r.SetMaxOpenConns(n)
	db.r.SetMaxIdleConns(n)
	db.r.SetConnMaxLifetime(0)
	db.r.SetConnMaxIdleTime(0)
	if err := db.r.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}

	if err := db.start(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	ck, err := sql.Open("sqlite", wdsn)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	ck.SetMaxOpenConns(1)
	db.ckpt = newCheckpointer(ck, sqliteCheckpointEvery, db.logger)
	return db, nil
}

// checkSQLiteSchema is checkSchema for the database at path, on a
// connection of its own that does not write (role roleRead or
// roleReadOnly), after making sure the database has a schema at all.
func checkSQLiteSchema(ctx context.Context, path string, role dsnRole) error {
	s, err := readSQLiteSchema(ctx, path, role)
	if err != nil {
		return err
	}
	return s.exact()
}

// readSQLiteSchema is readSchema for the database at path, on a
// connection of its own that does not write (role roleRead or
// roleReadOnly), after making sure the database has a schema at all.
func readSQLiteSchema(ctx context.Context, path string, role dsnRole) (schema, error) {
	d, err := sqliteDialect()
	if err != nil {
		return schema{}, err
	}
	dsn, err := sqliteDSN(path, role)
	if err != nil {
		return schema{}, err
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return schema{}, err
	}
	defer db.Close()
	var n int
	err = db.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'schema_migrations'").Scan(&n)
	if err != nil {
		return schema{}, err
	}
	if n == 0 {
		return schema{}, fmt.Errorf("%w: the file holds no Varde store (a node creates it at its first start)", ErrNoDatabase)
	}
	return readSchema(ctx, db, d)
}

// createFile makes sure path exists with owner-only permissions before
// SQLite opens it; SQLite gives its -wal and -shm files the same mode.
func createFile(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create database directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err == nil {
		return f.Close()
	}
	// The path error names the path already; say what went wrong with it.
	cause := err
	if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
		cause = pe.Err
	}
	fi, serr := os.Stat(path)
	switch {
	case serr != nil:
		return fmt.Errorf("create database file %s: %w", path, cause)
	case fi.IsDir():
		return fmt.Errorf("database file %s: it is a directory, not a file: %w", path, cause)
	}
	// A read-only file or file system, or a file another program holds.
	return fmt.Errorf("database file %s exists but cannot be opened for writing: %w", path, cause)
}

func sqliteDialect() (dialect, error) {
	sub, err := fs.Sub(sqliteMigrationFiles, "migrations/sqlite")
	if err != nil {
		return dialect{}, fmt.Errorf("sqlite migrations: %w", err)
	}
	return dialect{
		name:       "sqlite",
		migrations: sub,
		rebind:     func(q string) string { return q },
		classify:   classifySQLite,
		fatal:      fatalSQLite,
	}, nil
}

// fatalSQLite reports whether err may have ended the transaction it
// happened in. A constraint violation undoes only its statement; any
// other SQLite error (I/O, full disk, interrupt) is treated as fatal.
// Errors from outside SQLite are outcomes of the operation's own logic.
func fatalSQLite(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	return se.Code()&0xff != sqlite3.SQLITE_CONSTRAINT
}

// classifySQLite maps constraint violations by their extended result code
// (the driver turns extended codes on), never by message text.
func classifySQLite(err error) error {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return err
	}
	switch se.Code() {
	case sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY, sqlite3.SQLITE_CONSTRAINT_UNIQUE:
		return fmt.Errorf("%w: %w", store.ErrConflict, err)
	case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
		return fmt.Errorf("%w: %w", store.ErrNotFound, err)
	}
	return err
}

// A connection's role decides its pragmas.
type dsnRole int

const (
	roleRead  dsnRole = iota // the read pool: query-only
	roleWrite                // the one write connection
	// roleCopy reads the database and writes only another file (VACUUM
	// INTO, which query-only refuses).
	roleCopy
	// roleReadOnly opens the file read-only (mode=ro) and query-only: it
	// changes nothing in it, not even the journal mode
	// (OpenSQLiteReadOnly).
	roleReadOnly
	// roleReadOnlyCopy is roleCopy on a file opened read-only (mode=ro):
	// VACUUM INTO from it writes only the copy (OpenSQLiteUpgradedCopy).
	roleReadOnlyCopy
	// roleImmutable is roleReadOnly on a file that nothing writes while
	// it is open (immutable=1): SQLite takes no lock and makes no -shm
	// or -wal file beside it, which it would for a file in WAL mode even
	// read-only (ReadSQLiteAsLeft).
	roleImmutable
	// roleImmutableCopy is roleReadOnlyCopy on such a file.
	roleImmutableCopy
)

// sqliteDSN builds the driver DSN for path. Pragmas go in the DSN so that
// every connection the pool opens gets them, not only the first.
func sqliteDSN(path string, role dsnRole) (string, error) {
	if path == "" {
		return "", errors.New("empty database path")
	}
	if strings.ContainsAny(path, "?#") {
		// What follows is not shown: a file: URI's parameters may hold a
		// key (?_pragma=key(...)).
		return "", fmt.Errorf("database path %s contains '?' or '#': give a file path, not a URI with parameters", describePath(path))
	}
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", sqliteBusyTimeoutMS))
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", fmt.Sprintf("cache_size(-%d)", sqliteCacheKiB))
	q.Add("_pragma", "temp_store(MEMORY)")
	switch role {
	case roleWrite:
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", fmt.Sprintf("wal_autocheckpoint(%d)", sqliteAutoCheckpointPages))
		q.Add("_pragma", fmt.Sprintf("journal_size_limit(%d)", sqliteJournalSizeLimit))
		// What is deleted is overwritten, not left in the file's free
		// space: an audit address and its salt deleted after their
		// retention (ADR 38), like every expired token and session,
		// must not be readable from a copy of the file.
		q.Add("_pragma", "secure_delete(1)")
		// A write transaction takes the write lock up front, so one that
		// reads first cannot fail to upgrade its lock later.
		q.Set("_txlock", "immediate")
	case roleRead:
		q.Set("_query_only", "1")
	case roleReadOnly, roleReadOnlyCopy, roleImmutable, roleImmutableCopy:
		if role == roleReadOnly || role == roleImmutable {
			q.Set("_query_only", "1")
		}
		// Only a file: URI passes SQLite's own parameters (mode,
		// immutable) on.
		q.Set("mode", "ro")
		if role == roleImmutable || role == roleImmutableCopy {
			q.Set("immutable", "1")
		}
		return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode(), nil
	}
	return path + "?" + q.Encode(), nil
}
