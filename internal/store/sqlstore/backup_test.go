package sqlstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/varde-eid/varde/internal/store"
)

// TestBackupIsAConsistentSnapshot: a backup taken while writes go on
// holds a whole prefix of them (an unbroken audit chain, nothing half
// written), is owner-only, passes the integrity check, and never
// overwrites a file.
func TestBackupIsAConsistentSnapshot(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db := open(t, filepath.Join(dir, "varde.db"))
	appendOne := func() error {
		return db.AppendAudit(ctx, &store.AuditEvent{Type: "authentication", Result: store.ResultSuccess, ClientID: "bank"})
	}
	for range 50 {
		if err := appendOne(); err != nil {
			t.Fatal(err)
		}
	}
	var (
		stop     atomic.Bool
		wg       sync.WaitGroup
		appended atomic.Int64
	)
	wg.Go(func() {
		for !stop.Load() {
			if err := appendOne(); err != nil {
				t.Error(err)
				return
			}
			appended.Add(1)
		}
	})
	path := filepath.Join(dir, "backups", "varde-1.db")
	err := db.BackupTo(ctx, path)
	stop.Store(true)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if appended.Load() == 0 {
		t.Log("no write ran during the backup")
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("backup mode %v, want 0600", fi.Mode().Perm())
	}

	cp, err := OpenExistingSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	if err := cp.CheckIntegrity(ctx); err != nil {
		t.Errorf("backup: %v", err)
	}
	evs, err := cp.ListAudit(ctx, 0, 100000)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) < 50 || int64(len(evs)) > 50+appended.Load() {
		t.Errorf("backup holds %d events; 50 before it began, %d written during it", len(evs), appended.Load())
	}
	if err := store.VerifyAuditChain(nil, evs); err != nil {
		t.Errorf("backup's audit chain: %v", err)
	}

	// Never over a file, not even an empty one another program made.
	before, _ := os.ReadFile(path)
	if err := db.BackupTo(ctx, path); !errors.Is(err, ErrBackupExists) {
		t.Errorf("backup over an existing backup: %v", err)
	}
	if after, _ := os.ReadFile(path); string(after) != string(before) {
		t.Error("the existing backup was changed")
	}
	if err := db.BackupTo(ctx, ""); err == nil {
		t.Error("a backup without a file name was taken")
	}
	if err := db.CheckIntegrity(ctx); err != nil {
		t.Errorf("the node's own database: %v", err)
	}
}

// TestCheckIntegrityFindsDamage: a database with a damaged page fails
// the check with ErrCorrupt.
func TestCheckIntegrityFindsDamage(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db := open(t, filepath.Join(dir, "varde.db"))
	for i := range 400 {
		if err := db.AppendAudit(ctx, &store.AuditEvent{Type: "authentication", Result: store.ResultSuccess, Reason: string(rune('a' + i%26))}); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "copy.db")
	if err := db.BackupTo(ctx, path); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const page = 4096
	if len(raw) < 8*page {
		t.Fatalf("copy is only %d bytes", len(raw))
	}
	// Scribble over the middle of the last pages, where the audit log's
	// rows and index are, leaving the header and schema alone.
	for p := len(raw)/page - 3; p < len(raw)/page; p++ {
		for i := p*page + 100; i < p*page+1000; i++ {
			raw[i] ^= 0x5a
		}
	}
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	// Checked in place, read-only, as a store of an older schema is.
	src, err := ReadSQLiteAsLeft(path, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := src.CheckIntegrity(ctx); !errors.Is(err, ErrCorrupt) {
		t.Errorf("CheckIntegrity on a damaged file = %v, want ErrCorrupt", err)
	}
	if after, err := os.ReadFile(path); err != nil || !bytes.Equal(after, raw) {
		t.Errorf("CheckIntegrity changed the file (%v)", err)
	}
	cp, err := OpenExistingSQLite(ctx, path)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			t.Logf("opening the damaged copy failed already: %v", err)
			return
		}
	}
	defer cp.Close()
	if err := cp.CheckIntegrity(ctx); !errors.Is(err, ErrCorrupt) {
		t.Errorf("CheckIntegrity on a damaged file = %v, want ErrCorrupt", err)
	}
}

