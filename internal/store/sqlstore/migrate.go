package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"time"
)

// migration is one numbered schema change, NNNN_name.sql.
type migration struct {
	version int
	name    string
	sql     string
}

// loadMigrations reads every .sql file at the root of fsys, in version
// order. Versions must be unique; gaps are allowed.
func loadMigrations(fsys fs.FS) ([]migration, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	var ms []migration
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name is not NNNN_name.sql", e.Name())
		}
		body, err := fs.ReadFile(fsys, e.Name())
		if err != nil {
			return nil, fmt.Errorf("migration %s: %w", e.Name(), err)
		}
		ms = append(ms, migration{version: v, name: e.Name(), sql: string(body)})
	}
	slices.SortFunc(ms, func(a, b migration) int { return a.version - b.version })
	for i := 1; i < len(ms); i++ {
		if ms[i].version == ms[i-1].version {
			return nil, fmt.Errorf("migrations %s and %s share version %d", ms[i-1].name, ms[i].name, ms[i].version)
		}
	}
	return ms, nil
}

// migrator is a pool (*sql.DB) or one of its connections (*sql.Conn).
type migrator interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error)
}

// migrate applies every migration of d that db has not recorded yet, in
// order, each in its own transaction together with its record in
// schema_migrations. A migration that fails leaves no trace. Versions the
// database has but this build does not know are ignored: migrations only
// add, so an older node still works against a newer schema, as it must
// while the nodes sharing a database are upgraded one by one. Tools
// that open a node's database do not migrate: see checkSchema. It
// returns what it applied, for the node to log.
func migrate(ctx context.Context, db migrator, d dialect, now time.Time) (SchemaUpgrade, error) {
	var up SchemaUpgrade
	ms, err := loadMigrations(d.migrations)
	if err != nil {
		return up, err
	}
	if _, err := db.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS schema_migrations ("+
		"version INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)"); err != nil {
		return up, fmt.Errorf("create schema_migrations: %w", err)
	}
	applied, err := appliedVersions(ctx, db)
	if err != nil {
		return up, err
	}
	for v := range applied {
		up.From = max(up.From, v)
	}
	for _, m := range ms {
		if applied[m.version] {
			continue
		}
		ran, err := apply(ctx, db, d, m, now)
		if err != nil {
			return up, err
		}
		if ran {
			up.Applied = append(up.Applied, m.name)
			up.To = max(up.To, m.version)
		}
	}
	return up, nil
}

// SchemaUpgrade is what a node's open of its database (OpenSQLite,
// OpenPostgres) migrated: nothing (no Applied) if the schema was this
// build's already, or another node upgraded it meanwhile.
type SchemaUpgrade struct {
	// From is the highest version the database recorded before, 0 for a
	// new database; To the highest it applied.
	From, To int
	// Applied names the migrations applied, in order.
	Applied []string
}

// Migrated returns what opening db migrated: an operator upgrading
// reads in the node's log that the schema moved, and from where to
// where, since the admin commands of the version before no longer open
// it.
func (db *DB) Migrated() SchemaUpgrade { return db.migrated }

func appliedVersions(ctx context.Context, db migrator) (map[int]bool, error) {
	rows, err := db.QueryContext(ctx, "SELECT version FROM schema_migrations")
	if err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	defer rows.Close()
	applied := map[int]bool{}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("read schema_migrations: %w", err)
		}
		applied[v] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	return applied, nil
}

// apply runs m in one transaction. It checks again inside the transaction
// whether m is recorded, since another process may have applied it since
// appliedVersions looked; ran is false if it was.
func apply(ctx context.Context, db migrator, d dialect, m migration, now time.Time) (ran bool, err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("migration %s: begin: %w", m.name, err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	var n int
	if err := tx.QueryRowContext(ctx, d.rebind("SELECT count(*) FROM schema_migrations WHERE version = ?"), m.version).Scan(&n); err != nil {
		return false, fmt.Errorf("migration %s: %w", m.name, err)
	}
	if n > 0 {
		return false, nil
	}
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return false, fmt.Errorf("migration %s: %w", m.name, err)
	}
	if _, err := tx.ExecContext(ctx, d.rebind("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)"),
		m.version, m.name, micros(now)); err != nil {
		return false, fmt.Errorf("migration %s: record: %w", m.name, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("migration %s: commit: %w", m.name, err)
	}
	return true, nil
}

// SchemaError means that a database's schema is not the one this
// build's migrations make, found by a tool that works on a node's
// database (OpenExistingSQLite, OpenExistingPostgres), which changes no
// schema.
type SchemaError struct {
	// Have is the highest version the database records, Want the
	// highest this build knows.
	Have, Want int
	// Newer says the database records versions this build does not
	// know; otherwise it lacks some this build has.
	Newer bool
}

func (e *SchemaError) Error() string {
	if e.Newer {
		return fmt.Sprintf("the database is at schema %d, which this varde (schema %d) does not know: "+
			"run the varde of the version the nodes run, since this one would not see what the newer schema records", e.Have, e.Want)
	}
	return fmt.Sprintf("the database is at schema %d, this varde needs %d: upgrade it by starting `varde serve` of this version, "+
		"or run the varde of the version the nodes run", e.Have, e.Want)
}

// checkSchema is migrate for tools that work on a node's database
// (varde clients, keys, status, store): it applies nothing, and returns
// a *SchemaError unless db records exactly the migrations of d. An older
// schema is the nodes' to upgrade, when one of this version starts: a
// tool run by hand must not upgrade a database under nodes that do not
// know the new schema yet. A newer one is refused too, unlike by
// migrate: a node of the older version keeps serving during an upgrade,
// but a tool can be run in the version that matches, and an older one
// could miss what the newer schema records (say, a removal that does
// not revoke what a new table holds).
func checkSchema(ctx context.Context, db migrator, d dialect) error {
	s, err := readSchema(ctx, db, d)
	if err != nil {
		return err
	}
	return s.exact()
}

// schema is what a database's schema_migrations says of its schema
// against this build's migrations.
type schema struct {
	SchemaError
	// missing says the database lacks some of this build's migrations.
	missing bool
}

// exact returns a *SchemaError unless the schema is this build's.
func (s schema) exact() error {
	if s.Newer || s.missing {
		return &s.SchemaError
	}
	return nil
}

// notNewer returns a *SchemaError if the schema records a migration
// this build does not know; an older one passes.
func (s schema) notNewer() error {
	if s.Newer {
		return &s.SchemaError
	}
	return nil
}

// readSchema compares the migrations db records with those of d.
func readSchema(ctx context.Context, db migrator, d dialect) (schema, error) {
	var s schema
	ms, err := loadMigrations(d.migrations)
	if err != nil {
		return s, err
	}
	applied, err := appliedVersions(ctx, db)
	if err != nil {
		return s, err
	}
	known := make(map[int]bool, len(ms))
	for _, m := range ms {
		known[m.version] = true
		s.Want = max(s.Want, m.version)
		s.missing = s.missing || !applied[m.version]
	}
	for v := range applied {
		s.Have = max(s.Have, v)
		s.Newer = s.Newer || !known[v]
	}
	return s, nil
}
