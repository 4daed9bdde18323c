package sqlstore

import (
	"context"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/store"
)

func TestAuditHoldsDoNotStallTheSweep(t *testing.T) {
	onBothStores(t, testAuditHoldsDoNotStallTheSweep)
}

// testAuditHoldsDoNotStallTheSweep: more than a chunk of held addresses,
// all expired and first by seq, do not keep DeleteAuditAddresses from
// the expired addresses no hold covers behind them (ADR 45); once the
// hold is released, the next round deletes the held ones too.
func testAuditHoldsDoNotStallTheSweep(t *testing.T, db *DB) {
	ctx := t.Context()
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	cut := now.Add(-180 * 24 * time.Hour)
	held := cut.Add(-10 * 24 * time.Hour) // a flood, in the hold's window
	const nHeld, nFree = 2*sweepChunk + 5, 30
	for seq := int64(1); seq <= nHeld+nFree; seq++ {
		at := held
		if seq > nHeld {
			at = cut.Add(-time.Hour) // after the window, expired all the same
		}
		keepAddr(t, db, seq, at)
	}
	h := &store.AuditHold{ID: "hold-flood", From: held.Add(-time.Hour), To: held.Add(time.Hour), Until: now.Add(90 * 24 * time.Hour),
		Reason: "sak 26-1234", By: "ola", CreatedAt: now.Add(-time.Hour)}
	if err := db.AddAuditHold(ctx, h, nil); err != nil {
		t.Fatal(err)
	}
	left := func(t *testing.T) int {
		t.Helper()
		var n int
		if err := db.r.QueryRowContext(ctx, "SELECT count(*) FROM audit_addresses").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	got, err := db.DeleteAuditAddresses(ctx, cut, now)
	if want := (store.AddrSweep{Deleted: nFree, Held: nHeld}); err != nil || got != want {
		t.Fatalf("DeleteAuditAddresses with the hold = %+v, %v; want %+v", got, err, want)
	}
	if n := left(t); n != nHeld {
		t.Errorf("%d addresses left, want the %d held", n, nHeld)
	}
	if _, err := db.ReleaseAuditHold(ctx, h.ID, "order lifted", "ola", now, nil); err != nil {
		t.Fatal(err)
	}
	got, err = db.DeleteAuditAddresses(ctx, cut, now.Add(time.Minute))
	if want := (store.AddrSweep{Deleted: nHeld}); err != nil || got != want {
		t.Fatalf("DeleteAuditAddresses after the release = %+v, %v; want %+v", got, err, want)
	}
	if n := left(t); n != 0 {
		t.Errorf("%d addresses left, want none", n)
	}
}

// BenchmarkSweepPastHeldAddresses: one housekeeping round over 100,000
// expired addresses that a window's hold keeps, as a flood under a
// preservation order leaves them: what each node reads every minute
// while the hold lasts (ADR 45). Nothing is deleted, so every round
// reads the same.
func BenchmarkSweepPastHeldAddresses(b *testing.B) {
	db := openTemp(b)
	ctx := context.Background()
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	held := now.Add(-190 * 24 * time.Hour)
	const n = 100_000
	err := db.update(ctx, func(ctx context.Context, tx querier) error {
		for seq := int64(1); seq <= n; seq++ {
			e := &store.AuditEvent{Seq: seq, Time: held.Add(time.Duration(seq) * time.Millisecond), PersonID: "p1",
				Details: map[string]string{store.DetailAddr: "192.0.2.1"}}
			_, err := tx.ExecContext(ctx, db.d.rebind("INSERT INTO audit_log (seq, time, type, person_id, client_id, provider, "+
				"level, result, reason, details, prev_hash, hash) VALUES (?, ?, 't', ?, '', '', '', 'success', '', '{}', NULL, ?)"),
				seq, micros(e.Time), e.PersonID, []byte("h"))
			if err != nil {
				return err
			}
			_, err = tx.ExecContext(ctx, db.d.rebind("INSERT INTO audit_addresses (event_seq, event_time, addr, salt) VALUES (?, ?, ?, ?)"),
				seq, micros(e.Time), "192.0.2.1", []byte("0123456789abcdef"))
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	for _, h := range []*store.AuditHold{
		{ID: "hold-flood", From: held.Add(-time.Hour), To: held.Add(time.Hour), Until: now.Add(90 * 24 * time.Hour), CreatedAt: now},
		{ID: "hold-person", PersonID: "p2", To: now, Until: now.Add(90 * 24 * time.Hour), CreatedAt: now},
	} {
		if err := db.AddAuditHold(ctx, h, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for range b.N {
		sweep, err := db.DeleteAuditAddresses(ctx, now.Add(-180*24*time.Hour), now)
		if err != nil || sweep != (store.AddrSweep{Held: n}) {
			b.Fatalf("sweep %+v, %v", sweep, err)
		}
	}
}

// keepAddr stores an address, as of an event with seq at at, apart
// from the log, as AppendAudit does.
func keepAddr(t *testing.T, db *DB, seq int64, at time.Time) {
	t.Helper()
	_, err := db.w.ExecContext(t.Context(), db.d.rebind("INSERT INTO audit_addresses (event_seq, event_time, addr, salt) VALUES (?, ?, ?, ?)"),
		seq, micros(at), "192.0.2.1", []byte("0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
}

func TestAuditHoldAddedMidRoundKeeps(t *testing.T) {
	onBothStores(t, testAuditHoldAddedMidRoundKeeps)
}

// testAuditHoldAddedMidRoundKeeps: a hold added after a round read a
// chunk, and before it deleted the chunk's expired addresses, keeps
// them: the delete reads the holds again rather than trust the read.
// And a held address last in one chunk, with expired ones no hold
// covers after it, does not end the round there (ADR 45).
func testAuditHoldAddedMidRoundKeeps(t *testing.T, db *DB) {
	ctx := t.Context()
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	cut := now.Add(-180 * 24 * time.Hour)
	kept, heldAt, free := cut.Add(time.Hour), cut.Add(-20*24*time.Hour), cut.Add(-10*24*time.Hour)
	const n = sweepChunk + 10
	for seq := int64(1); seq <= n; seq++ {
		at := kept // within the retention
		switch {
		case seq == sweepChunk:
			at = heldAt // the chunk's last, held
		case seq > sweepChunk:
			at = free // expired, no hold
		}
		keepAddr(t, db, seq, at)
	}
	hold := func(id string, from time.Time) {
		t.Helper()
		h := &store.AuditHold{ID: id, From: from.Add(-time.Hour), To: from.Add(time.Hour), Until: now.Add(90 * 24 * time.Hour),
			Reason: "sak 26-1", By: "ola", CreatedAt: now.Add(-time.Hour)}
		if err := db.AddAuditHold(ctx, h, nil); err != nil {
			t.Fatal(err)
		}
	}
	hold("hold-edge", heldAt)

	// A round reads the second chunk, then a hold of it is added.
	var end, expired, held int64
	if err := db.st.addrChunk.QueryRowContext(ctx, micros(cut), micros(cut), micros(now), int64(sweepChunk), sweepChunk).
		Scan(&end, &expired, &held); err != nil {
		t.Fatal(err)
	}
	if end != n || expired != 10 || held != 0 {
		t.Fatalf("the second chunk: ends at %d, %d expired, %d held; want %d, 10, 0", end, expired, held, n)
	}
	hold("hold-late", free)
	deleted, err := db.execN(ctx, db.st.deleteAddrChunk, int64(sweepChunk), end, micros(cut), micros(now))
	if err != nil || deleted != 0 {
		t.Errorf("the chunk's delete after a hold of it was added: %d deleted, %v; want none", deleted, err)
	}

	// Released, the round passes the held address ending the first
	// chunk and deletes the expired ones after it.
	if _, err := db.ReleaseAuditHold(ctx, "hold-late", "order lifted", "ola", now, nil); err != nil {
		t.Fatal(err)
	}
	got, err := db.DeleteAuditAddresses(ctx, cut, now.Add(time.Minute))
	if want := (store.AddrSweep{Deleted: 10, Held: 1}); err != nil || got != want {
		t.Errorf("DeleteAuditAddresses = %+v, %v; want %+v", got, err, want)
	}
}
