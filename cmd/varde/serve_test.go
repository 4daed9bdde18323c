package main

import (
	"database/sql"
	"fmt"
	"strings"
	"testing"

	"github.com/varde-eid/varde/internal/config"
)

// TestAdminCommandsDoNotMigrate: the admin commands refuse a database
// whose schema is older than this varde's (its nodes run an older
// version; upgrading it is theirs to do) or newer (this varde would not
// see what the newer schema records), say which versions and what to
// do, and leave the schema as it was.
func TestAdminCommandsDoNotMigrate(t *testing.T) {
	cfgPath := adminConfig(t)
	cfg, err := config.LoadEnviron(cfgPath, func() []string { return nil })
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", cfg.Store.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	versions := func() string {
		t.Helper()
		var v string
		if err := db.QueryRow("SELECT group_concat(version) FROM (SELECT version FROM schema_migrations ORDER BY version)").Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	var last int
	if err := db.QueryRow("SELECT max(version) FROM schema_migrations").Scan(&last); err != nil {
		t.Fatal(err)
	}
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.Exec(q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	commands := [][]string{
		{"clients", "list"},
		{"keys", "list"},
		{"status", "incidents"},
		{"store", "verify"},
	}
	for _, tc := range []struct {
		name   string
		change func()
		says   string
	}{
		{"older", func() { exec("DELETE FROM schema_migrations WHERE version = ?", last) },
			fmt.Sprintf("the database is at schema %d, this varde needs %d: upgrade it by starting `varde serve` of this version", last-1, last)},
		{"newer", func() {
			exec("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'x', 1), (?, 'future', 1)", last, last+1)
		}, fmt.Sprintf("the database is at schema %d, which this varde (schema %d) does not know: run the varde of the version the nodes run", last+1, last)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.change()
			before := versions()
			for _, c := range commands {
				out, err := runCmd(t, append(c, "--config", cfgPath)...)
				if err == nil || !strings.Contains(err.Error(), tc.says) {
					t.Errorf("varde %s: %v, want it to say %q\n%s", strings.Join(c, " "), err, tc.says, out)
				}
			}
			if after := versions(); after != before {
				t.Errorf("schema versions after the commands: %s, before: %s", after, before)
			}
		})
	}
}
