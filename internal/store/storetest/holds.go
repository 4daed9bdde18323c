package storetest

import (
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/store"
)

// testAuditHolds: a hold keeps the addresses of the events it covers, a
// person's or a window's, past their retention while it is live; one
// released or run out keeps nothing; adding, extending and releasing
// each append their event in the same write (docs/adr/0045).
func testAuditHolds(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := base(t)
	day := 24 * time.Hour
	cut := now.Add(-180 * day)
	addr := func(at time.Duration, person string) *store.AuditEvent {
		return &store.AuditEvent{Time: now.Add(at), Type: "authentication", PersonID: person, Result: store.ResultSuccess,
			Details: map[string]string{store.DetailAddr: "192.0.2.1"}}
	}
	events := []*store.AuditEvent{
		addr(-200*day, "p1"), // 1: p1's hold
		addr(-200*day, "p2"), // 2: p2's hold was released
		addr(-195*day, ""),   // 3: in the window's hold
		addr(-190*day, "p2"), // 4: p2's other hold ran out
		addr(-185*day, "p3"), // 5: p3's hold is of a window it is not in
		addr(-10*day, "p1"),  // 6: within the retention
	}
	for _, e := range events {
		wantErr(t, "AppendAudit", s.AppendAudit(ctx, e), nil)
	}
	holds := []*store.AuditHold{
		{ID: "hold-p1", PersonID: "p1", To: now.Add(-day), Until: now.Add(90 * day), Reason: "sak 26-1", By: "ola", CreatedAt: now.Add(-day)},
		{ID: "hold-window", From: now.Add(-196 * day), To: now.Add(-194 * day), Until: now.Add(time.Second), Reason: "sak 26-2", By: "kari",
			CreatedAt: now.Add(-2 * day)},
		{ID: "hold-p2", PersonID: "p2", To: now.Add(-3 * day), Until: now.Add(90 * day), Reason: "sak 26-3", By: "ola", CreatedAt: now.Add(-3 * day)},
		{ID: "hold-p2-old", PersonID: "p2", To: now.Add(-100 * day), Until: now, Reason: "sak 25-9", By: "ola", CreatedAt: now.Add(-100 * day)},
		{ID: "hold-p3", PersonID: "p3", From: now.Add(-184 * day), To: now.Add(-day), Until: now.Add(day), Reason: "sak 26-4", By: "ola",
			CreatedAt: now.Add(-4 * day)},
	}
	for _, h := range holds {
		wantErr(t, "AddAuditHold "+h.ID, s.AddAuditHold(ctx, h, &store.AuditEvent{Time: h.CreatedAt, Type: "audit_hold_added",
			Result: store.ResultSuccess, Details: map[string]string{"hold": h.ID}}), nil)
	}
	wantErr(t, "AddAuditHold of a taken ID", s.AddAuditHold(ctx, &store.AuditHold{ID: "hold-p1", Until: now.Add(day), CreatedAt: now}, nil),
		store.ErrConflict)

	t.Run("counted", func(t *testing.T) {
		// What a hold would cover of the addresses stored now, live or
		// not: the CLI refuses a hold that covers none.
		for _, tc := range []struct {
			h    *store.AuditHold
			want int64
		}{
			{holds[0], 2}, // p1's two events, one past the retention
			{holds[1], 1}, // the window's one event
			{holds[4], 0}, // p3's one event is before the window
			{&store.AuditHold{PersonID: "p4", To: now}, 0},
			{&store.AuditHold{From: now.Add(-201 * day), To: now.Add(-199 * day)}, 2},
			{&store.AuditHold{From: now.Add(-250 * day), To: now.Add(-220 * day)}, 0},
		} {
			n, err := s.CountAuditHoldAddresses(ctx, tc.h)
			wantErr(t, "CountAuditHoldAddresses", err, nil)
			if n != tc.want {
				t.Errorf("a hold of %q from %v up to %v covers %d addresses, want %d", tc.h.PersonID, tc.h.From, tc.h.To, n, tc.want)
			}
		}
	})

	got, err := s.GetAuditHold(ctx, "hold-p3")
	wantErr(t, "GetAuditHold", err, nil)
	same(t, "hold-p3", holds[4], got)
	_, err = s.GetAuditHold(ctx, "hold-none")
	wantErr(t, "GetAuditHold of no hold", err, store.ErrNotFound)

	released, err := s.ReleaseAuditHold(ctx, "hold-p2", "order lifted", "kari", now.Add(-time.Minute),
		&store.AuditEvent{Time: now.Add(-time.Minute), Type: "audit_hold_released", Result: store.ResultSuccess})
	wantErr(t, "ReleaseAuditHold", err, nil)
	want := *holds[2]
	want.ReleasedAt, want.ReleaseReason, want.ReleasedBy = now.Add(-time.Minute), "order lifted", "kari"
	same(t, "the released hold", &want, released)
	_, err = s.ReleaseAuditHold(ctx, "hold-p2", "again", "kari", now, nil)
	wantErr(t, "ReleaseAuditHold of a released hold", err, store.ErrConflict)
	_, err = s.ReleaseAuditHold(ctx, "hold-p2-old", "late", "kari", now, nil)
	wantErr(t, "ReleaseAuditHold of a hold run out", err, store.ErrConflict)
	_, err = s.ReleaseAuditHold(ctx, "hold-none", "no", "kari", now, nil)
	wantErr(t, "ReleaseAuditHold of no hold", err, store.ErrNotFound)

	t.Run("swept", func(t *testing.T) {
		sweep, err := s.DeleteAuditAddresses(ctx, cut, now)
		wantErr(t, "DeleteAuditAddresses", err, nil)
		same(t, "the sweep", store.AddrSweep{Deleted: 3, Held: 2}, sweep)
		all, err := s.ListAudit(ctx, 0, 100)
		wantErr(t, "ListAudit", err, nil)
		if err := store.VerifyAuditChain(nil, all); err != nil {
			t.Errorf("VerifyAuditChain: %v", err)
		}
		for i, e := range all[:len(events)] {
			_, kept := e.Details[store.DetailAddr]
			if wantKept := i == 0 || i == 2 || i == 5; kept != wantKept {
				t.Errorf("event %d (%s, %s): address kept %v, want %v", e.Seq, e.PersonID, e.Time.Format(time.DateOnly), kept, wantKept)
			}
		}
	})

	t.Run("extended", func(t *testing.T) {
		_, err := s.ExtendAuditHold(ctx, "hold-window", now.Add(time.Second), now, nil)
		wantErr(t, "ExtendAuditHold to the same time", err, store.ErrConflict)
		_, err = s.ExtendAuditHold(ctx, "hold-p2", now.Add(200*day), now, nil)
		wantErr(t, "ExtendAuditHold of a released hold", err, store.ErrConflict)
		_, err = s.ExtendAuditHold(ctx, "hold-none", now.Add(200*day), now, nil)
		wantErr(t, "ExtendAuditHold of no hold", err, store.ErrNotFound)
		h, err := s.ExtendAuditHold(ctx, "hold-window", now.Add(90*day), now,
			&store.AuditEvent{Time: now, Type: "audit_hold_extended", Result: store.ResultSuccess})
		wantErr(t, "ExtendAuditHold", err, nil)
		want := *holds[1]
		want.Until = now.Add(90 * day)
		same(t, "the extended hold", &want, h)
		// A second later the window's hold would have run out; extended, it holds.
		sweep, err := s.DeleteAuditAddresses(ctx, cut, now.Add(2*time.Second))
		wantErr(t, "DeleteAuditAddresses", err, nil)
		same(t, "the sweep after the extension", store.AddrSweep{Held: 2}, sweep)
	})

	t.Run("listed", func(t *testing.T) {
		list, err := s.ListAuditHolds(ctx, now, now.Add(-time.Hour))
		wantErr(t, "ListAuditHolds", err, nil)
		wantList := []string{"hold-p1", "hold-window", "hold-p2", "hold-p3", "hold-p2-old"} // newest first
		if ids := holdIDs(list); !equalStrings(ids, wantList) {
			t.Errorf("holds live or ended in the last hour: %v, want %v", ids, wantList)
		}
		list, err = s.ListAuditHolds(ctx, now, now.Add(time.Millisecond))
		wantErr(t, "ListAuditHolds", err, nil)
		wantList = []string{"hold-p1", "hold-window", "hold-p3"}
		if ids := holdIDs(list); !equalStrings(ids, wantList) {
			t.Errorf("holds live: %v, want %v", ids, wantList)
		}
	})

	t.Run("audited", func(t *testing.T) {
		all, err := s.ListAuditRange(ctx, store.AuditQuery{Types: []string{"audit_hold_added", "audit_hold_extended", "audit_hold_released"}})
		wantErr(t, "ListAuditRange", err, nil)
		if len(all) != len(holds)+2 {
			t.Errorf("%d hold events, want %d: one for each hold added, one release, one extension", len(all), len(holds)+2)
		}
	})

	t.Run("run out", func(t *testing.T) {
		later := now.Add(91 * day)
		sweep, err := s.DeleteAuditAddresses(ctx, later.Add(-180*day), later)
		wantErr(t, "DeleteAuditAddresses", err, nil)
		same(t, "the sweep once every hold ran out", store.AddrSweep{Deleted: 2}, sweep)
	})
}

