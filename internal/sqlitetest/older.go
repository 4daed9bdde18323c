package sqlitetest

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// Older writes at path a new store of schema version, holding what the
// store at from holds: made by the migrations up to version, as the
// build of that schema made it (migrations never change once released),
// then given from's rows, each table's columns that schema has. It is
// the store an operator has before upgrading a node to this build.
// Every column a migration added since is dropped, so from should hold
// nothing an older build could not have written; the audit chain stays
// whole as long as no column its hash covers came after version.
func Older(t testing.TB, from, path string, version int) {
	t.Helper()
	ctx := context.Background()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1) // one connection, which the ATTACH is on
	for _, m := range migrationsUpTo(t, version) {
		body, err := os.ReadFile(m.path)
		if err != nil {
			t.Fatal(err)
		}
		stmts := []string{"BEGIN", "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
			string(body), fmt.Sprintf("INSERT INTO schema_migrations VALUES (%d, '%s', 1)", m.version, filepath.Base(m.path)), "COMMIT"}
		for _, q := range stmts {
			if _, err := db.ExecContext(ctx, q); err != nil {
				t.Fatalf("migration %s: %v", m.path, err)
			}
		}
	}
	if _, err := db.ExecContext(ctx, "ATTACH DATABASE ? AS src", from); err != nil {
		t.Fatal(err)
	}
	for _, table := range names(t, db, "SELECT name FROM main.sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> 'schema_migrations'") {
		cols := strings.Join(names(t, db, "SELECT name FROM pragma_table_info(?, 'main')", table), ", ")
		q := fmt.Sprintf("INSERT INTO main.%s (%s) SELECT %s FROM src.%s", table, cols, cols, table)
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if _, err := db.ExecContext(ctx, "DETACH DATABASE src"); err != nil {
		t.Fatal(err)
	}
}

type migrationFile struct {
	version int
	path    string
}

// migrationsUpTo lists the SQLite store's migration files up to
// version, in order, from the source tree beside this package.
func migrationsUpTo(t testing.TB, version int) []migrationFile {
	t.Helper()
	_, here, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(here), "..", "store", "sqlstore", "migrations", "sqlite")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var ms []migrationFile
	for _, e := range entries {
		num, _, _ := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if err != nil || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		if v <= version {
			ms = append(ms, migrationFile{v, filepath.Join(dir, e.Name())})
		}
	}
	slices.SortFunc(ms, func(a, b migrationFile) int { return a.version - b.version })
	if len(ms) == 0 || ms[len(ms)-1].version != version {
		t.Fatalf("no migration %04d in %s", version, dir)
	}
	return ms
}

// names returns the one text column of q's rows.
func names(t testing.TB, db *sql.DB, q string, args ...any) []string {
	t.Helper()
	rows, err := db.QueryContext(context.Background(), q, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
