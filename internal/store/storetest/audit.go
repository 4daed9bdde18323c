package storetest

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"maps"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/store"
)

func testAuditLog(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := base(t)
	z := loadZones(t)

	// The subtests share one log and run in order: each appends to it.
	var appended []*store.AuditEvent

	t.Run("empty", func(t *testing.T) {
		got, err := s.ListAudit(ctx, 0, 10)
		wantErr(t, "ListAudit", err, nil)
		if len(got) != 0 {
			t.Errorf("ListAudit on an empty log = %d events", len(got))
		}
		_, err = s.LastAudit(ctx)
		wantErr(t, "LastAudit on an empty log", err, store.ErrNotFound)
	})

	t.Run("append and list", func(t *testing.T) {
		events := []*store.AuditEvent{
			{Time: now, Type: "authentication", PersonID: "p1", ClientID: "bank", Provider: "passkey",
				Level: "high", Result: store.ResultSuccess, Details: map[string]string{"amr": "hwk", "ip": "192.0.2.1"}},
			{Time: now.Add(time.Second).In(z.la), Type: "authentication", ClientID: "bank",
				Result: store.ResultFailure, Reason: "passkey_unknown", Details: map[string]string{}},
			{Time: now.Add(2 * time.Second).In(z.tokyo), Type: "token", PersonID: "p1", ClientID: "bank",
				Result: store.ResultSuccess},
			{Type: "zero time"},
		}
		for i, e := range events {
			want := *e
			wantErr(t, "AppendAudit", s.AppendAudit(ctx, e), nil)
			if e.Seq != int64(i+1) {
				t.Errorf("event %d: Seq = %d, want %d", i, e.Seq, i+1)
			}
			want.Seq, want.PrevHash, want.Hash = e.Seq, e.PrevHash, e.Hash
			if !reflect.DeepEqual(&want, e) {
				t.Errorf("AppendAudit changed more than Seq, PrevHash and Hash:\n%+v\nwant\n%+v", e, &want)
			}
			appended = append(appended, &want)
		}
		got, err := s.ListAudit(ctx, 0, 100)
		wantErr(t, "ListAudit", err, nil)
		same(t, "listed events", appended, got)
		if err := store.VerifyAuditChain(nil, got); err != nil {
			t.Errorf("VerifyAuditChain: %v", err)
		}
	})

	t.Run("last", func(t *testing.T) {
		got, err := s.LastAudit(ctx)
		wantErr(t, "LastAudit", err, nil)
		same(t, "the newest event", appended[len(appended)-1], got)
	})

	t.Run("a person's events", func(t *testing.T) {
		// Events 1 and 3 name p1; 2 and 4 name nobody.
		got, err := s.ListPersonAudit(ctx, "p1", 10)
		wantErr(t, "ListPersonAudit", err, nil)
		same(t, "p1's events, newest first", []*store.AuditEvent{appended[2], appended[0]}, got)
		got, err = s.ListPersonAudit(ctx, "p1", 1)
		wantErr(t, "ListPersonAudit limit 1", err, nil)
		same(t, "p1's newest event", []*store.AuditEvent{appended[2]}, got)
		for _, who := range []string{"", "p2"} {
			got, err = s.ListPersonAudit(ctx, who, 10)
			wantErr(t, "ListPersonAudit "+who, err, nil)
			if len(got) != 0 {
				t.Errorf("ListPersonAudit(%q) = %d events, want none", who, len(got))
			}
		}
	})

	t.Run("a person's events page by page", func(t *testing.T) {
		// Events 1 and 3 name p1; 2 and 4 name nobody.
		got, err := s.ListPersonAuditAfter(ctx, "p1", 0, 10)
		wantErr(t, "ListPersonAuditAfter", err, nil)
		same(t, "p1's events, oldest first", []*store.AuditEvent{appended[0], appended[2]}, got)
		got, err = s.ListPersonAuditAfter(ctx, "p1", 0, 1)
		wantErr(t, "ListPersonAuditAfter limit 1", err, nil)
		same(t, "p1's first page", []*store.AuditEvent{appended[0]}, got)
		got, err = s.ListPersonAuditAfter(ctx, "p1", got[0].Seq, 1)
		wantErr(t, "ListPersonAuditAfter the next page", err, nil)
		same(t, "p1's second page", []*store.AuditEvent{appended[2]}, got)
		got, err = s.ListPersonAuditAfter(ctx, "p1", got[0].Seq, 1)
		wantErr(t, "ListPersonAuditAfter past the last", err, nil)
		if len(got) != 0 {
			t.Errorf("ListPersonAuditAfter past p1's last event = %d events, want none", len(got))
		}
		for _, who := range []string{"", "p2"} {
			got, err = s.ListPersonAuditAfter(ctx, who, 0, 10)
			wantErr(t, "ListPersonAuditAfter "+who, err, nil)
			if len(got) != 0 {
				t.Errorf("ListPersonAuditAfter(%q) = %d events, want none", who, len(got))
			}
		}
		if got, err = s.ListPersonAuditAfter(ctx, "p1", 0, 0); err != nil || len(got) != 0 {
			t.Errorf("ListPersonAuditAfter limit 0 = %d events, %v; want none", len(got), err)
		}
	})

	t.Run("a person's older events page by page", func(t *testing.T) {
		// Events 1 and 3 name p1; 2 and 4 name nobody.
		got, err := s.ListPersonAuditBefore(ctx, "p1", math.MaxInt64, 10)
		wantErr(t, "ListPersonAuditBefore", err, nil)
		same(t, "p1's events, newest first", []*store.AuditEvent{appended[2], appended[0]}, got)
		got, err = s.ListPersonAuditBefore(ctx, "p1", math.MaxInt64, 1)
		wantErr(t, "ListPersonAuditBefore limit 1", err, nil)
		same(t, "p1's newest page", []*store.AuditEvent{appended[2]}, got)
		got, err = s.ListPersonAuditBefore(ctx, "p1", got[0].Seq, 1)
		wantErr(t, "ListPersonAuditBefore the next page", err, nil)
		same(t, "p1's older page", []*store.AuditEvent{appended[0]}, got)
		got, err = s.ListPersonAuditBefore(ctx, "p1", got[0].Seq, 1)
		wantErr(t, "ListPersonAuditBefore past the first", err, nil)
		if len(got) != 0 {
			t.Errorf("ListPersonAuditBefore past p1's first event = %d events, want none", len(got))
		}
		for _, who := range []string{"", "p2"} {
			got, err = s.ListPersonAuditBefore(ctx, who, math.MaxInt64, 10)
			wantErr(t, "ListPersonAuditBefore "+who, err, nil)
			if len(got) != 0 {
				t.Errorf("ListPersonAuditBefore(%q) = %d events, want none", who, len(got))
			}
		}
		for _, before := range []int64{0, -1, math.MinInt64} {
			if got, err = s.ListPersonAuditBefore(ctx, "p1", before, 10); err != nil || len(got) != 0 {
				t.Errorf("ListPersonAuditBefore(before %d) = %d events, %v; want none", before, len(got), err)
			}
		}
		if got, err = s.ListPersonAuditBefore(ctx, "p1", math.MaxInt64, 0); err != nil || len(got) != 0 {
			t.Errorf("ListPersonAuditBefore limit 0 = %d events, %v; want none", len(got), err)
		}
	})

	t.Run("pages", func(t *testing.T) {
		got, err := s.ListAudit(ctx, 1, 2)
		wantErr(t, "ListAudit", err, nil)
		same(t, "page after 1, limit 2", appended[1:3], got)
		if err := store.VerifyAuditChain(appended[0].Hash, got); err != nil {
			t.Errorf("VerifyAuditChain of a page: %v", err)
		}
		got, err = s.ListAudit(ctx, int64(len(appended)), 10)
		wantErr(t, "ListAudit", err, nil)
		if len(got) != 0 {
			t.Errorf("ListAudit after the last event = %d events", len(got))
		}
	})

	t.Run("concurrent appends", func(t *testing.T) {
		const writers, each = 8, 25
		start := int64(len(appended))
		errs := race(writers, func(w int) error {
			for i := range each {
				e := &store.AuditEvent{
					Time: now.Add(time.Duration(w*each+i) * time.Microsecond), Type: "consent",
					ClientID: id("rp", w), Result: store.ResultSuccess,
					Details: map[string]string{"writer": fmt.Sprint(w), "i": fmt.Sprint(i)},
				}
				if err := s.AppendAudit(ctx, e); err != nil {
					return err
				}
			}
			return nil
		})
		for w, err := range errs {
			wantErr(t, fmt.Sprintf("writer %d", w), err, nil)
		}

		// Read the whole log back in pages, verifying each against the last.
		var (
			all  []*store.AuditEvent
			prev []byte
			seq  int64
		)
		for {
			page, err := s.ListAudit(ctx, seq, 64)
			wantErr(t, "ListAudit", err, nil)
			if len(page) == 0 {
				break
			}
			if err := store.VerifyAuditChain(prev, page); err != nil {
				t.Fatalf("VerifyAuditChain after %d: %v", seq, err)
			}
			all = append(all, page...)
			prev, seq = page[len(page)-1].Hash, page[len(page)-1].Seq
		}
		if want := start + writers*each; int64(len(all)) != want {
			t.Fatalf("log has %d events, want %d", len(all), want)
		}
		for i, e := range all {
			if e.Seq != int64(i+1) {
				t.Fatalf("event %d has Seq %d", i, e.Seq)
			}
		}
		perWriter := map[string]int{}
		for _, e := range all[start:] {
			perWriter[e.ClientID]++
		}
		for w := range writers {
			if n := perWriter[id("rp", w)]; n != each {
				t.Errorf("writer %d: %d events stored, want %d", w, n, each)
			}
		}
	})
}