func holdIDs(hs []*store.AuditHold) []string {
	ids := make([]string, len(hs))
	for i, h := range hs {
		ids[i] = h.ID
	}
	return ids
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// sharedAuditHolds: a hold one node adds is honoured by the other
// node's sweep, and its release too: the holds are in the store, not in
// a node's memory (docs/adr/0045).
func sharedAuditHolds(t *testing.T, a, b store.Store) {
	ctx := t.Context()
	now := time.Now().UTC().Truncate(time.Microsecond)
	old := now.Add(-200 * 24 * time.Hour)
	cut := now.Add(-180 * 24 * time.Hour)
	for _, p := range []string{"p1", "p2"} {
		e := &store.AuditEvent{Time: old, Type: "authentication", PersonID: p, Result: store.ResultSuccess,
			Details: map[string]string{store.DetailAddr: "192.0.2.1"}}
		wantErr(t, "AppendAudit", b.AppendAudit(ctx, e), nil)
	}
	// b has read the log (and any holds) before a adds its hold.
	sweep, err := b.DeleteAuditAddresses(ctx, old.Add(-time.Hour), now)
	wantErr(t, "DeleteAuditAddresses before the cut", err, nil)
	same(t, "a sweep before the cut", store.AddrSweep{}, sweep)
	h := &store.AuditHold{ID: "hold-p1", PersonID: "p1", To: now, Until: now.Add(time.Hour), Reason: "sak 26-1", By: "ola", CreatedAt: now}
	wantErr(t, "AddAuditHold on a", a.AddAuditHold(ctx, h, nil), nil)
	sweep, err = b.DeleteAuditAddresses(ctx, cut, now)
	wantErr(t, "DeleteAuditAddresses on b", err, nil)
	same(t, "b's sweep under a's hold", store.AddrSweep{Deleted: 1, Held: 1}, sweep)
	_, err = b.ReleaseAuditHold(ctx, h.ID, "order lifted", "kari", now.Add(time.Second), nil)
	wantErr(t, "ReleaseAuditHold on b", err, nil)
	sweep, err = a.DeleteAuditAddresses(ctx, cut, now.Add(time.Second))
	wantErr(t, "DeleteAuditAddresses on a", err, nil)
	same(t, "a's sweep after b's release", store.AddrSweep{Deleted: 1}, sweep)
}