// TestCheckBackupReadOnly: a backup opened with OpenSQLiteReadOnly is
// checked, its audit chain walked and its writes refused, and its file
// stays byte for byte the snapshot it was, in rollback-journal mode
// (header bytes 18 and 19 are 1, not WAL's 2), with no -wal or -shm
// beside it. The path may hold what a file: URI escapes.
func TestCheckBackupReadOnly(t *testing.T) {
	ctx := t.Context()
	dir := filepath.Join(t.TempDir(), "back ups 100%")
	db := openTemp(t)
	for range 20 {
		if err := db.AppendAudit(ctx, &store.AuditEvent{Type: "authentication", Result: store.ResultSuccess}); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "varde.db")
	if err := db.BackupTo(ctx, path); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if before[18] != 1 || before[19] != 1 {
		t.Fatalf("the backup's header bytes 18, 19 = %d, %d, want 1, 1", before[18], before[19])
	}

	cp, err := OpenSQLiteReadOnly(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := cp.CheckIntegrity(ctx); err != nil {
		t.Errorf("check: %v", err)
	}
	evs, err := cp.ListAudit(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.VerifyAuditChain(nil, evs); err != nil || len(evs) != 20 {
		t.Errorf("audit chain of %d events: %v", len(evs), err)
	}
	if err := cp.PutClient(ctx, &store.Client{ID: "bank"}); err == nil {
		t.Error("a write to the read-only backup succeeded")
	}
	if err := cp.Close(); err != nil {
		t.Fatal(err)
	}

	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if sha256.Sum256(after) != sha256.Sum256(before) {
		t.Error("checking the backup changed its file")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("beside the backup after its check: %v", entries)
	}

	// Not a store: no file, and an empty one.
	empty := filepath.Join(dir, "empty.db")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(dir, "none.db"), empty} {
		if db, err := OpenSQLiteReadOnly(ctx, p); !errors.Is(err, ErrNoDatabase) {
			if db != nil {
				db.Close()
			}
			t.Errorf("%s: %v, want ErrNoDatabase", p, err)
		}
	}
}

// TestBackupSynced: a backup reported done has had its file, its
// directory and each directory made for it synced, in that order, so
// that a power loss cannot take it back; a sync that fails fails the
// backup and removes the copy. (A power loss itself cannot be made
// here: the test sees the syncs, each a real fsync.)
func TestBackupSynced(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db := open(t, filepath.Join(dir, "varde.db"))
	if err := db.AppendAudit(ctx, &store.AuditEvent{Type: "t", Result: store.ResultSuccess}); err != nil {
		t.Fatal(err)
	}
	var synced []string
	record := func(f *os.File) error {
		synced = append(synced, f.Name())
		return f.Sync()
	}
	first := filepath.Join(dir, "backups", "daily", "varde-1.db")
	second := filepath.Join(dir, "backups", "daily", "varde-2.db")
	for _, tc := range []struct {
		path string
		want []string
	}{
		// backups and daily are made for it.
		{first, []string{first, filepath.Join(dir, "backups", "daily"), filepath.Join(dir, "backups"), dir}},
		{second, []string{second, filepath.Join(dir, "backups", "daily")}},
	} {
		synced = nil
		if err := db.backupTo(ctx, tc.path, record); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(synced, tc.want) {
			t.Errorf("backup to %s synced %q, want %q", tc.path, synced, tc.want)
		}
	}

	failed := filepath.Join(dir, "backups", "daily", "varde-3.db")
	errSync := errors.New("sync failed")
	err := db.backupTo(ctx, failed, func(f *os.File) error {
		if f.Name() == failed {
			return nil
		}
		return errSync
	})
	if !errors.Is(err, errSync) {
		t.Errorf("backup whose directory could not be synced: %v, want %v", err, errSync)
	}
	if _, err := os.Stat(failed); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the copy of a failed backup is still there: %v", err)
	}
}

// TestReadSQLiteAsLeftUnderARunningNode: a store whose node holds its
// lock is read where it is, through SQLite's own locking, never copied:
// its -wal file is the running node's, which a copy could take half
// written. Once the node has stopped, the store is read where it is too,
// with no -wal file to read.
func TestReadSQLiteAsLeftUnderARunningNode(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "varde.db")
	lock, err := LockNode(path)
	if err != nil {
		t.Fatal(err)
	}
	db, err := OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.AppendAudit(ctx, &store.AuditEvent{Type: "authentication", Result: store.ResultSuccess}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + "-wal"); err != nil {
		t.Fatalf("a running node's store has no -wal file: %v", err)
	}
	for _, running := range []bool{true, false} {
		dir := t.TempDir()
		src, err := ReadSQLiteAsLeft(path, dir)
		if err != nil {
			t.Fatal(err)
		}
		if src.Copied() {
			t.Errorf("running %v: the store was copied", running)
		}
		if err := src.CheckSchema(ctx); err != nil {
			t.Errorf("running %v: schema: %v", running, err)
		}
		if err := src.CheckIntegrity(ctx); err != nil {
			t.Errorf("running %v: integrity: %v", running, err)
		}
		if left, _ := os.ReadDir(dir); len(left) != 0 {
			t.Errorf("running %v: written to the caller's directory: %v", running, left)
		}
		// The node stops.
		if err := db.Close(); err != nil && running {
			t.Fatal(err)
		}
		if err := lock.Unlock(); err != nil {
			t.Fatal(err)
		}
	}
}
