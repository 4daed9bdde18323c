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
	for _, tt := range []struct {
		name   string
		make   func(t *testing.T) (cfgPath, dsn string)
		events int
	}{
		{"a node that stopped", stoppedInWAL, 3},
		{"a node that was killed", killedInWAL, 4},
	} {
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
