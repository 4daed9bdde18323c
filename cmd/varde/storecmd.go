package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/varde-eid/varde/internal/audit"
	"github.com/varde-eid/varde/internal/store"
	"github.com/varde-eid/varde/internal/store/sqlstore"
)

const storeUsage = `usage: varde store <backup|verify> --config FILE [flags]
       varde store verify --backup FILE [--anchor SEQ:HASH]

  backup   write a consistent copy of the node's database to a new file, also
           while the node runs, and check the copy (--out FILE); a database
           of an older schema than this varde's, as before an upgrade, is
           copied as it is, never migrated
  verify   check the database's integrity and the audit log's hash chain
           (each client address still kept against the digest its event
           holds), and print an anchor to keep elsewhere (--anchor
           SEQ:HASH checks one), and up to which event the addresses are
           deleted, warning if before audit.address_retention ran out;
           --backup FILE checks a backup instead, read-only, so that it stays
           the snapshot it is; a SQLite database or backup of an older
           schema is checked on a scratch copy migrated to this varde's,
           removed after, and itself only read

A PostgreSQL store is backed up with the server's tools (pg_dump, base
backups with WAL archiving). To check a dump, restore it into a new,
empty database and verify that:
  VARDE_STORE_DSN=postgres://varde@HOST/NEWDB varde store verify --config FILE
`

// checkedStore is a store that can check itself, and copy itself if it
// is SQLite.
type checkedStore interface {
	store.Store
	CheckIntegrity(ctx context.Context) error
	IntegrityChecked() string
	BackupTo(ctx context.Context, path string) error
}

func storeCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, path, err := adminFlags("store", storeUsage, args, stderr)
	if err != nil {
		return err
	}
	var out, anchor, backup string
	switch args[0] {
	case "backup":
		fs.StringVar(&out, "out", "", "the backup file to write; it must not exist (required)")
	case "verify":
		fs.StringVar(&anchor, "anchor", "", "an anchor an earlier verify or backup printed, SEQ:HASH: check that the audit log up to it is unchanged")
		fs.StringVar(&backup, "backup", "", "a backup `FILE` that varde store backup wrote: check it, read-only, instead of the node's database")
	default:
		return unknownSubcommand("store", storeUsage, args[0], stderr, "backup", "verify")
	}
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if args[0] == "backup" && out == "" {
		return usageErrorf("store backup: --out is required")
	}
	// An anchor that is none is said so before the database is read
	// through, which may take long.
	if anchor != "" {
		if _, _, err := audit.ParseAnchor(anchor); err != nil {
			return usageErrorf("store verify: %w", err)
		}
	}
	if backup != "" {
		if *path != "" {
			return usageErrorf("store verify: give --config or --backup, not both")
		}
		return verifyBackup(ctx, backup, anchor, "varde store verify --backup "+shellWord(backup), stdout)
	}
	// The command that checks an anchor later, as verify prints it.
	again := "varde store verify"
	if *path != "" {
		again += " --config " + shellWord(*path)
	}
	if args[0] == "backup" {
		return backupStore(ctx, *path, out, again, stdout)
	}
	if done, err := verifyOlderSQLite(ctx, *path, anchor, again, stdout); done {
		return err
	}
	cfg, st, err := openNodeStore(ctx, *path)
	if err != nil {
		return err
	}
	defer st.Close()
	cs, ok := st.(checkedStore)
	if !ok {
		return fmt.Errorf("store.driver %q: use the database's own backup and check tools", cfg.Store.Driver)
	}
	fmt.Fprintf(stdout, "database: %s\n", sqlstore.DescribeDSN(cfg.Store.Driver, cfg.Store.DSN))
	return verifyStore(ctx, cs, anchor, again, cfg.Audit.AddressRetention, stdout)
}

