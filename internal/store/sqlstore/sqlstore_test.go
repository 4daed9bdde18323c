package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/varde-eid/varde/internal/pgtest"
	"github.com/varde-eid/varde/internal/store"
	"github.com/varde-eid/varde/internal/store/storetest"
)

func open(t testing.TB, path string) *DB {
	t.Helper()
	return closedAtCleanup(t)(OpenSQLite(context.Background(), path))
}

// closedAtCleanup returns a function that takes what an Open function
// returned, fails t on an error, and closes the DB when t ends.
func closedAtCleanup(t testing.TB) func(*DB, error) *DB {
	return func(db *DB, err error) *DB {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := db.Close(); err != nil {
				t.Errorf("close: %v", err)
			}
		})
		return db
	}
}

func openTemp(t testing.TB) *DB {
	t.Helper()
	return open(t, filepath.Join(t.TempDir(), "varde.db"))
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openTemp(t) })
}

func TestReopen(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "data", "varde.db")
	db, err := OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	want := &store.Client{ID: "bank", Name: "Bank", RedirectURIs: []string{"https://bank.example/cb"},
		CreatedAt: time.UnixMicro(1_700_000_000_123_456).UTC()}
	if err := db.AddClient(ctx, want, nil); err != nil {
		t.Fatal(err)
	}
	e := &store.AuditEvent{Type: "start", Time: want.CreatedAt}
	if err := db.AppendAudit(ctx, e); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	for i := range 2 {
		db := open(t, path)
		got, err := db.GetClient(ctx, "bank")
		if err != nil {
			t.Fatalf("reopen %d: %v", i, err)
		}
		if got.Name != want.Name || !got.CreatedAt.Equal(want.CreatedAt) {
			t.Errorf("reopen %d: client = %+v, want %+v", i, got, want)
		}
		// The chain continues across reopens.
		next := &store.AuditEvent{Type: "reopen", Time: want.CreatedAt}
		if err := db.AppendAudit(ctx, next); err != nil {
			t.Fatal(err)
		}
		all, err := db.ListAudit(ctx, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		if err := store.VerifyAuditChain(nil, all); err != nil || len(all) != i+2 {
			t.Errorf("reopen %d: %d events, chain: %v", i, len(all), err)
		}

		ms, err := loadMigrations(db.d.migrations)
		if err != nil {
			t.Fatal(err)
		}
		var n int
		if err := db.r.QueryRowContext(ctx, "SELECT count(*) FROM schema_migrations").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != len(ms) {
			t.Errorf("reopen %d: %d migrations recorded, want %d", i, n, len(ms))
		}
	}
}

func TestFileMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new", "varde.db")
	openTemp(t) // unrelated; makes sure a second DB does not interfere
	open(t, path)
	for _, p := range []string{path, filepath.Dir(path)} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			t.Errorf("%s has mode %v, want no access for group or others", p, perm)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	notADB := filepath.Join(dir, "text.db")
	if err := os.WriteFile(notADB, []byte("this is not a database, just some text that is long enough"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"", filepath.Join(dir, "a?b.db"), filepath.Join(dir, "a#b.db"), notADB} {
		if db, err := OpenSQLite(ctx, path); err == nil {
			db.Close()
			t.Errorf("OpenSQLite(%q) succeeded", path)
		}
	}
}

// TestOpenUnwritableFile: a database path that exists but cannot be
// opened for writing is reported as such, naming the path and the
// system's reason, not as a file that could not be created.
func TestOpenUnwritableFile(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	aDir := filepath.Join(dir, "dir.db")
	if err := os.Mkdir(aDir, 0o700); err != nil {
		t.Fatal(err)
	}
	readOnly := filepath.Join(t.TempDir(), "ro.db")
	if err := os.WriteFile(readOnly, nil, 0o400); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, path string
		skip       string
		want       []string
	}{
		{"directory", aDir, "", []string{aDir, "is a directory, not a file", "is a directory"}},
		// The running test binary: Linux refuses to open it for writing
		// (ETXTBSY), whoever asks.
		{"busy", os.Args[0], writableSkip(os.Args[0]), []string{os.Args[0], "exists but cannot be opened for writing", "text file busy"}},
		{"read-only", readOnly, rootSkip(), []string{readOnly, "exists but cannot be opened for writing", "permission denied"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.skip != "" {
				t.Skip(tc.skip)
			}
			db, err := OpenSQLite(ctx, tc.path)
			if err == nil {
				db.Close()
				t.Fatal("OpenSQLite succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "create database file") {
				t.Errorf("error %q speaks of creating a file that exists", err)
			}
		})
	}
}

