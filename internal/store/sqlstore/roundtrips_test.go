package sqlstore

import (
	"strings"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/pgtest"
	"github.com/varde-eid/varde/internal/store"
)

// roundTrips runs fn against db behind counter and returns what it sent
// the server.
func roundTrips(t *testing.T, counter *pgtest.Counter, fn func() error) pgtest.Counts {
	t.Helper()
	counter.Reset()
	if err := fn(); err != nil {
		t.Fatal(err)
	}
	c := counter.Counts()
	t.Logf("%d round trips, %d statements, %d transactions:\n%s", c.RoundTrips, c.Statements, c.Transactions, strings.Join(c.Sent, "\n"))
	return c
}

// TestPostgresRoundTrips pins what a write costs in round trips to a
// PostgreSQL server (pgtest.Counter counts them at the wire): a write
// transaction's BEGIN carries the audit chain's lock (ADR 13), an event
// and its client address kept apart (ADR 38) are one statement, and a
// code stored for a request it uses up is one statement in autocommit.
// What is stored is checked as well: the chain verifies and the address
// reads back with its event.
func TestPostgresRoundTrips(t *testing.T) {
	ctx := t.Context()
	counter := pgtest.NewCounter(t, pgtest.NewDatabase(t))
	db := openPostgres(t, counter.DSN)
	now := time.Now()

	event := func() *store.AuditEvent {
		return &store.AuditEvent{Time: now, Type: "authentication", PersonID: "p1", Result: store.ResultSuccess,
			Details: map[string]string{store.DetailAddr: "192.0.2.7"}}
	}
	// The first write prepares what it needs on the connection.
	if err := db.AppendAudit(ctx, event()); err != nil {
		t.Fatal(err)
	}
	// BEGIN with the lock, the chain's head, the event with its
	// address, COMMIT.
	c := roundTrips(t, counter, func() error { return db.AppendAudit(ctx, event()) })
	if c.RoundTrips != 4 || c.Transactions != 1 {
		t.Errorf("an event with an address: %d round trips in %d transactions, want 4 in 1", c.RoundTrips, c.Transactions)
	}
	for _, line := range c.Sent {
		if strings.HasPrefix(strings.ToLower(line), "begin") != strings.Contains(line, "pg_advisory_xact_lock") {
			t.Errorf("the chain's lock is not taken with the BEGIN: %q", line)
		}
	}
	events, err := db.ListAudit(ctx, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 2 || events[1].Details[store.DetailAddr] != "192.0.2.7" || !events[1].AddrIntact() {
		t.Fatalf("events read back: %+v", events)
	}
	if err := store.VerifyAuditChain(nil, events); err != nil {
		t.Fatal(err)
	}

	for i, id := range []string{"r1", "r2"} {
		if err := db.CreateAuthRequest(ctx, benchAuthRequest(id, now)); err != nil {
			t.Fatal(err)
		}
		code := benchAuthCode(benchHash("code", int64(i)), now)
		c := roundTrips(t, counter, func() error { return db.CreateAuthCodeForRequest(ctx, code, id) })
		if i > 0 && (c.RoundTrips != 1 || c.Transactions != 0) {
			t.Errorf("a code for a request: %d round trips in %d transactions, want 1 in autocommit", c.RoundTrips, c.Transactions)
		}
	}
}