// backupStore backs up the SQLite store of the node configured at path
// to out, and checks the backup. The store is not opened as a node or
// the other commands open it: nothing is prepared or migrated, so a
// store of an older schema, which an operator upgrading backs up with
// the new varde before starting it, is copied as it is.
func backupStore(ctx context.Context, path, out, again string, w io.Writer) error {
	cfg, err := loadAdminConfig(path)
	if err != nil {
		return err
	}
	if cfg.Store.Shared() {
		return fmt.Errorf("store.driver %q: %w: back it up with the server's own tools (pg_dump, base backups with WAL archiving); "+
			"to check a dump, restore it into a new, empty database and run VARDE_STORE_DSN=postgres://varde@HOST/NEWDB varde store verify --config FILE",
			cfg.Store.Driver, sqlstore.ErrBackupUnsupported)
	}
	start := time.Now()
	dir, err := copyDir(cfg.Store.DSN, "the store")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	have, want, err := sqlstore.BackupSQLite(ctx, cfg.Store.DSN, dir, out)
	if err != nil {
		return noNodeStore(cfg, path, err)
	}
	fi, err := os.Stat(out)
	if err != nil {
		return err
	}
	db := sqlstore.DescribeDSN(cfg.Store.Driver, cfg.Store.DSN)
	fmt.Fprintf(w, "backup: %s, %.1f MB, a snapshot of %s taken in %v\n", out, float64(fi.Size())/1e6, db,
		time.Since(start).Round(time.Millisecond))
	if err := verifyBackup(ctx, out, "", again, w); err != nil {
		return err
	}
	fmt.Fprintf(w, "To restore: stop the node, move %s and any %s-wal and %s-shm away, put the backup in its place, "+
		"owned by the node's user, start the node", db, db, db)
	if have < want {
		fmt.Fprintf(w, "; a node of this varde migrates a backup of schema %d when it starts", have)
	}
	fmt.Fprintln(w, ".")
	return nil
}

// verifyBackup checks the backup file at path as a restore would use it,
// opened on its own, but read as it is (sqlstore.ReadSQLiteAsLeft):
// opening it as a node does would turn it to WAL mode and write beside
// it, and even a read-only connection makes a -wal and a -shm file
// beside a file in WAL mode, such as a copy of a stopped node's store;
// it would no longer be the snapshot it was.
func verifyBackup(ctx context.Context, path, anchor, again string, w io.Writer) error {
	if pgDump(path) {
		return fmt.Errorf("%s is a PostgreSQL dump (pg_dump), and --backup reads SQLite backups (varde store backup) only: "+
			"restore it into a new, empty database (createdb --owner varde NEWDB, then pg_restore --no-owner -d NEWDB %s, "+
			"or psql -d NEWDB -f %s for a plain SQL dump) and check that: "+
			"VARDE_STORE_DSN=postgres://varde@HOST/NEWDB varde store verify --config FILE", path, shellWord(path), shellWord(path))
	}
	dir, err := copyDir(path, "the backup")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	src, err := sqlstore.ReadSQLiteAsLeft(path, dir)
	if err != nil {
		return fmt.Errorf("the backup does not open: %w", err)
	}
	cp, err := src.Open(ctx)
	if se := new(sqlstore.SchemaError); errors.As(err, &se) && !se.Newer {
		return withUpgradedCopy(ctx, src, dir, "the backup", func(cp checkedStore) error {
			fmt.Fprintf(w, "backup: %s, read-only, of schema %d, older than this varde's (%d): checked on a copy migrated to %d, "+
				"removed after\n", path, se.Have, se.Want, se.Want)
			return checkBackup(ctx, cp, anchor, again, w)
		})
	}
	if err != nil {
		return fmt.Errorf("the backup does not open: %w", err)
	}
	defer cp.Close()
	fmt.Fprintf(w, "backup: %s, read-only\n", path)
	return checkBackup(ctx, cp, anchor, again, w)
}

