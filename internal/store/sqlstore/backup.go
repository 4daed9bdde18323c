package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// ErrBackupUnsupported means the store is not a file this process can
// copy (PostgreSQL).
var ErrBackupUnsupported = errors.New("backup not supported")

// ErrBackupExists means the backup's file exists already: a backup never
// overwrites anything.
var ErrBackupExists = errors.New("backup file exists")

// BackupTo writes a consistent copy of the database to path, a new file
// readable by its owner only, while the node goes on working: the copy is
// one read transaction's snapshot (VACUUM INTO), so it holds every write
// committed before it began and none after, and it is compacted. It never
// overwrites a file; with ErrBackupExists, nothing was written. On any
// other failure the partial copy is removed. When it returns nil the
// copy is on disk: the file, its directory and any directory it made
// for it are synced (fsync), so a power loss cannot take the backup
// back.
func (db *DB) BackupTo(ctx context.Context, path string) error {
	return db.backupTo(ctx, path, (*os.File).Sync)
}

// BackupSQLite is BackupTo for the SQLite store at path, without
// opening it as a store: it prepares and migrates nothing, so that a
// store of an older schema than this build's is copied as it is, as an
// operator upgrading backs a stopped node's store up with the new
// varde before its first start migrates it. The store is read as its
// node left it (ReadSQLiteAsLeft, with dir the caller's directory for
// a copy): a backup creates, changes and removes no file beside it,
// where a connection that may write would, on closing, move a killed
// node's -wal file into the store and remove it, and it holds the
// transactions that -wal file holds. It refuses a file that holds no
// store (ErrNoDatabase) and one of a newer schema than this build's
// (*SchemaError), whose backup this build could not check; root may
// copy another user's store, any other user only their own
// (checkUser). It returns the schema of the copy, have, and this
// build's, want.
func BackupSQLite(ctx context.Context, path, dir, out string) (have, want int, err error) {
	if err := existingFile(path); err != nil {
		return 0, 0, err
	}
	if err := checkUser(path, os.Geteuid(), asTool); err != nil {
		return 0, 0, err
	}
	src, err := ReadSQLiteAsLeft(path, dir)
	if err != nil {
		return 0, 0, fmt.Errorf("open %s: %w", path, err)
	}
	s, err := readSQLiteSchema(ctx, src.path, src.read)
	if err == nil {
		err = s.notNewer()
	}
	if err != nil {
		return 0, 0, fmt.Errorf("open %s: %w", path, err)
	}
	return s.Have, s.Want, copyTo(ctx, src.path, src.copy, out, (*os.File).Sync)
}

// SQLiteAsLeft is a SQLite store read as its files hold it, without
// creating, changing or removing any file beside it (ReadSQLiteAsLeft):
// a store of an older schema that an operator upgrading checks before a
// node of this build migrates it, or a backup.
type SQLiteAsLeft struct {
	name string // the store's path, for messages
	// path is where the store is read: the store itself, or a copy of
	// it and its -wal file; read and copy are the roles of the
	// connections that read it and copy it (VACUUM INTO).
	path       string
	read, copy dsnRole
}

