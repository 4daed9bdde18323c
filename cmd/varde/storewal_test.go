package main

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/audit"
	"github.com/varde-eid/varde/internal/config"
	"github.com/varde-eid/varde/internal/store"
	"github.com/varde-eid/varde/internal/store/sqlstore"
)

// TestStoreVerifyOfAnOlderStoreInWALChangesNothing: verify --config of
// a store of an older schema, which a node left in WAL mode, creates,
// changes and removes no file beside it: not the store, not a -wal or
// -shm file, by name, size, time of change or content. A node that
// stopped left the whole store in its file; one that was killed left
// committed events in its -wal file alone, and verify reads them.
func TestStoreVerifyOfAnOlderStoreInWALChangesNothing(t *testing.T) {
	for _, tt := range olderInWAL {
		t.Run(tt.name, func(t *testing.T) {
			cfgPath, dsn := tt.make(t)
			before := dirState(t, filepath.Dir(dsn))
			out, err := runCmd(t, "store", "verify", "--config", cfgPath)
			if err != nil {
				t.Fatalf("verify --config: %v\n%s", err, out)
			}
			for _, want := range []string{
				fmt.Sprintf("schema %d, older than this varde's", olderSchema),
				"integrity: every page, index and constraint checked",
				fmt.Sprintf("audit log: %d events, an unbroken hash chain from seq 1 to %d", tt.events, tt.events),
			} {
				if !strings.Contains(out, want) {
					t.Errorf("verify printed:\n%s\nwant it to say %q", out, want)
				}
			}
			if after := dirState(t, filepath.Dir(dsn)); after != before {
				t.Errorf("beside the store after verify:\n%s\nbefore:\n%s", after, before)
			}
		})
	}
}

// olderInWAL are the stores of an older schema a node in WAL mode
// leaves, with the events each holds.
var olderInWAL = []struct {
	name   string
	make   func(t *testing.T) (cfgPath, dsn string)
	events int
}{
	{"a node that stopped", stoppedInWAL, 3},
	{"a node that was killed", killedInWAL, 4},
}

// stoppedInWAL is olderStore as a node that ran it in WAL mode and
// stopped leaves it: in WAL mode, with no -wal or -shm file.
func stoppedInWAL(t *testing.T) (cfgPath, dsn string) {
	t.Helper()
	cfgPath, dsn = olderStore(t)
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		t.Fatal(err)
	}
	var mode string
	if err := db.QueryRow("PRAGMA journal_mode=WAL").Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal mode %q: %v", mode, err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dsn + "-wal", dsn + "-shm"} {
		if _, err := os.Stat(p); err == nil {
			t.Fatalf("%s left by a node that stopped", p)
		}
	}
	return cfgPath, dsn
}

// killedInWAL is olderStore as a node running it in WAL mode leaves it
// when it is killed: a fourth event, committed, is in the -wal file
// only, beside a -shm file.
func killedInWAL(t *testing.T) (cfgPath, dsn string) {
	t.Helper()
	ctx := context.Background()
	cfgPath, dsn, src := olderStoreFrom(t)
	st, err := sqlstore.OpenExistingSQLite(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	if err := (&audit.Log{Store: st}).Append(ctx, &store.AuditEvent{Type: "authentication", Provider: "passkey", Result: store.ResultSuccess}); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", dsn+"?_pragma=journal_mode(WAL)&_pragma=wal_autocheckpoint(0)")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1) // the ATTACH is on it
	// The node's write, as a node of the older schema makes it: the
	// event's columns that schema has.
	var cols []string
	rows, err := db.Query("SELECT name FROM pragma_table_info('audit_log')")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			t.Fatal(err)
		}
		cols = append(cols, c)
	}
	rows.Close()
	list := strings.Join(cols, ", ")
	for _, q := range []string{
		"ATTACH DATABASE '" + src + "' AS src",
		"INSERT INTO main.audit_log (" + list + ") SELECT " + list + " FROM src.audit_log WHERE seq = 4",
		"DETACH DATABASE src",
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	// Killed: its files as they are now, before a close would move the
	// -wal file's pages into the store and remove it.
	kept := t.TempDir()
	for _, suffix := range []string{"", "-wal", "-shm"} {
		copyFile(t, dsn+suffix, filepath.Join(kept, "db"+suffix))
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(dsn + suffix)
		copyFile(t, filepath.Join(kept, "db"+suffix), dsn+suffix)
	}
	if fi, err := os.Stat(dsn + "-wal"); err != nil || fi.Size() == 0 {
		t.Fatalf("no -wal file with the fourth event: %v", err)
	}
	return cfgPath, dsn
}

