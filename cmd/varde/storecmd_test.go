package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/varde-eid/varde/internal/app"
	"github.com/varde-eid/varde/internal/audit"
	"github.com/varde-eid/varde/internal/config"
	"github.com/varde-eid/varde/internal/pgtest"
	"github.com/varde-eid/varde/internal/sqlitetest"
	"github.com/varde-eid/varde/internal/store"
)

// TestStoreBackupAndVerify: a backup is written, checked and never
// overwritten; verify prints an anchor that later passes while the log
// grows and fails once the log up to it is rewritten; a broken chain
// fails verify.
func TestStoreBackupAndVerify(t *testing.T) {
	ctx := context.Background()
	cfgPath := adminConfig(t)
	cfg, err := config.LoadEnviron(cfgPath, func() []string { return nil })
	if err != nil {
		t.Fatal(err)
	}
	appendEvents := func(n int) {
		t.Helper()
		st, err := app.OpenExistingStore(ctx, cfg.Store)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		l := &audit.Log{Store: st}
		for range n {
			if err := l.Append(ctx, &store.AuditEvent{Type: "authentication", Provider: "passkey", Result: store.ResultSuccess}); err != nil {
				t.Fatal(err)
			}
		}
	}
	appendEvents(1)
	if out, err := runCmd(t, "store", "verify", "--config", cfgPath); err != nil || !strings.Contains(out, "audit log: 1 event, an unbroken hash chain from seq 1 to 1") {
		t.Errorf("verify of a log of one event: %v\n%s", err, out)
	}
	appendEvents(2)

	out, err := runCmd(t, "store", "verify", "--config", cfgPath)
	if err != nil {
		t.Fatalf("verify: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`anchor: (3:[0-9a-f]{64})\n`).FindStringSubmatch(out)
	if m == nil || !strings.Contains(out, "3 events, an unbroken hash chain from seq 1 to 3") || !strings.Contains(out, "no damage found") {
		t.Fatalf("verify printed:\n%s", out)
	}
	anchor := m[1]
	// The command it says to check the anchor with later is one that
	// runs: with the configuration file given.
	if want := "`varde store verify --config " + cfgPath + " --anchor " + anchor + "`"; !strings.Contains(out, want) {
		t.Errorf("verify printed:\n%s\nwant it to say to run %s", out, want)
	}

	backup := filepath.Join(t.TempDir(), "varde-backup.db")
	out, err = runCmd(t, "store", "backup", "--config", cfgPath, "--out", backup)
	if err != nil {
		t.Fatalf("backup: %v\n%s", err, out)
	}
	if !strings.Contains(out, "backup: "+backup) || !strings.Contains(out, "anchor: "+anchor) || !strings.Contains(out, "To restore") {
		t.Errorf("backup printed:\n%s", out)
	}
	// The check left the snapshot as VACUUM INTO wrote it: in
	// rollback-journal mode (header bytes 18 and 19), nothing beside it.
	if head, err := os.ReadFile(backup); err != nil || len(head) < 20 || head[18] != 1 || head[19] != 1 {
		t.Errorf("the backup after its check: header %v, %v", head[:min(len(head), 20)], err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(backup)); len(entries) != 1 {
		t.Errorf("beside the backup: %v", entries)
	}
	if _, err := runCmd(t, "store", "backup", "--config", cfgPath, "--out", backup); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("a second backup to the same file: %v", err)
	}

	appendEvents(2)
	if out, err := runCmd(t, "store", "verify", "--config", cfgPath, "--anchor", anchor); err != nil || !strings.Contains(out, "anchor "+anchor+" matches") {
		t.Errorf("verify --anchor after appending: %v\n%s", err, out)
	}
	if _, err := runCmd(t, "store", "verify", "--config", cfgPath, "--anchor", "three:abc"); exitStatus(err, &strings.Builder{}) != 2 {
		t.Errorf("a malformed anchor: %v, want a usage error", err)
	}
	// An anchor cut short in copying is a mistake, said so before the
	// database is read, not a log that was rewritten.
	for _, short := range []string{anchor[:len(anchor)-1], anchor[:len(anchor)-2], "3:9f2c"} {
		out, err := runCmd(t, "store", "verify", "--config", cfgPath, "--anchor", short)
		if exitStatus(err, &strings.Builder{}) != 2 || errors.Is(err, audit.ErrAnchor) || !strings.Contains(out+err.Error(), "copy the whole anchor") || strings.Contains(out, "integrity:") {
			t.Errorf("anchor %q cut short: %v\n%s\nwant a usage error before the check", short, err, out)
		}
	}

	// Someone with the database file rewrites event 2 (the triggers that
	// refuse it dropped first).
	raw, err := sql.Open("sqlite", cfg.Store.DSN)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"DROP TRIGGER audit_log_no_update", "UPDATE audit_log SET result = 'failure' WHERE seq = 2"} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	raw.Close()
	_, err = runCmd(t, "store", "verify", "--config", cfgPath, "--anchor", anchor)
	var ce *audit.ChainError
	if !errors.As(err, &ce) || ce.Seq != 2 || exitStatus(err, &strings.Builder{}) != 1 {
		t.Errorf("verify of a rewritten log: %v, want a broken chain at seq 2", err)
	}
	// The backup, taken before, still verifies with the anchor, and the
	// check leaves it byte for byte as it was, with nothing beside it.
	before, err := os.ReadFile(backup)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := runCmd(t, "store", "verify", "--backup", backup, "--anchor", anchor); err != nil || !strings.Contains(out, "anchor "+anchor+" matches") {
		t.Errorf("verify of the backup: %v\n%s", err, out)
	}
	if after, err := os.ReadFile(backup); err != nil || !bytes.Equal(before, after) {
		t.Errorf("verify changed the backup (%v)", err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(backup)); len(entries) != 1 {
		t.Errorf("beside the backup after verify: %v", entries)
	}
	if _, err := runCmd(t, "store", "verify", "--backup", filepath.Join(t.TempDir(), "none.db")); err == nil || !strings.Contains(err.Error(), "does not open") {
		t.Errorf("verify of a missing backup: %v", err)
	}

	for _, args := range [][]string{{"store"}, {"store", "restore"}, {"store", "backup", "--config", cfgPath}, {"store", "verify", "--config", cfgPath, "extra"}, {"store", "verify", "--config", cfgPath, "--backup", backup}} {
		if _, err := runCmd(t, args...); exitStatus(err, &strings.Builder{}) != 2 {
			t.Errorf("%q: %v, want exit status 2", args, err)
		}
	}
}

// TestShellWord: a path is printed so that a shell reads it back as
// the one word it is.
func TestShellWord(t *testing.T) {
	for in, want := range map[string]string{
		"varde.yaml":            "varde.yaml",
		"/etc/varde/varde.yaml": "/etc/varde/varde.yaml",
		"/etc/my varde/v.yaml":  "'/etc/my varde/v.yaml'",
		"it's.yaml":             `'it'\''s.yaml'`,
		"$HOME/v.yaml":          "'$HOME/v.yaml'",
		"":                      "''",
	} {
		if got := shellWord(in); got != want {
			t.Errorf("shellWord(%q) = %s, want %s", in, got, want)
		}
	}
}

// TestStoreVerifySaysWhereAddressesAreDeleted: verify says up to which
// event the addresses kept apart are deleted, and warns when that event
// is younger than audit.address_retention: deleting an address leaves
// the chain whole, so an address deleted before its time is shown, not
// refused.
func TestStoreVerifySaysWhereAddressesAreDeleted(t *testing.T) {
	ctx := context.Background()
	cfgPath, st := adminStore(t)
	now := time.Now().UTC().Truncate(time.Second)
	day := 24 * time.Hour
	for _, age := range []time.Duration{200 * day, 180*day - time.Minute, 10 * day, day} {
		e := &store.AuditEvent{Time: now.Add(-age), Type: "authentication", Result: store.ResultSuccess,
			Details: map[string]string{store.DetailAddr: "192.0.2.1"}}
		if err := st.AppendAudit(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := runCmd(t, "store", "verify", "--config", cfgPath); err != nil || strings.Contains(out, "addresses:") {
		t.Errorf("verify with every address kept: %v\n%s", err, out)
	}

	// Housekeeping deletes the one past the default 180 days, by a
	// clock of its own a few minutes ahead.
	if _, err := st.DeleteAuditAddresses(ctx, now.Add(-180*day+5*time.Minute), now); err != nil {
		t.Fatal(err)
	}
	out, err := runCmd(t, "store", "verify", "--config", cfgPath)
	want := "addresses: deleted from the events up to " + now.Add(-180*day+time.Minute).Format(time.RFC3339) + "\n"
	if err != nil || !strings.Contains(out, want) || strings.Contains(out, "WARNING") {
		t.Errorf("verify with the address past its retention deleted: %v\n%s\nwant %q and no warning", err, out, want)
	}

	// Someone deletes the address of the event of 10 days ago.
	if _, err := st.DeleteAuditAddresses(ctx, now.Add(-5*day), now); err != nil {
		t.Fatal(err)
	}
	out, err = runCmd(t, "store", "verify", "--config", cfgPath)
	for _, want := range []string{
		"addresses: deleted from the events up to " + now.Add(-10*day).Format(time.RFC3339) + "\n",
		"WARNING: that event is younger than audit.address_retention (180 days): an address was deleted before its time",
	} {
		if err != nil || !strings.Contains(out, want) {
			t.Errorf("verify with an address deleted early: %v\n%s\nwant %q", err, out, want)
		}
	}
}

// adminStore is adminConfig's file and its store, open beside the
// commands a test runs, closed when it ends.
func adminStore(t *testing.T) (string, store.Store) {
	t.Helper()
	cfgPath := adminConfig(t)
	cfg, err := config.LoadEnviron(cfgPath, func() []string { return nil })
	if err != nil {
		t.Fatal(err)
	}
	st, err := app.OpenExistingStore(context.Background(), cfg.Store)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return cfgPath, st
}

// olderSchema is the schema of the store made by olderStore: before the
// operators' holds on audit addresses (0033), after the addresses kept
// apart (0031), so that events with an address keep their hash.
const olderSchema = 32

// olderStore is adminConfig's file with its store replaced by one of
// olderSchema holding a client and three audit events, one with an
// address, as a node of the build before would leave it for an operator
// upgrading, and the path of that store.
func olderStore(t *testing.T) (cfgPath, dsn string) {
	t.Helper()
	cfgPath, dsn, _ = olderStoreFrom(t)
	return cfgPath, dsn
}

// olderStoreFrom is olderStore, with the store of this build's schema
// it was made from kept at src.
func olderStoreFrom(t *testing.T) (cfgPath, dsn, src string) {
	t.Helper()
	ctx := context.Background()
	cfgPath, st := adminStore(t)
	cfg, err := config.LoadEnviron(cfgPath, func() []string { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if err := st.PutClient(ctx, &store.Client{ID: "bank", Name: "Bank", RedirectURIs: []string{"https://bank.example/cb"}}); err != nil {
		t.Fatal(err)
	}
	l := &audit.Log{Store: st}
	for _, addr := range []string{"", "192.0.2.7", ""} {
		e := &store.AuditEvent{Type: "authentication", Provider: "passkey", Result: store.ResultSuccess}
		if addr != "" {
			e.Details = map[string]string{store.DetailAddr: addr}
		}
		if err := l.Append(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	dsn = cfg.Store.DSN
	older := filepath.Join(t.TempDir(), "older.db")
	sqlitetest.Older(t, dsn, older, olderSchema)
	for _, p := range []string{dsn + "-wal", dsn + "-shm"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
	}
	src = filepath.Join(t.TempDir(), "src.db")
	if err := os.Rename(dsn, src); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(older, dsn); err != nil {
		t.Fatal(err)
	}
	return cfgPath, dsn, src
}

// schemaOf is the highest schema version the SQLite file at path
// records, read without changing it.
func schemaOf(t *testing.T, path string) int {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v int
	if err := db.QueryRow("SELECT max(version) FROM schema_migrations").Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// fileSum is the SHA-256 of the file at path.
func fileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// TestStoreBackupOfAnOlderSchema: an operator upgrading stops the node
// and backs its store up with the new varde before starting it. The
// backup is taken and checked, its audit chain walked, and neither the
// store nor the backup is migrated or changed; verify --backup checks
// it again later. A store of a newer schema than this varde's is
// refused, saying which varde to use, and no file is left.
func TestStoreBackupOfAnOlderSchema(t *testing.T) {
	cfgPath, dsn := olderStore(t)
	before := fileSum(t, dsn)
	backup := filepath.Join(t.TempDir(), "backup.db")
	out, err := runCmd(t, "store", "backup", "--config", cfgPath, "--out", backup)
	if err != nil {
		t.Fatalf("backup of a store of schema %d: %v\n%s", olderSchema, err, out)
	}
	for _, want := range []string{
		"backup: " + backup,
		fmt.Sprintf("schema %d, older than this varde's", olderSchema),
		"audit log: 3 events, an unbroken hash chain from seq 1 to 3",
		"To restore",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("backup printed:\n%s\nwant it to say %q", out, want)
		}
	}
	if fileSum(t, dsn) != before || schemaOf(t, dsn) != olderSchema {
		t.Errorf("the store changed, at schema %d: the backup migrated it", schemaOf(t, dsn))
	}
	if got := schemaOf(t, backup); got != olderSchema {
		t.Errorf("the backup is at schema %d, want the store's %d", got, olderSchema)
	}
	backedUp := fileSum(t, backup)
	if entries, _ := os.ReadDir(filepath.Dir(backup)); len(entries) != 1 {
		t.Errorf("beside the backup: %v, want it alone", entries)
	}

	out, err = runCmd(t, "store", "verify", "--backup", backup)
	if err != nil || !strings.Contains(out, "audit log: 3 events, an unbroken hash chain") {
		t.Errorf("verify --backup of schema %d: %v\n%s", olderSchema, err, out)
	}
	if fileSum(t, backup) != backedUp {
		t.Error("verify --backup changed the backup")
	}

	// A newer schema: this varde would not see what it records.
	markNewer(t, dsn)
	newer := filepath.Join(t.TempDir(), "newer.db")
	out, err = runCmd(t, "store", "backup", "--config", cfgPath, "--out", newer)
	if err == nil || !strings.Contains(err.Error(), "schema 9999, which this varde") || !strings.Contains(err.Error(), "the varde of the version the nodes run") {
		t.Errorf("backup of a newer schema: %v\n%s", err, out)
	}
	if _, err := os.Stat(newer); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a backup refused left %s: %v", newer, err)
	}
	// A backup of a newer schema is not checked either.
	raw, err := os.ReadFile(backup)
	if err != nil {
		t.Fatal(err)
	}
	newerBackup := filepath.Join(t.TempDir(), "newer-backup.db")
	if err := os.WriteFile(newerBackup, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	markNewer(t, newerBackup)
	out, err = runCmd(t, "store", "verify", "--backup", newerBackup)
	if err == nil || !strings.Contains(err.Error(), "schema 9999, which this varde") {
		t.Errorf("verify --backup of a newer schema: %v\n%s", err, out)
	}
}

// TestStoreVerifyOfAnOlderSchema: an operator upgrading stops the node,
// backs its store up with the new varde and checks the store with the
// anchor the backup printed, before a node has migrated it. verify
// --config checks the store without migrating it or changing a byte of
// it, and leaves nothing beside it; a newer schema is refused, naming
// the varde to use.
func TestStoreVerifyOfAnOlderSchema(t *testing.T) {
	cfgPath, dsn := olderStore(t)
	backup := filepath.Join(t.TempDir(), "backup.db")
	out, err := runCmd(t, "store", "backup", "--config", cfgPath, "--out", backup)
	if err != nil {
		t.Fatalf("backup: %v\n%s", err, out)
	}
	_, anchor, ok := strings.Cut(out, "\nanchor: ")
	if !ok {
		t.Fatalf("backup printed no anchor:\n%s", out)
	}
	anchor, _, _ = strings.Cut(anchor, "\n")
	before := fileSum(t, dsn)
	entries, err := os.ReadDir(filepath.Dir(dsn))
	if err != nil {
		t.Fatal(err)
	}

	out, err = runCmd(t, "store", "verify", "--config", cfgPath, "--anchor", anchor)
	if err != nil {
		t.Fatalf("verify --config of a store of schema %d: %v\n%s", olderSchema, err, out)
	}
	for _, want := range []string{
		fmt.Sprintf("schema %d, older than this varde's", olderSchema),
		"integrity: every page, index and constraint checked",
		"audit log: 3 events, an unbroken hash chain from seq 1 to 3",
		"anchor: " + anchor,
		"anchor " + anchor + " matches",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("verify printed:\n%s\nwant it to say %q", out, want)
		}
	}
	if fileSum(t, dsn) != before || schemaOf(t, dsn) != olderSchema {
		t.Errorf("the store changed, at schema %d: verify migrated it", schemaOf(t, dsn))
	}
	if after, _ := os.ReadDir(filepath.Dir(dsn)); len(after) != len(entries) {
		t.Errorf("beside the store after verify: %v, want %v", after, entries)
	}

	// A newer schema: this varde would not see what it records.
	markNewer(t, dsn)
	out, err = runCmd(t, "store", "verify", "--config", cfgPath)
	if err == nil || !strings.Contains(err.Error(), "schema 9999, which this varde") || !strings.Contains(err.Error(), "the varde of the version the nodes run") {
		t.Errorf("verify --config of a newer schema: %v\n%s", err, out)
	}
}

// markNewer makes the SQLite store at path one of a newer schema than
// this varde's, recording a migration it does not know.
func markNewer(t *testing.T, path string) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, '9999_future.sql', 1)"); err != nil {
		t.Fatal(err)
	}
}

// TestStoreVerifyRefusesAnOlderPostgresSchema: over PostgreSQL, where
// the first node of a version to start migrates the shared database,
// verify refuses an older schema, saying to start a node of this
// version, and changes nothing.
func TestStoreVerifyRefusesAnOlderPostgresSchema(t *testing.T) {
	ctx := t.Context()
	cfgPath := postgresAdminConfig(t)
	cfg, err := config.LoadEnviron(cfgPath, func() []string { return nil })
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, cfg.Store.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var last int
	if err := conn.QueryRow(ctx, "DELETE FROM schema_migrations WHERE version = (SELECT max(version) FROM schema_migrations) RETURNING version").Scan(&last); err != nil {
		t.Fatal(err)
	}
	out, err := runCmd(t, "store", "verify", "--config", cfgPath)
	says := fmt.Sprintf("the database is at schema %d, this varde needs %d: upgrade it by starting `varde serve` of this version", last-1, last)
	if err == nil || !strings.Contains(err.Error(), says) {
		t.Errorf("verify --config of an older PostgreSQL schema: %v, want it to say %q\n%s", err, says, out)
	}
	var have int
	if err := conn.QueryRow(ctx, "SELECT max(version) FROM schema_migrations").Scan(&have); err != nil || have != last-1 {
		t.Errorf("schema after verify: %d (%v), want %d as it was", have, err, last-1)
	}
}

// TestStoreVerifyOfAPostgresDump: a PostgreSQL store is backed up with
// pg_dump. verify --backup of a dump, in any of pg_dump's formats, says
// what it is and how to check it, rather than that a file is not a
// database; restored into a new database as it says, verify --config
// with VARDE_STORE_DSN naming that database finds the audit log the
// store had, to its anchor.
func TestStoreVerifyOfAPostgresDump(t *testing.T) {
	cfgPath := postgresAdminConfig(t)
	if out, err := runCmd(t, "clients", "add", "--config", cfgPath, "--id", "tax", "--name", "Tax", "--auth-method", "none",
		"--redirect-uri", "https://tax.example/cb"); err != nil {
		t.Fatalf("clients add: %v\n%s", err, out)
	}
	cfg, err := config.LoadEnviron(cfgPath, func() []string { return nil })
	if err != nil {
		t.Fatal(err)
	}
	out, err := runCmd(t, "store", "verify", "--config", cfgPath)
	if err != nil {
		t.Fatalf("verify: %v\n%s", err, out)
	}
	anchor := regexp.MustCompile(`(?m)^anchor: (\S+)$`).FindStringSubmatch(out)
	if anchor == nil {
		t.Fatalf("verify printed no anchor:\n%s", out)
	}
	var custom string
	for _, format := range []string{"c", "d", "t", "p"} {
		dump := pgtest.Dump(t, cfg.Store.DSN, format)
		if format == "c" {
			custom = dump
		}
		out, err := runCmd(t, "store", "verify", "--backup", dump)
		for _, want := range []string{dump + " is a PostgreSQL dump (pg_dump)", "pg_restore", "VARDE_STORE_DSN=", "varde store verify --config"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("verify --backup of a dump in pg_dump's format %s: %v, want it to say %q\n%s", format, err, want, out)
			}
		}
	}
	restored := pgtest.NewDatabase(t)
	pgtest.Restore(t, custom, restored)
	t.Setenv("VARDE_STORE_DSN", restored)
	out, err = runCmd(t, "store", "verify", "--config", cfgPath, "--anchor", anchor[1])
	if err != nil || !strings.Contains(out, "anchor: "+anchor[1]) {
		t.Errorf("verify of the restored dump: %v, want the anchor %s\n%s", err, anchor[1], out)
	}
}