// testAuditAddresses: an event's address is kept apart from what its
// hash covers, read back in its Details while kept, and deleted after its
// retention with the event left whole (docs/adr/0038).
func testAuditAddresses(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := base(t)
	day := 24 * time.Hour
	events := []*store.AuditEvent{
		{Time: now.Add(-200 * day), Type: "authentication", PersonID: "p1", ClientID: "bank", Result: store.ResultSuccess,
			Details: map[string]string{"amr": "hwk", store.DetailAddr: "192.0.2.10"}},
		{Time: now.Add(-200 * day), Type: "authentication", PersonID: "p1", Result: store.ResultFailure, Reason: "cancelled"},
		{Time: now.Add(-10 * day), Type: "consent", PersonID: "p1", ClientID: "bank", Result: store.ResultSuccess,
			Details: map[string]string{store.DetailAddr: "2001:db8::7"}},
		{Time: now, Type: "token", ClientID: "bank", Result: store.ResultSuccess,
			Details: map[string]string{store.DetailAddr: "198.51.100.3", "grant_type": "refresh_token"}},
	}
	var appended []*store.AuditEvent
	for _, e := range events {
		given := maps.Clone(e.Details)
		wantErr(t, "AppendAudit", s.AppendAudit(ctx, e), nil)
		if !maps.Equal(e.Details, given) {
			t.Errorf("event %d: AppendAudit changed the details to %v, want %v", e.Seq, e.Details, given)
		}
		kept := given[store.DetailAddr] != ""
		if kept != (len(e.AddrSalt) == store.AddrSaltSize && len(e.AddrDigest) == sha256.Size) {
			t.Errorf("event %d: salt %x, digest %x; want them if and only if it has an address", e.Seq, e.AddrSalt, e.AddrDigest)
		}
		c := *e
		appended = append(appended, &c)
	}
	if bytes.Equal(appended[0].AddrSalt, appended[2].AddrSalt) {
		t.Error("two events have the same address salt")
	}

	all := func(t *testing.T) []*store.AuditEvent {
		t.Helper()
		got, err := s.ListAudit(ctx, 0, 100)
		wantErr(t, "ListAudit", err, nil)
		if err := store.VerifyAuditChain(nil, got); err != nil {
			t.Errorf("VerifyAuditChain: %v", err)
		}
		return got
	}

	t.Run("kept and read back", func(t *testing.T) {
		same(t, "listed events", appended, all(t))
		last, err := s.LastAudit(ctx)
		wantErr(t, "LastAudit", err, nil)
		same(t, "the newest event", appended[3], last)
		mine, err := s.ListPersonAudit(ctx, "p1", 10)
		wantErr(t, "ListPersonAudit", err, nil)
		same(t, "p1's events", []*store.AuditEvent{appended[2], appended[1], appended[0]}, mine)
		mine, err = s.ListPersonAuditAfter(ctx, "p1", 0, 10)
		wantErr(t, "ListPersonAuditAfter", err, nil)
		same(t, "p1's events after 0", []*store.AuditEvent{appended[0], appended[1], appended[2]}, mine)
		mine, err = s.ListPersonAuditBefore(ctx, "p1", 4, 10)
		wantErr(t, "ListPersonAuditBefore", err, nil)
		same(t, "p1's events before 4", []*store.AuditEvent{appended[2], appended[1], appended[0]}, mine)
		ranged, err := s.ListAuditRange(ctx, store.AuditQuery{Since: now.Add(-11 * day), ClientID: "bank"})
		wantErr(t, "ListAuditRange", err, nil)
		same(t, "the bank's events of the last 11 days", []*store.AuditEvent{appended[2], appended[3]}, ranged)
	})

	t.Run("tampering found", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			change func(e *store.AuditEvent)
		}{
			{"address changed", func(e *store.AuditEvent) { e.Details[store.DetailAddr] = "203.0.113.9" }},
			{"digest changed", func(e *store.AuditEvent) { e.AddrDigest[0] ^= 1 }},
			{"digest removed", func(e *store.AuditEvent) { e.AddrDigest = nil }},
		} {
			got := all(t)
			tc.change(got[2])
			if err := store.VerifyAuditChain(nil, got); !errors.Is(err, store.ErrBrokenChain) {
				t.Errorf("%s: VerifyAuditChain = %v, want ErrBrokenChain", tc.name, err)
			}
		}
	})

	t.Run("deleted after retention", func(t *testing.T) {
		n, err := s.DeleteAuditAddresses(ctx, now.Add(-180*day), now)
		wantErr(t, "DeleteAuditAddresses", err, nil)
		if n != (store.AddrSweep{Deleted: 1}) {
			t.Errorf("DeleteAuditAddresses 180 days back = %+v, want 1 deleted", n)
		}
		forgotten := *appended[0]
		forgotten.Details = map[string]string{"amr": "hwk"}
		forgotten.AddrSalt = nil
		same(t, "events after the oldest address went", []*store.AuditEvent{&forgotten, appended[1], appended[2], appended[3]}, all(t))

		n, err = s.DeleteAuditAddresses(ctx, now.Add(-180*day), now)
		wantErr(t, "DeleteAuditAddresses again", err, nil)
		if n != (store.AddrSweep{}) {
			t.Errorf("DeleteAuditAddresses again = %+v, want nothing", n)
		}
		// An event of exactly the cut-off keeps its address.
		n, err = s.DeleteAuditAddresses(ctx, now, now)
		wantErr(t, "DeleteAuditAddresses up to now", err, nil)
		if n != (store.AddrSweep{Deleted: 1}) {
			t.Errorf("DeleteAuditAddresses up to now = %+v, want 1 deleted", n)
		}
		got := all(t)
		for i, e := range got {
			if _, ok := e.Details[store.DetailAddr]; ok != (i == 3) || (i == 3) != (e.AddrSalt != nil) {
				t.Errorf("event %d: details %v, salt %x; want only event 4's address kept", e.Seq, e.Details, e.AddrSalt)
			}
			if !bytes.Equal(e.AddrDigest, appended[i].AddrDigest) || !bytes.Equal(e.Hash, appended[i].Hash) {
				t.Errorf("event %d: digest or hash changed", e.Seq)
			}
		}
		if got[3].Details["grant_type"] != "refresh_token" {
			t.Errorf("event 4: details %v, want the other details kept", got[3].Details)
		}
	})

	t.Run("appended after deleting", func(t *testing.T) {
		e := &store.AuditEvent{Time: now.Add(time.Second), Type: "logout", PersonID: "p1", Result: store.ResultSuccess,
			Details: map[string]string{store.DetailAddr: "192.0.2.10"}}
		wantErr(t, "AppendAudit", s.AppendAudit(ctx, e), nil)
		got := all(t)
		if len(got) != 5 || got[4].Details[store.DetailAddr] != "192.0.2.10" {
			t.Errorf("%d events, the last with details %v", len(got), got[len(got)-1].Details)
		}
	})
}
