package store_test

import (
	"errors"
	"fmt"
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

// TestOldFormatHash pins the hash of an event sealed with its address in
// the hashed body, as every event was before addresses were kept apart
// (docs/adr/0038): such events must verify exactly as they were sealed.
func TestOldFormatHash(t *testing.T) {
	e := &store.AuditEvent{Seq: 7, Time: time.Date(2026, 3, 29, 1, 0, 0, 123456000, time.UTC), Type: "authentication",
		PersonID: "p1", ClientID: "bank", Provider: "passkey", Level: "high", Result: store.ResultSuccess,
		Details: map[string]string{"amr": "hwk", store.DetailAddr: "192.0.2.7"}}
	e.Seal([]byte("prev"))
	// Computed with the code that sealed every event before ADR 38.
	const want = "83d2d4d159408cbc082c626833de0a039627cdffb304b782d720f47b73040c5a"
	if got := fmt.Sprintf("%x", e.Hash); got != want {
		t.Errorf("hash of an old-format event = %s, want %s", got, want)
	}
}

// addrChain returns n sealed events whose addresses are kept apart from
// the hashed body, as a store appends them, after two events sealed
// before that (one with its address in the body, one without any).
func addrChain(t *testing.T, n int) []*store.AuditEvent {
	t.Helper()
	var (
		out  []*store.AuditEvent
		prev []byte
	)
	t0 := time.Date(2026, 3, 29, 1, 0, 0, 0, time.UTC)
	for i := range n + 2 {
		e := &store.AuditEvent{
			Seq: int64(i + 1), Time: t0.Add(time.Duration(i) * time.Second), Type: "authentication",
			PersonID: "p1", Result: store.ResultSuccess,
			Details: map[string]string{"i": string(rune('a' + i)), store.DetailAddr: fmt.Sprintf("192.0.2.%d", i)},
		}
		switch {
		case i == 1:
			delete(e.Details, store.DetailAddr)
		case i > 1:
			salt := make([]byte, store.AddrSaltSize)
			salt[0] = byte(i)
			if err := e.KeepAddrApart(salt); err != nil {
				t.Fatalf("KeepAddrApart: %v", err)
			}
		}
		e.Seal(prev)
		prev = e.Hash
		out = append(out, e)
	}
	return out
}

func TestVerifyAuditChainAddrApart(t *testing.T) {
	forget := func(e *store.AuditEvent) {
		delete(e.Details, store.DetailAddr)
		e.AddrSalt = nil
	}
	tests := []struct {
		name    string
		change  func(c []*store.AuditEvent)
		wantErr bool
	}{
		{"kept", func(c []*store.AuditEvent) {}, false},
		{"addresses forgotten", func(c []*store.AuditEvent) {
			for _, e := range c[2:] {
				forget(e)
			}
		}, false},
		{"only the address forgotten, salt left", func(c []*store.AuditEvent) { delete(c[3].Details, store.DetailAddr) }, false},
		{"changed kept address", func(c []*store.AuditEvent) { c[3].Details[store.DetailAddr] = "198.51.100.1" }, true},
		{"changed salt", func(c []*store.AuditEvent) { c[3].AddrSalt[1] ^= 1 }, true},
		// SHA-256(salt ‖ address) is the same when bytes move across the
		// boundary: 192.0.2.3 would read as 92.0.2.3, another address.
		{"address's first byte moved into the salt", func(c []*store.AuditEvent) {
			addr := c[3].Details[store.DetailAddr]
			c[3].AddrSalt = append(c[3].AddrSalt, addr[0])
			c[3].Details[store.DetailAddr] = addr[1:]
		}, true},
		{"salt's last byte moved into the address", func(c []*store.AuditEvent) {
			salt := c[3].AddrSalt
			c[3].AddrSalt = salt[:len(salt)-1]
			c[3].Details[store.DetailAddr] = string(salt[len(salt)-1:]) + c[3].Details[store.DetailAddr]
		}, true},
		{"changed digest", func(c []*store.AuditEvent) { c[3].AddrDigest[0] ^= 1 }, true},
		{"changed digest, address forgotten", func(c []*store.AuditEvent) {
			forget(c[3])
			c[3].AddrDigest[0] ^= 1
		}, true},
		{"digest removed", func(c []*store.AuditEvent) { c[3].AddrDigest = nil }, true},
		{"digest removed, address forgotten", func(c []*store.AuditEvent) {
			forget(c[3])
			c[3].AddrDigest = nil
		}, true},
		{"address put back without its salt", func(c []*store.AuditEvent) {
			forget(c[3])
			c[3].Details[store.DetailAddr] = "192.0.2.3"
		}, true},
		{"digest added to an old event", func(c []*store.AuditEvent) {
			c[0].AddrDigest = store.AddrDigest(make([]byte, store.AddrSaltSize), "192.0.2.0")
		}, true},
		{"address removed from an old event", func(c []*store.AuditEvent) { delete(c[0].Details, store.DetailAddr) }, true},
		{"address added to an old event without one", func(c []*store.AuditEvent) { c[1].Details[store.DetailAddr] = "192.0.2.1" }, true},
		{"other detail changed", func(c []*store.AuditEvent) { c[4].Details["i"] = "z" }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := addrChain(t, 4)
			tt.change(c)
			err := store.VerifyAuditChain(nil, c)
			if got := err != nil; got != tt.wantErr {
				t.Fatalf("VerifyAuditChain() = %v, want error %v", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, store.ErrBrokenChain) {
				t.Errorf("error %v does not wrap ErrBrokenChain", err)
			}
		})
	}
}

func TestKeepAddrApart(t *testing.T) {
	salt := make([]byte, store.AddrSaltSize)
	tests := []struct {
		name    string
		e       store.AuditEvent
		salt    []byte
		wantErr bool
	}{
		{"address", store.AuditEvent{Details: map[string]string{store.DetailAddr: "2001:db8::1"}}, salt, false},
		{"no address", store.AuditEvent{Details: map[string]string{"x": "y"}}, salt, true},
		{"short salt", store.AuditEvent{Details: map[string]string{store.DetailAddr: "192.0.2.1"}}, salt[:8], true},
		{"kept apart already", store.AuditEvent{Details: map[string]string{store.DetailAddr: "192.0.2.1"}, AddrDigest: []byte{1}}, salt, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.e.KeepAddrApart(tt.salt)
			if got := err != nil; got != tt.wantErr {
				t.Fatalf("KeepAddrApart() = %v, want error %v", err, tt.wantErr)
			}
			if err == nil && !tt.e.AddrIntact() {
				t.Error("the address does not match the digest KeepAddrApart made")
			}
		})
	}
}