// ReadSQLiteAsLeft is the store at path, an existing file, as a node
// that stopped or was killed left it, to read without changing any file
// beside it, or, if a node runs it, as that node has it; dir is a
// directory of the caller's own, which it may write a copy in and the
// caller removes after.
//
// Even a read-only connection (mode=ro) to a database in WAL mode makes
// a -wal and a -shm file beside it if there are none, and leaves them,
// and one that may write would, on closing, move the -wal file's pages
// into the store and remove it. So:
//   - a store a node runs (one that holds its lock, LockNode) is read
//     where it is, read-only, through SQLite's own locking: its -wal
//     and -shm files are there already, and the node's to change;
//   - with no -wal file beside it, or an empty one, the file holds the
//     whole store, as a node that stopped leaves it: it is read where it
//     is with immutable=1, which takes no lock and makes no -shm or -wal
//     file. That is safe because no node runs it: a node running a
//     store in WAL mode always has its -wal file;
//   - a -wal file that holds anything may hold transactions committed
//     since the last checkpoint, as a node that was killed leaves it.
//     Read with immutable=1 they would be missed, and the store read as
//     it was before them. The store and its -wal file are copied into
//     dir and read there, where SQLite may make its -shm file and
//     recover the -wal file's transactions into its view, which it
//     reads as a node would.
func ReadSQLiteAsLeft(path, dir string) (*SQLiteAsLeft, error) {
	if err := existingFile(path); err != nil {
		return nil, err
	}
	running, err := nodeRunning(path)
	if err != nil {
		return nil, err
	}
	if running {
		// Its -wal and -shm files are the node's, there already, and
		// change as it runs: read through SQLite's own locking.
		return &SQLiteAsLeft{name: path, path: path, read: roleReadOnly, copy: roleReadOnlyCopy}, nil
	}
	fi, err := os.Stat(path + "-wal")
	switch {
	case errors.Is(err, os.ErrNotExist), err == nil && fi.Size() == 0:
		return &SQLiteAsLeft{name: path, path: path, read: roleImmutable, copy: roleImmutableCopy}, nil
	case err != nil:
		return nil, err
	}
	cp := filepath.Join(dir, "as-left-"+filepath.Base(path))
	for _, suffix := range []string{"", "-wal"} {
		if err := copyNew(path+suffix, cp+suffix); err != nil {
			return nil, fmt.Errorf("copy %s with its -wal file: %w", path, err)
		}
	}
	return &SQLiteAsLeft{name: path, path: cp, read: roleReadOnly, copy: roleReadOnlyCopy}, nil
}

// Copied reports whether src is read on a copy of the store and its
// -wal file, which held transactions not yet in the store's file.
func (src *SQLiteAsLeft) Copied() bool { return src.path != src.name }

// CheckSchema returns a *SchemaError if src's schema is not this
// build's, and an error wrapping ErrNoDatabase if src holds no store.
func (src *SQLiteAsLeft) CheckSchema(ctx context.Context) error {
	s, err := readSQLiteSchema(ctx, src.path, src.read)
	if err != nil {
		return fmt.Errorf("open %s: %w", src.name, err)
	}
	return s.exact()
}

// Open opens src only to read and check it, as OpenSQLiteReadOnly
// opens a file, without creating, changing or removing any file beside
// it. It refuses a store whose schema is not this build's
// (*SchemaError), and, as OpenSQLiteReadOnly, a file of another user
// unless run as root (checkUser).
func (src *SQLiteAsLeft) Open(ctx context.Context) (*DB, error) {
	if err := checkUser(src.name, os.Geteuid(), asTool); err != nil {
		return nil, err
	}
	return openReadOnly(ctx, src.name, src.path, src.read)
}

// nodeRunning reports whether a node holds the node lock of the SQLite
// store at path (LockNode), taking it for a moment to find out; false
// if there is no lock file, which it does not create.
func nodeRunning(path string) (bool, error) {
	f, err := os.Open(path + ".lock")
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("node lock: %w", err)
	}
	defer f.Close() // closing it releases the lock if taken here
	held, err := lockFile(f)
	if err != nil {
		return false, fmt.Errorf("node lock %s: %w", path+".lock", err)
	}
	return !held, nil
}

