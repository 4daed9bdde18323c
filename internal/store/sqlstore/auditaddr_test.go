package sqlstore

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/pgtest"
	"github.com/varde-eid/varde/internal/store"
)

func TestAuditAddressesBeforeAndAfterSQLite(t *testing.T) {
	testAuditAddressesBeforeAndAfter(t, openTemp(t))
}

func TestAuditAddressesBeforeAndAfterPostgres(t *testing.T) {
	testAuditAddressesBeforeAndAfter(t, openPostgres(t, pgtest.NewDatabase(t)))
}

// testAuditAddressesBeforeAndAfter: an event sealed with its address in
// the hashed body, as every event was before migration 0031 and as a
// node of the version before still appends them while the nodes are
// upgraded one by one, reads back and verifies as sealed, keeps its
// address when the addresses kept apart are deleted, and the chain goes
// on through it. An address kept apart and changed in its table, its
// trigger refusing that dropped first, breaks the chain.
func testAuditAddressesBeforeAndAfter(t *testing.T, db *DB) {
	ctx := t.Context()
	t0 := time.Date(2026, 1, 5, 8, 0, 0, 0, time.UTC)
	old := &store.AuditEvent{Seq: 1, Time: t0, Type: "authentication", PersonID: "p1", Result: store.ResultSuccess,
		Details: map[string]string{store.DetailAddr: "192.0.2.1", "amr": "hwk"}}
	old.Seal(nil)
	// The insert of the version before, which knows no addr_digest.
	_, err := db.w.ExecContext(ctx, db.d.rebind("INSERT INTO audit_log (seq, time, type, person_id, client_id, provider, "+
		"level, result, reason, details, prev_hash, hash) VALUES (?, ?, ?, ?, '', '', '', ?, '', ?, NULL, ?)"),
		old.Seq, micros(old.Time), old.Type, old.PersonID, old.Result, jsonText(old.Details), old.Hash)
	if err != nil {
		t.Fatal(err)
	}
	e := &store.AuditEvent{Time: t0.Add(time.Hour), Type: "consent", PersonID: "p1", Result: store.ResultSuccess,
		Details: map[string]string{store.DetailAddr: "2001:db8::2"}}
	if err := db.AppendAudit(ctx, e); err != nil {
		t.Fatal(err)
	}
	verify := func(t *testing.T) []*store.AuditEvent {
		t.Helper()
		got, err := db.ListAudit(ctx, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		if err := store.VerifyAuditChain(nil, got); err != nil {
			t.Fatalf("VerifyAuditChain: %v", err)
		}
		if len(got) != 2 {
			t.Fatalf("%d events, want 2", len(got))
		}
		return got
	}
	got := verify(t)
	if got[0].Details[store.DetailAddr] != "192.0.2.1" || len(got[0].AddrDigest) != 0 {
		t.Errorf("old event: details %v, digest %x; want its address in its details, no digest", got[0].Details, got[0].AddrDigest)
	}
	if got[1].Details[store.DetailAddr] != "2001:db8::2" || len(got[1].AddrDigest) == 0 {
		t.Errorf("new event: details %v, digest %x; want its address kept apart", got[1].Details, got[1].AddrDigest)
	}
	var stored string
	if err := db.r.QueryRowContext(ctx, db.d.rebind("SELECT details FROM audit_log WHERE seq = ?"), 2).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored != "{}" {
		t.Errorf("new event's details column %s, want the address left out", stored)
	}

	// The digest is SHA-256 over salt and address: the first byte of
	// the address moved to the end of the salt gives the same digest,
	// and another address (001:db8::2 here, 92.0.2.3 of 192.0.2.3).
	var (
		addr string
		salt []byte
	)
	if err := db.r.QueryRowContext(ctx, "SELECT addr, salt FROM audit_addresses").Scan(&addr, &salt); err != nil {
		t.Fatal(err)
	}
	allowAddressChanges(t, db)
	_, err = db.w.ExecContext(ctx, db.d.rebind("UPDATE audit_addresses SET addr = ?, salt = ?"), addr[1:], append(salt, addr[0]))
	if err != nil {
		t.Fatal(err)
	}
	broken := func(what string) {
		t.Helper()
		tampered, err := db.ListAudit(ctx, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		if err := store.VerifyAuditChain(nil, tampered); !errors.Is(err, store.ErrBrokenChain) {
			t.Errorf("VerifyAuditChain with %s = %v, want ErrBrokenChain", what, err)
		}
	}
	broken("a byte of the address moved into its salt")

	if _, err := db.w.ExecContext(ctx, "UPDATE audit_addresses SET addr = '203.0.113.9'"); err != nil {
		t.Fatal(err)
	}
	broken("an address changed")

	n, err := db.DeleteAuditAddresses(context.Background(), t0.Add(24*time.Hour), t0.Add(24*time.Hour))
	if err != nil || n.Deleted != 1 {
		t.Fatalf("DeleteAuditAddresses = %+v, %v; want 1 deleted", n, err)
	}
	got = verify(t)
	if got[0].Details[store.DetailAddr] != "192.0.2.1" {
		t.Errorf("old event: details %v, want its address, which its hash covers, kept", got[0].Details)
	}
	if _, ok := got[1].Details[store.DetailAddr]; ok {
		t.Errorf("new event: details %v, want its address gone", got[1].Details)
	}
}

// TestAuditAddressDeletedFromTheFile: an address deleted after its
// retention, and its salt, are gone from the SQLite file, not only from
// the table: SQLite leaves a deleted row's bytes in the page it was on
// unless secure_delete is on, where anyone holding a copy of the file
// reads them, and with the salt the digest the event keeps gives the
// address back.
func TestAuditAddressDeletedFromTheFile(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "varde.db")
	db, err := OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	const addr = "2001:db8:5ec:de1e::42"
	t0 := time.Date(2026, 1, 5, 8, 0, 0, 0, time.UTC)
	var salts [][]byte
	for i := range 3 {
		e := &store.AuditEvent{Time: t0.Add(time.Duration(i) * time.Minute), Type: "authentication", PersonID: "p1",
			Result: store.ResultSuccess, Details: map[string]string{store.DetailAddr: addr}}
		if err := db.AppendAudit(ctx, e); err != nil {
			t.Fatal(err)
		}
		salts = append(salts, e.AddrSalt)
	}
	if n, err := db.DeleteAuditAddresses(ctx, t0.Add(time.Hour), t0.Add(time.Hour)); err != nil || n.Deleted != 3 {
		t.Fatalf("DeleteAuditAddresses = %+v, %v; want 3 deleted", n, err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{path, path + "-wal"} {
		raw, err := os.ReadFile(name)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(raw, []byte(addr)) {
			t.Errorf("%s still holds the deleted address", filepath.Base(name))
		}
		for i, salt := range salts {
			if bytes.Contains(raw, salt) {
				t.Errorf("%s still holds the deleted salt of event %d", filepath.Base(name), i+1)
			}
		}
	}
}

// onBothStores runs test on a new SQLite database and a new PostgreSQL
// one.
func onBothStores(t *testing.T, test func(*testing.T, *DB)) {
	t.Run("sqlite", func(t *testing.T) { test(t, openTemp(t)) })
	t.Run("postgres", func(t *testing.T) { test(t, openPostgres(t, pgtest.NewDatabase(t))) })
}

func TestAuditAddressesIndexedByKeyAlone(t *testing.T) {
	onBothStores(t, testAuditAddressesIndexedByKeyAlone)
}

// testAuditAddressesIndexedByKeyAlone: audit_addresses has no index but
// its primary key, the event's seq. Nearly every event of a login keeps
// an address, and an index more is a B-tree more that every one of them
// writes, inside the single writer; the expired addresses are found in
// the order of seq instead (DeleteAuditAddresses).
func testAuditAddressesIndexedByKeyAlone(t *testing.T, db *DB) {
	query := "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'audit_addresses' AND sql IS NOT NULL"
	if db.d.name == "postgres" {
		query = "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid " +
			"WHERE i.indrelid = 'audit_addresses'::regclass AND NOT i.indisprimary"
	}
	rows, err := db.r.QueryContext(t.Context(), query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		t.Errorf("audit_addresses has index %s; want its primary key alone", name)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestAuditAddressesExpireInSeqOrder(t *testing.T) {
	onBothStores(t, testAuditAddressesExpireInSeqOrder)
}

// testAuditAddressesExpireInSeqOrder: DeleteAuditAddresses walks the
// addresses in the order of their events' seq, more than one chunk of
// them, and deletes every one past its retention and none other, also
// where the events' times are not in the order of their seq (clocks of
// several nodes, events stamped before they are written): an address
// of a later seq but an earlier time goes, one of an earlier seq but a
// later time stays.
func testAuditAddressesExpireInSeqOrder(t *testing.T, db *DB) {
	ctx := t.Context()
	cut := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	expired, young := cut.Add(-time.Microsecond), cut
	const n = 2*sweepChunk + 10
	kept := map[int64]bool{2: true, sweepChunk + 1: true, n: true}
	for seq := int64(1); seq <= n; seq++ {
		at := expired
		if kept[seq] {
			at = young
		}
		_, err := db.w.ExecContext(ctx, db.d.rebind("INSERT INTO audit_addresses (event_seq, event_time, addr, salt) VALUES (?, ?, ?, ?)"),
			seq, micros(at), "192.0.2.1", []byte("0123456789abcdef"))
		if err != nil {
			t.Fatal(err)
		}
	}
	got, err := db.DeleteAuditAddresses(ctx, cut, cut)
	if err != nil || got.Deleted != n-int64(len(kept)) {
		t.Fatalf("DeleteAuditAddresses = %+v, %v; want %d deleted", got, err, n-len(kept))
	}
	rows, err := db.r.QueryContext(ctx, "SELECT event_seq FROM audit_addresses ORDER BY event_seq")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	left := map[int64]bool{}
	for rows.Next() {
		var seq int64
		if err := rows.Scan(&seq); err != nil {
			t.Fatal(err)
		}
		left[seq] = true
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(left, kept) {
		t.Errorf("addresses left: %v; want those of events %v", slices.Sorted(maps.Keys(left)), slices.Sorted(maps.Keys(kept)))
	}
	if got, err := db.DeleteAuditAddresses(ctx, cut, cut); err != nil || got.Deleted != 0 {
		t.Errorf("DeleteAuditAddresses again = %+v, %v; want 0 deleted", got, err)
	}
}

func TestAuditAddressesRefuseChange(t *testing.T) {
	onBothStores(t, testAuditAddressesRefuseChange)
}

// testAuditAddressesRefuseChange: the database itself refuses to change
// an address kept apart, its salt, or the event or time it belongs to,
// which the application never does (a changed address would only be
// found later, by its digest, at verification); deleting it, as
// housekeeping does after its retention, stays allowed.
func testAuditAddressesRefuseChange(t *testing.T, db *DB) {
	ctx := t.Context()
	t0 := time.Date(2026, 1, 5, 8, 0, 0, 0, time.UTC)
	e := &store.AuditEvent{Time: t0, Type: "authentication", PersonID: "p1", Result: store.ResultSuccess,
		Details: map[string]string{store.DetailAddr: "192.0.2.7"}}
	if err := db.AppendAudit(ctx, e); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"UPDATE audit_addresses SET addr = '203.0.113.9'",
		"UPDATE audit_addresses SET salt = salt",
		"UPDATE audit_addresses SET event_seq = event_seq + 1",
		"UPDATE audit_addresses SET event_time = event_time + 86400000000",
	} {
		_, err := db.w.ExecContext(ctx, q)
		if err == nil || !strings.Contains(err.Error(), "audit_addresses cannot be changed") {
			t.Errorf("%s: %v, want refused: audit_addresses cannot be changed", q, err)
		}
	}
	got, err := db.ListAudit(ctx, 0, 10)
	if err != nil || len(got) != 1 || got[0].Details[store.DetailAddr] != "192.0.2.7" {
		t.Fatalf("after refused changes: %v, %v; want the event with its address", got, err)
	}
	if err := store.VerifyAuditChain(nil, got); err != nil {
		t.Errorf("VerifyAuditChain after refused changes: %v", err)
	}
	n, err := db.DeleteAuditAddresses(ctx, t0.Add(time.Hour), t0.Add(time.Hour))
	if err != nil || n.Deleted != 1 {
		t.Fatalf("DeleteAuditAddresses = %+v, %v; want 1 deleted", n, err)
	}
	var left int
	if err := db.r.QueryRowContext(ctx, "SELECT count(*) FROM audit_addresses").Scan(&left); err != nil || left != 0 {
		t.Errorf("%d addresses left, %v; want none", left, err)
	}
}

// allowAddressChanges drops the trigger of migration 0032 that refuses
// changes to audit_addresses, as anyone owning the database could, so a
// test can tamper with an address kept apart.
func allowAddressChanges(t *testing.T, db *DB) {
	t.Helper()
	q := "DROP TRIGGER audit_addresses_no_update"
	if db.d.name == "postgres" {
		q += " ON audit_addresses"
	}
	if _, err := db.w.ExecContext(t.Context(), q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}