// rootSkip says why a test of file permissions cannot fail as root.
func rootSkip() string {
	if os.Geteuid() == 0 {
		return "root may write a read-only file"
	}
	return ""
}

// writableSkip says why path, expected to be refused for writing, is
// not: a system that lets a running program's file be written.
func writableSkip(path string) string {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return ""
	}
	f.Close()
	return "this system lets a running program's file be opened for writing"
}

// TestPragmas checks that every pooled connection, not just the first,
// runs with the settings from the DSN.
func TestPragmas(t *testing.T) {
	ctx := t.Context()
	db := openTemp(t)
	check := func(t *testing.T, c *sql.Conn, pragma, want string) {
		t.Helper()
		var got string
		if err := c.QueryRowContext(ctx, "PRAGMA "+pragma).Scan(&got); err != nil {
			t.Fatalf("PRAGMA %s: %v", pragma, err)
		}
		if got != want {
			t.Errorf("PRAGMA %s = %s, want %s", pragma, got, want)
		}
	}
	common := map[string]string{
		"journal_mode": "wal",
		"foreign_keys": "1",
		"synchronous":  "1", // NORMAL
		"busy_timeout": fmt.Sprint(sqliteBusyTimeoutMS),
		"cache_size":   fmt.Sprint(-sqliteCacheKiB),
		"temp_store":   "2", // MEMORY
	}

	// Hold several read connections at once so the pool must open new ones.
	var conns []*sql.Conn
	for range sqliteMinReaders {
		c, err := db.r.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	for i, c := range conns {
		t.Run(fmt.Sprintf("reader %d", i), func(t *testing.T) {
			for p, want := range common {
				check(t, c, p, want)
			}
			check(t, c, "query_only", "1")
		})
		c.Close()
	}
	t.Run("writer", func(t *testing.T) {
		c, err := db.w.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for p, want := range common {
			check(t, c, p, want)
		}
		check(t, c, "query_only", "0")
		check(t, c, "wal_autocheckpoint", fmt.Sprint(sqliteAutoCheckpointPages))
		check(t, c, "journal_size_limit", fmt.Sprint(sqliteJournalSizeLimit))
	})
	if got := db.w.Stats().MaxOpenConnections; got != 1 {
		t.Errorf("write pool allows %d connections, want 1", got)
	}
}

func TestZeroTimeRejected(t *testing.T) {
	ctx := t.Context()
	db := openTemp(t)
	now := time.Now()
	if err := db.CreateAuthCode(ctx, &store.AuthCode{Hash: []byte("c"), ExpiresAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateToken(ctx, &store.Token{Hash: []byte("t"), ExpiresAt: now}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.RedeemAuthCode(ctx, []byte("c"), time.Time{}); err == nil {
		t.Error("RedeemAuthCode with a zero time succeeded")
	}
	if _, err := db.RotateToken(ctx, []byte("t"), time.Time{}, nil); err == nil {
		t.Error("RotateToken with a zero time succeeded")
	}
	if _, err := db.UseRecoveryCode(ctx, []byte("r"), time.Time{}); err == nil {
		t.Error("UseRecoveryCode with a zero time succeeded")
	}
	if err := db.RevokeGrant(ctx, "g", time.Time{}); err == nil {
		t.Error("RevokeGrant with a zero time succeeded")
	}
	// Still unused, so a real redemption works.
	if _, err := db.RedeemAuthCode(ctx, []byte("c"), now); err != nil {
		t.Errorf("RedeemAuthCode: %v", err)
	}
}

func TestAuditLogAppendOnly(t *testing.T) {
	ctx := t.Context()
	db := openTemp(t)
	if err := db.AppendAudit(ctx, &store.AuditEvent{Type: "x", Result: store.ResultSuccess}); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"UPDATE audit_log SET result = 'failure'",
		"DELETE FROM audit_log",
	} {
		if _, err := db.w.ExecContext(ctx, q); err == nil {
			t.Errorf("%s succeeded", q)
		}
	}
	all, err := db.ListAudit(ctx, 0, 10)
	if err != nil || len(all) != 1 || all[0].Result != store.ResultSuccess {
		t.Errorf("log after refused changes: %v, %v", all, err)
	}
}

// TestTwoHandles appends from two DB values on one file, as two processes
// would: the write lock taken at BEGIN and the busy timeout keep the
// chain intact.
func TestTwoHandles(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "varde.db")
	dbs := []*DB{open(t, path), open(t, path)}
	const goroutines, each = 4, 20
	var wg sync.WaitGroup
	errs := make(chan error, len(dbs)*goroutines)
	for _, db := range dbs {
		for range goroutines {
			wg.Go(func() {
				for range each {
					if err := db.AppendAudit(ctx, &store.AuditEvent{Type: "t"}); err != nil {
						errs <- err
						return
					}
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	all, err := dbs[1].ListAudit(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != len(dbs)*goroutines*each {
		t.Errorf("%d events, want %d", len(all), len(dbs)*goroutines*each)
	}
	if err := store.VerifyAuditChain(nil, all); err != nil {
		t.Error(err)
	}
}

func TestClassifySQLite(t *testing.T) {
	ctx := t.Context()
	db := openTemp(t)
	plain := errors.New("plain")
	if got := classifySQLite(plain); got != plain {
		t.Errorf("classifySQLite(plain) = %v", got)
	}
	if classifySQLite(nil) != nil {
		t.Error("classifySQLite(nil) != nil")
	}
	tests := []struct {
		name string
		q    string
		want error
	}{
		{"primary key", "INSERT INTO grants SELECT * FROM grants", store.ErrConflict},
		{"unique", "INSERT INTO persons (id, webauthn_id, given_name, family_name, birth_date, identifiers, " +
			"proofing_level, proofing_method, synthetic, created_at) VALUES ('b', x'01', '', '', '', 'null', '', '', 0, 0)", store.ErrConflict},
		{"foreign key", "INSERT INTO passkeys (credential_id, person_id, attestation_type, sign_count, transports, " +
			"user_present, user_verified, backup_eligible, backup_state, name, created_at, last_used_at) " +
			"VALUES (x'02', 'nobody', '', 0, 'null', 0, 0, 0, 0, '', 0, 0)", store.ErrNotFound},
		{"not null", "INSERT INTO grants (id) VALUES ('x')", nil},
	}
	if _, err := db.w.ExecContext(ctx, "INSERT INTO persons (id, webauthn_id, given_name, family_name, birth_date, "+
		"identifiers, proofing_level, proofing_method, synthetic, created_at) VALUES ('a', x'01', '', '', '', 'null', '', '', 0, 0)"); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateGrant(ctx, &store.Grant{ID: "g"}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := db.w.ExecContext(ctx, tt.q)
			if err == nil {
				t.Fatal("no error")
			}
			got := classifySQLite(err)
			for _, sentinel := range []error{store.ErrConflict, store.ErrNotFound} {
				if errors.Is(got, sentinel) != (sentinel == tt.want) {
					t.Errorf("classifySQLite(%v) = %v, want %v", err, got, tt.want)
				}
			}
		})
	}
}

func TestMigrate(t *testing.T) {
	ctx := t.Context()
	now := time.Unix(1_800_000_000, 0)
	fsys := fstest.MapFS{
		"0001_a.sql": {Data: []byte("CREATE TABLE a (x INTEGER); INSERT INTO a VALUES (1);")},
		"README.md":  {Data: []byte("not a migration")},
	}
	d := dialect{name: "test", migrations: fsys, rebind: func(q string) string { return q }, classify: classifySQLite}
	db := openMigrationDB(t)

	count := func(q string) int {
		t.Helper()
		var n int
		if err := db.QueryRowContext(ctx, q).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return n
	}

	// What each run applied is what the node logs (SchemaUpgrade).
	upgraded := func(want SchemaUpgrade) {
		t.Helper()
		got, err := migrate(ctx, db, d, now)
		if err != nil {
			t.Fatal(err)
		}
		if got.From != want.From || got.To != want.To || !slices.Equal(got.Applied, want.Applied) {
			t.Errorf("migrate applied %+v, want %+v", got, want)
		}
	}
	upgraded(SchemaUpgrade{From: 0, To: 1, Applied: []string{"0001_a.sql"}})
	upgraded(SchemaUpgrade{From: 1})
	if n := count("SELECT count(*) FROM a"); n != 1 {
		t.Errorf("0001 ran %d times", n)
	}

	// A failing migration leaves no trace, and the ones before it stay.
	fsys["0002_b.sql"] = &fstest.MapFile{Data: []byte("CREATE TABLE b (y INTEGER);")}
	fsys["0003_bad.sql"] = &fstest.MapFile{Data: []byte("CREATE TABLE c (z INTEGER); INSERT INTO nowhere VALUES (1);")}
	if _, err := migrate(ctx, db, d, now); err == nil {
		t.Fatal("migrate with a broken migration succeeded")
	}
	if n := count("SELECT count(*) FROM schema_migrations"); n != 2 {
		t.Errorf("%d migrations recorded, want 2", n)
	}
	if n := count("SELECT count(*) FROM sqlite_schema WHERE name = 'c'"); n != 0 {
		t.Error("table c of the failed migration exists")
	}

	// Fixed, it applies; a version the build does not know is ignored.
	fsys["0003_bad.sql"] = &fstest.MapFile{Data: []byte("CREATE TABLE c (z INTEGER);")}
	if _, err := db.ExecContext(ctx, "INSERT INTO schema_migrations VALUES (99, '0099_future.sql', 0)"); err != nil {
		t.Fatal(err)
	}
	upgraded(SchemaUpgrade{From: 99, To: 3, Applied: []string{"0003_bad.sql"}})
	if n := count("SELECT count(*) FROM schema_migrations"); n != 4 {
		t.Errorf("%d migrations recorded, want 4", n)
	}
	if n := count(fmt.Sprintf("SELECT count(*) FROM schema_migrations WHERE applied_at = %d", now.UnixMicro())); n != 3 {
		t.Errorf("%d migrations recorded at now, want 3", n)
	}
}

func TestLoadMigrations(t *testing.T) {
	d, err := sqliteDialect()
	if err != nil {
		t.Fatal(err)
	}
	ms, err := loadMigrations(d.migrations)
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range ms {
		if m.version != i+1 {
			t.Errorf("embedded migration %s has version %d, want %d (no gaps in a shipped set)", m.name, m.version, i+1)
		}
	}

	bad := []fstest.MapFS{
		{"init.sql": {}},
		{"0000_zero.sql": {}},
		{"x1_a.sql": {}},
		{"0001_a.sql": {}, "01_b.sql": {}},
	}
	for _, fsys := range bad {
		if _, err := loadMigrations(fsys); err == nil {
			t.Errorf("loadMigrations(%v) succeeded", fsys)
		}
	}
}

// TestOpenExistingSQLite: a database that must exist is opened if it
// does, and otherwise refused with ErrNoDatabase and nothing created.
func TestOpenExistingSQLite(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for _, path := range []string{filepath.Join(dir, "none.db"), filepath.Join(dir, "sub", "none.db"), dir} {
		db, err := OpenExistingSQLite(ctx, path)
		if !errors.Is(err, ErrNoDatabase) {
			t.Errorf("%s: %v, want ErrNoDatabase", path, err)
		}
		if db != nil {
			db.Close()
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("OpenExistingSQLite created %v", entries)
	}
	path := filepath.Join(dir, "varde.db")
	if err := open(t, path).PutClient(ctx, &store.Client{ID: "bank"}); err != nil {
		t.Fatal(err)
	}
	db, err := OpenExistingSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.GetClient(ctx, "bank"); err != nil {
		t.Errorf("existing database: %v", err)
	}
}

// testOpenExistingSchema: a tool's open (openExisting) migrates nothing.
// A database whose schema is older or newer than this build's d is
// refused with a *SchemaError naming both versions, and left as it was;
// raw reaches the database around the store.
func testOpenExistingSchema(t *testing.T, d dialect, raw *sql.DB, openExisting func() (*DB, error)) {
	ctx := t.Context()
	ms, err := loadMigrations(d.migrations)
	if err != nil {
		t.Fatal(err)
	}
	last := ms[len(ms)-1].version
	exec := func(q string) {
		t.Helper()
		if _, err := raw.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	refused := func(want SchemaError, says string) {
		t.Helper()
		db, err := openExisting()
		if db != nil {
			db.Close()
		}
		var se *SchemaError
		if !errors.As(err, &se) || *se != want {
			t.Fatalf("open: %v, want %+v", err, want)
		}
		if !strings.Contains(err.Error(), says) {
			t.Errorf("open: %v, want it to say %q", err, says)
		}
	}
	recorded := func(version int) bool {
		t.Helper()
		var n int
		if err := raw.QueryRowContext(ctx, fmt.Sprintf("SELECT count(*) FROM schema_migrations WHERE version = %d", version)).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n > 0
	}

	// Older: the nodes' varde serve of this version upgrades it.
	exec(fmt.Sprintf("DELETE FROM schema_migrations WHERE version = %d", last))
	refused(SchemaError{Have: last - 1, Want: last},
		fmt.Sprintf("the database is at schema %d, this varde needs %d: upgrade it by starting `varde serve`", last-1, last))
	if recorded(last) {
		t.Errorf("migration %d was applied by a tool's open", last)
	}

	// Newer: the varde that migrated it knows what it records.
	exec(fmt.Sprintf("INSERT INTO schema_migrations (version, name, applied_at) VALUES (%d, '%04d_x.sql', 1)", last, last))
	exec(fmt.Sprintf("INSERT INTO schema_migrations (version, name, applied_at) VALUES (%d, '%04d_future.sql', 1)", last+1, last+1))
	refused(SchemaError{Have: last + 1, Want: last, Newer: true},
		fmt.Sprintf("the database is at schema %d, which this varde (schema %d) does not know", last+1, last))

	exec(fmt.Sprintf("DELETE FROM schema_migrations WHERE version = %d", last+1))
	db, err := openExisting()
	if err != nil {
		t.Fatalf("open at this build's schema: %v", err)
	}
	db.Close()
}

func TestOpenExistingSQLiteSchema(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	// A file no node ever started on is no store, and stays empty.
	empty := filepath.Join(dir, "empty.db")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if db, err := OpenExistingSQLite(ctx, empty); !errors.Is(err, ErrNoDatabase) {
		if db != nil {
			db.Close()
		}
		t.Errorf("open an empty file: %v, want ErrNoDatabase", err)
	}
	if fi, err := os.Stat(empty); err != nil || fi.Size() != 0 {
		t.Errorf("the empty file after the open: %v, %v", fi, err)
	}

	path := filepath.Join(dir, "varde.db")
	if err := open(t, path).Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	d, err := sqliteDialect()
	if err != nil {
		t.Fatal(err)
	}
	testOpenExistingSchema(t, d, raw, func() (*DB, error) { return OpenExistingSQLite(ctx, path) })
}

// TestSessionsLiveAtMigrationCountAsUsed: a session stored before
// 0021_session_last_used counts as used when the migration ran, so the
// idle timeout does not end every session at upgrade.
func TestSessionsLiveAtMigrationCountAsUsed(t *testing.T) {
	ctx := t.Context()
	d, err := sqliteDialect()
	if err != nil {
		t.Fatal(err)
	}
	before := fstest.MapFS{}
	entries, err := fs.ReadDir(d.migrations, ".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() < "0021" {
			body, err := fs.ReadFile(d.migrations, e.Name())
			if err != nil {
				t.Fatal(err)
			}
			before[e.Name()] = &fstest.MapFile{Data: body}
		}
	}
	old := d
	old.migrations = before
	db := openMigrationDB(t)
	created := time.Now().Add(-time.Hour)
	if _, err := migrate(ctx, db, old, created); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, insertSQL("sessions", sessionCols), "s1", "p1", "passkey", "high", "[]",
		micros(created), "[]", micros(created), micros(created.Add(8*time.Hour)), 0, ""); err != nil {
		t.Fatal(err)
	}
	from := time.Now()
	if _, err := migrate(ctx, db, d, from); err != nil {
		t.Fatal(err)
	}
	to := time.Now()
	var used int64
	if err := db.QueryRowContext(ctx, "SELECT last_used FROM sessions WHERE id = 's1'").Scan(&used); err != nil {
		t.Fatal(err)
	}
	if got := fromMicros(used); got.Before(from.Add(-time.Millisecond)) || got.After(to.Add(time.Millisecond)) {
		t.Errorf("last_used after the migration = %v, want between %v and %v", got, from, to)
	}
}

// openMigrationDB opens an empty SQLite database on one connection, for
// running migrations by hand; it is closed when the test ends.
func openMigrationDB(t *testing.T) *sql.DB {
	t.Helper()
	dsn, err := sqliteDSN(filepath.Join(t.TempDir(), "m.db"), roleWrite)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	db.SetMaxOpenConns(1)
	return db
}

// TestSessionFromOlderNodeCountsAsUsedAtCreation: a session that a node
// predating 0021_session_last_used stores, as one may while the nodes
// sharing a database are upgraded one by one, has last_used 0. It
// counts as used when it was created: not idle from the start, so
// neither swept nor ended for nobody, on either dialect.
func TestSessionFromOlderNodeCountsAsUsedAtCreation(t *testing.T) {
	for name, db := range map[string]*DB{"sqlite": openTemp(t), "postgres": openPostgres(t, pgtest.NewDatabase(t))} {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			now := time.Now().UTC().Truncate(time.Microsecond)
			created := now.Add(-10 * time.Minute)
			db.SetSessionIdleTimeout(30 * time.Minute)
			for _, id := range []string{"s-old-node", "s-old-node-2"} {
				if _, err := db.w.ExecContext(ctx, db.d.rebind(insertSQL("sessions", sessionCols)), id, "p1", "passkey", "high", "[]",
					micros(created), `["bank"]`, micros(created), micros(now.Add(8*time.Hour)), 0, ""); err != nil {
					t.Fatal(err)
				}
			}
			s, err := db.GetSession(ctx, "s-old-node", now)
			if err != nil || !s.LastUsed.Equal(created) {
				t.Fatalf("GetSession = %v, %v; want LastUsed %v, its creation", s, err, created)
			}
			if n, err := db.DeleteExpired(ctx, now); err != nil || n != 0 {
				t.Errorf("DeleteExpired = %d, %v; want 0, nil", n, err)
			}
			ended, err := db.EndSession(ctx, "s-old-node", now)
			if err != nil || ended == nil || !ended.LastUsed.Equal(created) {
				t.Fatalf("EndSession = %v, %v; want the session, last used at its creation", ended, err)
			}
			pending, err := db.PendingSessionEnds(ctx, now.Add(time.Second), 10)
			if err != nil || len(pending) != 1 {
				t.Errorf("pending ends %d, %v; want its end", len(pending), err)
			}
		})
	}
}

// TestDescribeDSNHidesCredentials: whatever the driver, a DSN is named
// without anything that may hold a credential.
func TestDescribeDSNHidesCredentials(t *testing.T) {
	const secret = "s3cret-key"
	for _, tt := range []struct{ driver, dsn, want string }{
		{"sqlite", "/var/lib/varde/varde.db", "/var/lib/varde/varde.db"},
		{"sqlite", "file:varde.db?_pragma=key('" + secret + "')", "file:varde.db (its parameters not shown)"},
		{"sqlite", "varde.db#" + secret, "varde.db (its parameters not shown)"},
		{"sqlite", "libsql://varde:" + secret + "@db.example/varde", "libsql://db.example/varde"},
		{"sqlite", "https://varde:" + secret + "@db.example", "https://db.example"},
		{"sqlite", "host=db.example user=varde password=" + secret, "a connection string (not shown: it holds a password)"},
		{"", "postgres://varde:" + secret + "@db.example/varde", "postgres://db.example/varde"},
		{"postgres", "postgres://varde:" + secret + "@db.example:5433/idp", `database "idp" on db.example:5433`},
	} {
		if got := DescribeDSN(tt.driver, tt.dsn); got != tt.want || strings.Contains(got, secret) {
			t.Errorf("DescribeDSN(%q, %q) = %q, want %q", tt.driver, tt.dsn, got, tt.want)
		}
	}
}

// TestOpenSQLiteURIHidesParameters: a DSN refused for its parameters is
// not shown with them, since they may hold a key.
func TestOpenSQLiteURIHidesParameters(t *testing.T) {
	const secret = "s3cret-key"
	path := filepath.Join(t.TempDir(), "v.db") + "?_pragma=key('" + secret + "')"
	db, err := OpenSQLite(t.Context(), path)
	if err == nil {
		db.Close()
		t.Fatal("opened")
	}
	if strings.Contains(err.Error(), secret) || !strings.Contains(err.Error(), "contains '?' or '#'") {
		t.Errorf("error = %v", err)
	}
}

// TestSweptSessionEndsInChunks: a sweep of more sessions than one chunk
// (sweepChunk) holds records the end of every one a client with a
// back-channel logout URI got tokens in, and of no other, each with its
// audit event, across the chunks' writes, on either dialect.
func TestSweptSessionEndsInChunks(t *testing.T) {
	forDialects(t, func(t *testing.T, db *DB) {
		ctx := t.Context()
		now := time.Now().UTC().Truncate(time.Microsecond)
		addLogoutClient(t, db, now)
		const sessions = 2*sweepChunk + 5
		tx, err := db.w.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		ins, err := tx.PrepareContext(ctx, db.d.rebind(insertSQL("sessions", sessionCols+", last_used")))
		if err != nil {
			t.Fatal(err)
		}
		told := 0
		for i := range sessions {
			clients := `["shop"]`
			if i%3 == 0 {
				clients, told = `["shop","bank"]`, told+1
			}
			created := now.Add(-time.Hour)
			if _, err := ins.ExecContext(ctx, fmt.Sprintf("s-%05d", i), "p1", "passkey", "high", "[]", micros(created), clients,
				micros(created), micros(now.Add(-time.Second)), 0, "", micros(created)); err != nil {
				t.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		if n, err := db.DeleteExpired(ctx, now); err != nil || n != sessions {
			t.Fatalf("DeleteExpired = %d, %v; want %d", n, err, sessions)
		}
		pending, err := db.PendingSessionEnds(ctx, now, 2*sessions)
		if err != nil || len(pending) != told {
			t.Fatalf("pending ends %d, %v; want %d", len(pending), err, told)
		}
		events, err := db.ListAudit(ctx, 0, 2*sessions)
		if err != nil || len(events) != told {
			t.Fatalf("audit events %d, %v; want %d", len(events), err, told)
		}
		for _, e := range pending {
			if e.EndReason != store.EndExpired {
				t.Fatalf("end of %s: reason %q", e.ID, e.EndReason)
			}
		}
	})
}