// copyNew copies the file at from to a new file at to, readable by its
// owner only.
func copyNew(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// OpenSQLiteUpgradedCopy copies the SQLite store src to a new file in
// the directory dir, migrates the copy to this build's schema and opens
// it as OpenSQLite does: a store or backup of an older schema is checked
// on it by this build's code, while it stays as it is. Migrations only
// add, so the copy holds every row and every audit event of src. The
// caller closes the copy and removes dir. A newer schema than this
// build's is refused (*SchemaError).
func OpenSQLiteUpgradedCopy(ctx context.Context, src *SQLiteAsLeft, dir string) (*DB, SchemaUpgrade, error) {
	s, err := readSQLiteSchema(ctx, src.path, src.read)
	if err == nil {
		err = s.notNewer()
	}
	if err != nil {
		return nil, SchemaUpgrade{}, fmt.Errorf("open %s: %w", src.name, err)
	}
	cp := filepath.Join(dir, "upgraded-"+filepath.Base(src.name))
	if err := vacuumInto(ctx, src.path, src.copy, cp); err != nil {
		return nil, SchemaUpgrade{}, fmt.Errorf("copy %s: %w", src.name, err)
	}
	db, err := OpenSQLite(ctx, cp)
	if err != nil {
		return nil, SchemaUpgrade{}, err
	}
	return db, db.Migrated(), nil
}

// CheckIntegrity is DB.CheckIntegrity for the store src, whatever its
// schema, on a read-only connection of its own (query_only) that
// changes nothing: a store of an older schema is checked on a migrated
// copy (OpenSQLiteUpgradedCopy), a new file written afresh, so its own
// pages and indexes are checked here.
func (src *SQLiteAsLeft) CheckIntegrity(ctx context.Context) error {
	d, err := sqliteDialect()
	if err != nil {
		return err
	}
	dsn, err := sqliteDSN(src.path, src.read)
	if err != nil {
		return err
	}
	r, err := sql.Open("sqlite", dsn)
	if err != nil {
		return err
	}
	defer r.Close()
	return (&DB{d: d, path: src.path, r: r}).CheckIntegrity(ctx)
}

// backupTo is BackupTo with sync as the fsync of each file and
// directory it must make durable.
func (db *DB) backupTo(ctx context.Context, path string, sync func(*os.File) error) error {
	if db.d.name != "sqlite" {
		return fmt.Errorf("%w: a %s store is backed up with the server's own tools (pg_dump, base backups with WAL archiving)",
			ErrBackupUnsupported, db.d.name)
	}
	// The read pool's connections are query-only, which VACUUM INTO
	// counts as writing, so the copy is made on a connection of its own.
	return copyTo(ctx, db.path, roleCopy, path, sync)
}

// copyTo is backupTo for the SQLite database at from, copied on a
// connection of role (roleCopy, roleReadOnlyCopy, roleImmutableCopy).
func copyTo(ctx context.Context, from string, role dsnRole, path string, sync func(*os.File) error) error {
	if path == "" || strings.ContainsAny(path, "?#") {
		return fmt.Errorf("backup: unusable file name %q", path)
	}
	made := firstMissing(filepath.Dir(path))
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	// VACUUM INTO accepts an empty file, so the file is made here, new
	// and owner-only, and no other process can have made it meanwhile.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("%w: %s", ErrBackupExists, path)
	}
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	// It reads the database in one transaction and writes only the copy.
	err = vacuumInto(ctx, from, role, path)
	if err == nil {
		// VACUUM INTO does not sync the copy it writes.
		err = syncBackup(path, made, sync)
	}
	if err != nil {
		_ = os.Remove(path)
		return fmt.Errorf("backup to %s: %w", path, err)
	}
	return nil
}

// syncBackup syncs the file at path, then its directory, and, if made is
// not empty, the parent of each directory from made down to path's,
// which were made for it: a new file is durable only once the directory
// entry naming it is.
func syncBackup(path, made string, sync func(*os.File) error) error {
	if err := syncPath(path, sync); err != nil {
		return err
	}
	for d := filepath.Dir(path); ; d = filepath.Dir(d) {
		if err := syncPath(d, sync); err != nil {
			return err
		}
		if made == "" || d == filepath.Dir(made) || d == filepath.Dir(d) {
			return nil
		}
	}
}

