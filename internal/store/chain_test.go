package store_test

import (
	"errors"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/store"
)

// chain returns n sealed events as an append-only log would store them.
func chain(n int) []*store.AuditEvent {
	var (
		out  []*store.AuditEvent
		prev []byte
	)
	t0 := time.Date(2026, 3, 29, 1, 0, 0, 0, time.UTC)
	for i := range n {
		e := &store.AuditEvent{
			Seq:      int64(i + 1),
			Time:     t0.Add(time.Duration(i) * time.Second),
			Type:     "authentication",
			PersonID: "p1",
			Result:   store.ResultSuccess,
			Details:  map[string]string{"i": string(rune('a' + i))},
		}
		e.Seal(prev)
		prev = e.Hash
		out = append(out, e)
	}
	return out
}

func TestVerifyAuditChain(t *testing.T) {
	tests := []struct {
		name    string
		prev    func(c []*store.AuditEvent) []byte
		page    func(c []*store.AuditEvent) []*store.AuditEvent
		wantErr bool
	}{
		{"whole log", nil, func(c []*store.AuditEvent) []*store.AuditEvent { return c }, false},
		{"empty", nil, func(c []*store.AuditEvent) []*store.AuditEvent { return nil }, false},
		{"page with prev",
			func(c []*store.AuditEvent) []byte { return c[1].Hash },
			func(c []*store.AuditEvent) []*store.AuditEvent { return c[2:] }, false},
		{"page without prev",
			nil,
			func(c []*store.AuditEvent) []*store.AuditEvent { return c[2:] }, true},
		{"page with wrong prev",
			func(c []*store.AuditEvent) []byte { return c[0].Hash },
			func(c []*store.AuditEvent) []*store.AuditEvent { return c[2:] }, true},
		{"removed event", nil, func(c []*store.AuditEvent) []*store.AuditEvent {
			return append([]*store.AuditEvent{c[0], c[1]}, c[3:]...)
		}, true},
		{"reordered", nil, func(c []*store.AuditEvent) []*store.AuditEvent {
			c[1], c[2] = c[2], c[1]
			return c
		}, true},
		{"changed result", nil, func(c []*store.AuditEvent) []*store.AuditEvent {
			c[2].Result = store.ResultFailure
			return c
		}, true},
		{"changed detail", nil, func(c []*store.AuditEvent) []*store.AuditEvent {
			c[3].Details["i"] = "z"
			return c
		}, true},
		{"changed time", nil, func(c []*store.AuditEvent) []*store.AuditEvent {
			c[0].Time = c[0].Time.Add(time.Microsecond)
			return c
		}, true},
		{"resealed in place", nil, func(c []*store.AuditEvent) []*store.AuditEvent {
			c[2].Reason = "forged"
			c[2].Seal(c[2].PrevHash) // the next event's PrevHash no longer matches
			return c
		}, true},
		{"renumbered", nil, func(c []*store.AuditEvent) []*store.AuditEvent {
			c[4].Seq = 7
			return c
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := chain(6)
			var prev []byte
			if tt.prev != nil {
				prev = tt.prev(c)
			}
			err := store.VerifyAuditChain(prev, tt.page(c))
			if got := err != nil; got != tt.wantErr {
				t.Fatalf("VerifyAuditChain() = %v, want error %v", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, store.ErrBrokenChain) {
				t.Errorf("error %v does not wrap ErrBrokenChain", err)
			}
		})
	}
}