// pgDump reports whether path holds what pg_dump writes, in any of
// its formats: a directory with a toc.dat (-F d), a file beginning
// with PGDMP (-F c), a tar archive whose first member is toc.dat (-F
// t), or SQL beginning with pg_dump's header comment (-F p).
func pgDump(path string) bool {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		_, err := os.Stat(filepath.Join(path, "toc.dat"))
		return err == nil
	}
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	head := make([]byte, 512)
	n, _ := io.ReadFull(f, head)
	head = head[:n]
	tarName, _, _ := bytes.Cut(head[:min(n, 100)], []byte{0})
	return bytes.HasPrefix(head, []byte("PGDMP")) || string(tarName) == "toc.dat" ||
		bytes.Contains(head, []byte("-- PostgreSQL database dump"))
}

// verifyOlderSQLite is verify --config for a SQLite store whose schema
// is older than this build's, as an operator upgrading has after
// stopping the node and backing it up, before a node of this build
// starts and migrates it; done is false, and nothing was done, for any
// other store, which the node's own opening then checks or refuses.
// The store is read as its node left it (sqlstore.ReadSQLiteAsLeft): no
// file beside it is created, changed or removed, not even the -wal and
// -shm files SQLite makes beside a store in WAL mode for any
// connection, and the transactions a killed node left in its -wal file
// are read, on a copy of the two files. It is neither migrated nor
// written: a tool run by hand does not upgrade a store under a node of
// the version before (checkSchema). It is checked as an older backup
// is, on a migrated copy, rather than read as it is: this build's code
// reads only its own schema, and the audit chain's hash covers columns
// that migrations added (the addresses kept apart, 0031), so the chain
// of an older store is walked only once its rows are in this schema,
// which migrations make by adding only. Its pages and indexes are
// checked in the store itself, read-only, since the copy is a new file
// written afresh. On PostgreSQL an older schema is still refused: a
// node migrates it when it starts, and the server's database is not a
// file to copy.
func verifyOlderSQLite(ctx context.Context, cfgPath, anchor, again string, w io.Writer) (done bool, err error) {
	cfg, err := loadAdminConfig(cfgPath)
	if err != nil || cfg.Store.Shared() {
		return false, nil
	}
	path := cfg.Store.DSN
	// Where no directory can be written, a store of this build's schema
	// is still checked as the node opens it; an older one is refused.
	dir, err := copyDir(path, "the store")
	if err != nil {
		return false, nil
	}
	defer os.RemoveAll(dir)
	src, err := sqlstore.ReadSQLiteAsLeft(path, dir)
	if err != nil {
		return false, nil
	}
	se := new(sqlstore.SchemaError)
	if err := src.CheckSchema(ctx); !errors.As(err, &se) || se.Newer {
		return false, nil
	}
	where := "in the file"
	if src.Copied() {
		where = "in a copy of the file and its -wal file"
	}
	return true, withUpgradedCopy(ctx, src, dir, "the store", func(cp checkedStore) error {
		fmt.Fprintf(w, "database: %s, of schema %d, older than this varde's (%d), not migrated: its pages and indexes checked "+
			"%s, read-only, the audit log on a copy migrated to %d, removed after\n",
			sqlstore.DescribeDSN(cfg.Store.Driver, path), se.Have, se.Want, where, se.Want)
		return verifyStore(ctx, checkedInPlace{cp, src}, anchor, again, cfg.Audit.AddressRetention, w)
	})
}

// checkedInPlace is the migrated copy of the SQLite store src whose
// integrity check runs on src itself, read-only.
type checkedInPlace struct {
	checkedStore
	src *sqlstore.SQLiteAsLeft
}

func (s checkedInPlace) CheckIntegrity(ctx context.Context) error {
	return s.src.CheckIntegrity(ctx)
}

// withUpgradedCopy runs check on a copy of src, what it is for an
// operator, in dir, migrated to this build's schema: this build's code
// reads only its own schema.
func withUpgradedCopy(ctx context.Context, src *sqlstore.SQLiteAsLeft, dir, what string, check func(checkedStore) error) error {
	cp, _, err := sqlstore.OpenSQLiteUpgradedCopy(ctx, src, dir)
	if err != nil {
		return fmt.Errorf("%s does not open: %w", what, err)
	}
	defer cp.Close()
	return check(cp)
}