func syncPath(path string, sync func(*os.File) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	err = sync(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return nil
}

// firstMissing returns the outermost directory of dir and its parents
// that does not exist, or "" if dir exists.
func firstMissing(dir string) string {
	missing := ""
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
			return missing
		}
		missing = d
		if filepath.Dir(d) == d {
			return missing
		}
	}
}

// vacuumInto copies the database at from to the file to in one read
// transaction, on a connection of role (roleCopy, roleReadOnlyCopy,
// roleImmutableCopy) of
// its own.
func vacuumInto(ctx context.Context, from string, role dsnRole, to string) error {
	dsn, err := sqliteDSN(from, role)
	if err != nil {
		return err
	}
	c, err := sql.Open("sqlite", dsn)
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.ExecContext(ctx, "VACUUM INTO ?", to)
	return err
}

// ErrCorrupt means SQLite's integrity check found damage.
var ErrCorrupt = errors.New("database is damaged")

// CheckIntegrity runs SQLite's full integrity check (every page, every
// index against its table, every constraint) in one read transaction, and
// returns an error wrapping ErrCorrupt, with SQLite's first findings, if
// it finds anything. It reads the whole database.
//
// On PostgreSQL, whose pages and indexes are the server's to check
// (amcheck, data checksums), it checks that the audit log's append-only
// triggers are in place and enabled.
func (db *DB) CheckIntegrity(ctx context.Context) error {
	if db.d.name == "postgres" {
		return db.checkAuditTriggers(ctx)
	}
	rows, err := read(db.r.QueryContext(ctx, "PRAGMA integrity_check(20)"))
	if err != nil {
		return checkErr(err)
	}
	defer rows.Close()
	var found []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return checkErr(err)
		}
		if line != "ok" {
			found = append(found, line)
		}
	}
	if err := rows.Err(); err != nil {
		return checkErr(err)
	}
	if len(found) > 0 {
		return fmt.Errorf("%w: %s", ErrCorrupt, strings.Join(found, "; "))
	}
	return nil
}

// checkErr reports a failure of the integrity check itself: SQLite
// refuses to read a badly damaged file at all, and says so with
// SQLITE_CORRUPT or SQLITE_NOTADB. A file another connection holds
// locked past the busy timeout is no damage: that is the store
// unavailable (store.ErrUnavailable), as any read classifies it.
func checkErr(err error) error {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB:
			return fmt.Errorf("%w: integrity check: %w", ErrCorrupt, err)
		}
	}
	return fmt.Errorf("integrity check: %w", unavailable(err, false))
}

// IntegrityChecked says, in a few words for an operator, what
// CheckIntegrity checks.
func (db *DB) IntegrityChecked() string {
	if db.d.name == "postgres" {
		return "the audit log's triggers refusing changes are in place (pages and indexes are the server's to check: amcheck, data checksums)"
	}
	return "every page, index and constraint checked, no damage found"
}

// checkAuditTriggers finds the triggers that refuse changes to the
// audit log, enabled: audit_log's of migration 0012, and that of
// migration 0032 refusing changes to the addresses kept apart.
func (db *DB) checkAuditTriggers(ctx context.Context) error {
	var n int
	err := db.r.QueryRowContext(ctx, "SELECT count(*) FROM pg_trigger WHERE tgenabled <> 'D' AND ("+
		"(tgrelid = 'audit_log'::regclass AND tgname IN ('audit_log_no_change', 'audit_log_no_truncate')) OR "+
		"(tgrelid = 'audit_addresses'::regclass AND tgname = 'audit_addresses_no_update'))").Scan(&n)
	if err != nil {
		return fmt.Errorf("integrity check: %w", unavailable(err, false))
	}
	if n != 3 {
		return fmt.Errorf("%w: the audit log's triggers refusing changes are missing or disabled (%d of 3 in force)", ErrCorrupt, n)
	}
	return nil
}