// copyFile copies the file at from to a new file at to.
func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// dirState is every file in dir, one a line, by name, size, time of
// change and SHA-256 of its content.
func dirState(t *testing.T, dir string) string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		sum := "dir"
		if !e.IsDir() {
			content, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			sum = fmt.Sprintf("%x", sha256.Sum256(content))
		}
		fmt.Fprintf(&b, "%s %d %s %s\n", e.Name(), fi.Size(), fi.ModTime().Format(time.RFC3339Nano), sum)
	}
	return b.String()
}

// TestStoreBackupOfAnOlderStoreInWALChangesNothing: backup of a store
// of an older schema, which a node left in WAL mode, creates, changes
// and removes no file beside it, and the backup holds every event
// committed, the killed node's last one in its -wal file alone too.
func TestStoreBackupOfAnOlderStoreInWALChangesNothing(t *testing.T) {
	for _, tt := range olderInWAL {
		t.Run(tt.name, func(t *testing.T) {
			cfgPath, dsn := tt.make(t)
			before := dirState(t, filepath.Dir(dsn))
			backup := filepath.Join(t.TempDir(), "backup.db")
			out, err := runCmd(t, "store", "backup", "--config", cfgPath, "--out", backup)
			if err != nil {
				t.Fatalf("backup: %v\n%s", err, out)
			}
			if after := dirState(t, filepath.Dir(dsn)); after != before {
				t.Errorf("beside the store after backup:\n%s\nbefore:\n%s", after, before)
			}
			if n := auditEventsIn(t, backup); n != tt.events {
				t.Errorf("the backup holds %d events, want %d", n, tt.events)
			}
			if got := schemaOf(t, backup); got != olderSchema {
				t.Errorf("the backup is of schema %d, want %d, as the store", got, olderSchema)
			}
		})
	}
}

// TestStoreVerifyBackupChangesNothing: verify --backup of a backup of
// this build's schema creates, changes and removes no file beside it:
// no -wal or -shm file appears, and the backup stays the snapshot it
// is, whether store backup wrote it (rollback-journal mode) or it is a
// copy of a stopped node's store file, in WAL mode, which SQLite would
// make a -wal and a -shm file beside for any connection.
func TestStoreVerifyBackupChangesNothing(t *testing.T) {
	for _, tt := range []struct {
		name string
		make func(t *testing.T, cfgPath, backup string)
	}{
		{"written by store backup", func(t *testing.T, cfgPath, backup string) {
			if out, err := runCmd(t, "store", "backup", "--config", cfgPath, "--out", backup); err != nil {
				t.Fatalf("backup: %v\n%s", err, out)
			}
		}},
		{"a copy of a stopped node's store in WAL mode", func(t *testing.T, cfgPath, backup string) {
			cfg, err := config.LoadEnviron(cfgPath, func() []string { return nil })
			if err != nil {
				t.Fatal(err)
			}
			copyFile(t, cfg.Store.DSN, backup)
			if b, err := os.ReadFile(backup); err != nil || b[18] != 2 {
				t.Fatalf("the copy is not in WAL mode: %v", err)
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfgPath, st := adminStore(t)
			if err := st.Close(); err != nil {
				t.Fatal(err)
			}
			backup := filepath.Join(t.TempDir(), "backup.db")
			tt.make(t, cfgPath, backup)
			before := dirState(t, filepath.Dir(backup))
			out, err := runCmd(t, "store", "verify", "--backup", backup)
			if err != nil {
				t.Fatalf("verify --backup: %v\n%s", err, out)
			}
			if !strings.Contains(out, "integrity: every page, index and constraint checked") {
				t.Errorf("verify printed:\n%s", out)
			}
			if after := dirState(t, filepath.Dir(backup)); after != before {
				t.Errorf("beside the backup after verify:\n%s\nbefore:\n%s", after, before)
			}
		})
	}
}

// auditEventsIn is the number of audit events in the SQLite file at
// path, read without changing it or making any file beside it.
func auditEventsIn(t *testing.T, path string) int {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&immutable=1")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM audit_log").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