// copyDir makes a directory for the copies of the SQLite database at
// path, what it is for an operator, to check: a directory of its own
// beside the database, or, where that cannot be written, in $TMPDIR.
// The caller removes it.
func copyDir(path, what string) (string, error) {
	dir, err := os.MkdirTemp(filepath.Dir(path), ".varde-verify-")
	if err != nil {
		dir, err = os.MkdirTemp("", "varde-verify-")
	}
	if err != nil {
		return "", fmt.Errorf("a directory for a copy of %s to check: %w", what, err)
	}
	return dir, nil
}

// checkBackup is verifyStore for a backup, opened as cp.
func checkBackup(ctx context.Context, cp checkedStore, anchor, again string, w io.Writer) error {
	if err := verifyStore(ctx, cp, anchor, again, 0, w); err != nil {
		if ue := new(usageError); errors.As(err, &ue) {
			return err
		}
		return fmt.Errorf("the backup is not usable: %w", err)
	}
	return nil
}

// verifyStore checks st's integrity and audit chain, and anchor if not
// empty, and prints what it found, with again, the command that checks
// the anchor it prints later, and up to which event the addresses kept
// apart are deleted, warning if that is within keep, the address
// retention (0: not known).
func verifyStore(ctx context.Context, st checkedStore, anchor, again string, keep time.Duration, w io.Writer) error {
	if err := st.CheckIntegrity(ctx); err != nil {
		return err
	}
	fmt.Fprintln(w, "integrity:", st.IntegrityChecked())
	l := &audit.Log{Store: st}
	h, err := l.VerifyHead(ctx)
	if err != nil {
		return err
	}
	if h.Events == 0 {
		fmt.Fprintln(w, "audit log: empty")
	} else {
		events := fmt.Sprintf("%d events", h.Events)
		if h.Events == 1 {
			events = "1 event"
		}
		fmt.Fprintf(w, "audit log: %s, an unbroken hash chain from seq 1 to %d (the last at %s)\n",
			events, h.Seq, h.Time.UTC().Format(time.RFC3339))
		fmt.Fprintf(w, "anchor: %s\n  keep it elsewhere: `%s --anchor %s` shows whether the log up to it was changed\n",
			h.AnchorString(), again, h.AnchorString())
		printAddrsDeleted(w, h.AddrsDeletedTo, keep, time.Now())
	}
	if anchor == "" {
		return nil
	}
	if err := l.CheckAnchor(ctx, anchor); err != nil {
		return err
	}
	fmt.Fprintf(w, "anchor %s matches: the audit log up to it is as it was\n", anchor)
	return nil
}

// addrClockSlack is how much younger than the retention the newest
// event whose address is deleted may be before verify warns: the nodes'
// clocks and this one's may differ a little.
const addrClockSlack = time.Hour

// printAddrsDeleted says the time of the newest event whose address kept
// apart is deleted, if any is, and warns when that event is younger than
// keep at now: the chain stays whole when an address is deleted, so one
// deleted before its retention ran out, by a slip or by someone who can
// write to the database, shows only here (ADR 38). A retention
// shortened since is the other reason, which the operator knows of.
func printAddrsDeleted(w io.Writer, to time.Time, keep time.Duration, now time.Time) {
	if to.IsZero() {
		return
	}
	fmt.Fprintf(w, "addresses: deleted from the events up to %s\n", to.UTC().Format(time.RFC3339))
	if keep > 0 && to.After(now.Add(-keep+addrClockSlack)) {
		fmt.Fprintf(w, "WARNING: that event is younger than audit.address_retention (%s): an address was deleted before its time, "+
			"unless the retention was shortened since\n", retentionDays(keep))
	}
}

// shellWord is s as a shell reads it back as one word: as it is if it
// holds nothing a shell treats specially, single-quoted otherwise.
func shellWord(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:@%+=,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
