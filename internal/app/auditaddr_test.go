package app_test

import (
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/app"
	"github.com/varde-eid/varde/internal/keys"
	"github.com/varde-eid/varde/internal/pgtest"
	"github.com/varde-eid/varde/internal/store"
)

// TestHousekeepingDeletesOldAddresses: a housekeeping round deletes the
// addresses of audit events older than audit.address_retention (180
// days by default), keeps the younger ones and every event, and counts
// what it deleted in varde_audit_addresses_deleted_total (ADR 38).
func TestHousekeepingDeletesOldAddresses(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	a := clockedNode(t, &now, nil)
	ctx := context.Background()
	day := 24 * time.Hour
	for _, at := range []time.Time{now.Add(-181 * day), now.Add(-179 * day)} {
		e := &store.AuditEvent{Time: at, Type: "authentication", PersonID: "p1", Result: store.ResultSuccess,
			Details: map[string]string{store.DetailAddr: "192.0.2.1"}}
		if err := a.Store.AppendAudit(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	a.Housekeep(ctx)
	events, err := a.Store.ListAudit(ctx, 0, 10)
	if err != nil || len(events) != 2 {
		t.Fatalf("%d events, %v", len(events), err)
	}
	if got := []string{events[0].Details[store.DetailAddr], events[1].Details[store.DetailAddr]}; got[0] != "" || got[1] != "192.0.2.1" {
		t.Errorf("addresses after housekeeping %q, want the one of 181 days ago gone, the one of 179 kept", got)
	}
	if err := store.VerifyAuditChain(nil, events); err != nil {
		t.Errorf("VerifyAuditChain: %v", err)
	}
	rec := httptest.NewRecorder()
	a.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	if !strings.Contains(string(body), "\nvarde_audit_addresses_deleted_total 1\n") {
		t.Errorf("metrics do not count the one address deleted:\n%s", grepLines(string(body), "varde_audit"))
	}
}

// TestHousekeepingKeepsHeldAddresses: a housekeeping round leaves the
// addresses past their retention that a live hold covers, counts them
// in varde_audit_addresses_held, and deletes them at the first round
// after the hold runs out (ADR 45).
func TestHousekeepingKeepsHeldAddresses(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	a := clockedNode(t, &now, nil)
	ctx := context.Background()
	holdOneOfTwo(t, a.Store, now)
	addrs := func() []string {
		events, err := a.Store.ListAudit(ctx, 0, 10)
		if err != nil || len(events) != 2 {
			t.Fatalf("%d events, %v", len(events), err)
		}
		return []string{events[0].Details[store.DetailAddr], events[1].Details[store.DetailAddr]}
	}
	metric := func(name string) string {
		rec := httptest.NewRecorder()
		a.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		body, _ := io.ReadAll(rec.Body)
		return grepLines(string(body), name)
	}
	a.Housekeep(ctx)
	if got := addrs(); got[0] != "192.0.2.1" || got[1] != "" {
		t.Errorf("addresses under the hold %q, want p1's kept, p2's gone", got)
	}
	if got := metric("varde_audit_addresses_held "); !strings.Contains(got, "varde_audit_addresses_held 1") {
		t.Errorf("varde_audit_addresses_held: %q, want 1", got)
	}
	now = now.Add(time.Hour)
	a.Housekeep(ctx)
	if got := addrs(); got[0] != "" {
		t.Errorf("addresses after the hold ran out %q, want both gone", got)
	}
	if got := metric("varde_audit_addresses_held "); !strings.Contains(got, "varde_audit_addresses_held 0") {
		t.Errorf("varde_audit_addresses_held: %q, want 0", got)
	}
}

// TestEveryNodeHonoursAHold: over one PostgreSQL database, a hold added
// through one node keeps the address the other node's housekeeping
// would delete, and once it is released there, the first node's round
// deletes it (ADR 45): holds are in the store, not in a node's memory.
func TestEveryNodeHonoursAHold(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)
	now := time.Now().UTC().Truncate(time.Microsecond)
	salt := make([]byte, 32)
	nodes := make([]*app.App, 2)
	for i, name := range []string{"a", "b"} {
		key, _ := keys.Generate(rand.Reader)
		n, err := postgresNode(t, dsn, name, key, salt, &now)
		if err != nil {
			t.Fatal(err)
		}
		nodes[i] = n
	}
	a, b := nodes[0], nodes[1]
	h := holdOneOfTwo(t, a.Store, now)
	kept := func() []string {
		t.Helper()
		events, err := a.Store.ListAudit(ctx, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range events {
			if e.Details[store.DetailAddr] != "" {
				out = append(out, e.PersonID)
			}
		}
		return out
	}
	b.Housekeep(ctx)
	if got := kept(); len(got) != 1 || got[0] != "p1" {
		t.Errorf("addresses kept after node b's round: of %v, want p1's alone", got)
	}
	if _, err := b.Store.ReleaseAuditHold(ctx, h.ID, "order lifted", "kari", now, nil); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Minute)
	a.Housekeep(ctx)
	if got := kept(); len(got) != 0 {
		t.Errorf("addresses kept after the release and node a's round: of %v, want none", got)
	}
}

// holdOneOfTwo appends a login of p1 and one of p2, each 181 days
// before now with an address, and holds p1's addresses for an hour.
func holdOneOfTwo(t *testing.T, st store.Store, now time.Time) *store.AuditHold {
	t.Helper()
	ctx := context.Background()
	for _, p := range []string{"p1", "p2"} {
		e := &store.AuditEvent{Time: now.Add(-181 * 24 * time.Hour), Type: "authentication", PersonID: p, Result: store.ResultSuccess,
			Details: map[string]string{store.DetailAddr: "192.0.2.1"}}
		if err := st.AppendAudit(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	h := &store.AuditHold{ID: "hold-1", PersonID: "p1", To: now, Until: now.Add(time.Hour), Reason: "sak 26-1", By: "ola", CreatedAt: now}
	if err := st.AddAuditHold(ctx, h, nil); err != nil {
		t.Fatal(err)
	}
	return h
}
