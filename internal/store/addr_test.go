package store_test

import (
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/store"
)

// TestAddrPastRetention: the one rule of what a person is given of
// their events' addresses, on their activity and in their export (ADR
// 54): an address kept apart is left out once its event is older than
// the retention (only a hold keeps it then, ADR 45); an address sealed
// in its event is given at any age, since it is kept as long as the
// log; an unknown retention leaves out nothing.
func TestAddrPastRetention(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	keep := 180 * 24 * time.Hour
	event := func(age time.Duration, apart bool) *store.AuditEvent {
		e := &store.AuditEvent{Time: now.Add(-age), Details: map[string]string{store.DetailAddr: "192.0.2.7"}}
		if apart {
			if err := e.KeepAddrApart(make([]byte, store.AddrSaltSize)); err != nil {
				t.Fatal(err)
			}
		}
		return e
	}
	for _, tc := range []struct {
		name       string
		e          *store.AuditEvent
		keep       time.Duration
		past, seal bool
	}{
		{"kept apart, within the retention", event(keep-time.Second, true), keep, false, false},
		{"kept apart, at the retention", event(keep, true), keep, false, false},
		{"kept apart, past the retention", event(keep+time.Second, true), keep, true, false},
		{"kept apart, retention not known", event(10*keep, true), 0, false, false},
		{"sealed in the event, within the retention", event(time.Hour, false), keep, false, true},
		{"sealed in the event, past the retention", event(3*keep, false), keep, false, true},
		{"no address", &store.AuditEvent{Time: now.Add(-3 * keep)}, keep, false, false},
	} {
		if got := tc.e.AddrPastRetention(store.AddrCut(now, tc.keep)); got != tc.past {
			t.Errorf("%s: AddrPastRetention = %v, want %v", tc.name, got, tc.past)
		}
		if got := tc.e.AddrSealed(); got != tc.seal {
			t.Errorf("%s: AddrSealed = %v, want %v", tc.name, got, tc.seal)
		}
	}
}
