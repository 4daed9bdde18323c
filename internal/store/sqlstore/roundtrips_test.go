package sqlstore

import (
	"database/sql"
	"fmt"
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
// and its client address kept apart (ADR 38) are one statement, appended
// after the head the writer kept (ADR 52), a code stored for a request
// it uses up is one statement in autocommit, and a grant with its
// tokens one statement.
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
	// BEGIN with the lock, the event with its address after the head
	// kept from the last commit (ADR 52), COMMIT.
	c := roundTrips(t, counter, func() error { return db.AppendAudit(ctx, event()) })
	if c.RoundTrips != 3 || c.Transactions != 1 {
		t.Errorf("an event with an address: %d round trips in %d transactions, want 3 in 1", c.RoundTrips, c.Transactions)
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
		// BEGIN with the lock, the code spent, the grant with its
		// tokens, the event, COMMIT.
		g := &store.Grant{ID: "g-" + id, ClientID: "bank", PersonID: "p1", Scope: []string{"openid"}, CreatedAt: now}
		c = roundTrips(t, counter, func() error {
			_, err := db.CreateGrantTokensForCode(ctx, code.Hash, now, g, event(),
				&store.Token{Hash: benchHash("at", int64(i)), Kind: store.TokenAccess, GrantID: g.ID, ClientID: "bank", CreatedAt: now, ExpiresAt: now.Add(time.Hour)},
				&store.Token{Hash: benchHash("rt", int64(i)), Kind: store.TokenRefresh, GrantID: g.ID, ClientID: "bank", CreatedAt: now, ExpiresAt: now.Add(time.Hour)})
			return err
		})
		if i > 0 && (c.RoundTrips != 5 || c.Transactions != 1) {
			t.Errorf("a grant with two tokens for a code: %d round trips in %d transactions, want 5 in 1", c.RoundTrips, c.Transactions)
		}
		for _, h := range [][]byte{benchHash("at", int64(i)), benchHash("rt", int64(i))} {
			if tok, err := db.GetToken(ctx, h); err != nil || tok.GrantID != g.ID {
				t.Errorf("a token of grant %s: %+v, %v", g.ID, tok, err)
			}
		}
	}
}

// TestPostgresAppendAfterKeptHead: two nodes (handles on one database)
// append in turn. Each keeps the chain's head of its last commit (ADR
// 52): an append after its own event is BEGIN with the lock, the event,
// COMMIT; one after the other node's finds its head stale in the
// event's own statement, which reads the head instead, and appends
// after it: a round trip more, as reading the head first would cost.
// The chain stays one, and verifies.
func TestPostgresAppendAfterKeptHead(t *testing.T) {
	ctx := t.Context()
	counter := pgtest.NewCounter(t, pgtest.NewDatabase(t))
	a, b := openPostgres(t, counter.DSN), openPostgres(t, counter.DSN)
	event := func(addr string) *store.AuditEvent {
		e := &store.AuditEvent{Time: time.Now(), Type: "token", Result: store.ResultSuccess}
		if addr != "" {
			e.Details = map[string]string{store.DetailAddr: addr}
		}
		return e
	}
	// Each node's first write prepares what it needs on its connection.
	for _, db := range []*DB{a, b, a} {
		if err := db.AppendAudit(ctx, event("")); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name string
		db   *DB
		addr string
		want int
	}{
		{"after its own", a, "", 3},
		{"after its own, with an address", a, "192.0.2.8", 3},
		{"after the other's", b, "192.0.2.9", 4},
		{"after its own again", b, "", 3},
		{"after the other's, without an address", a, "", 4},
	} {
		c := roundTrips(t, counter, func() error { return tc.db.AppendAudit(ctx, event(tc.addr)) })
		if c.RoundTrips != tc.want {
			t.Errorf("%s: %d round trips, want %d", tc.name, c.RoundTrips, tc.want)
		}
	}
	events, err := a.ListAudit(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 8 {
		t.Fatalf("%d events, want 8", len(events))
	}
	if err := store.VerifyAuditChain(nil, events); err != nil {
		t.Fatal(err)
	}
	for _, e := range events {
		if !e.AddrIntact() {
			t.Errorf("event %d: its address does not match its digest", e.Seq)
		}
	}
}

// TestPostgresAppendAfterLostHead: the database no longer holds the
// event a node kept as the chain's head, as a standby promoted before it
// received the last commits does not (here the events are taken out
// with the append-only trigger switched off), or holds no event at all.
// The node's next event follows the head the database has, not the one
// the node kept: the chain has no gap, and verifies (ADR 52).
func TestPostgresAppendAfterLostHead(t *testing.T) {
	ctx := t.Context()
	dsn := pgtest.NewDatabase(t)
	db := openPostgres(t, dsn)
	for range 3 {
		if err := db.AppendAudit(ctx, &store.AuditEvent{Time: time.Now(), Type: "token", Result: store.ResultSuccess}); err != nil {
			t.Fatal(err)
		}
	}
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	// The events from seq on lost, then one appended: it is the one at
	// seq, and the chain verifies.
	for _, seq := range []int64{3, 1} {
		for _, q := range []string{
			"ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_change",
			fmt.Sprintf("DELETE FROM audit_log WHERE seq >= %d", seq),
			"ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_change",
		} {
			if _, err := admin.ExecContext(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		if err := db.AppendAudit(ctx, &store.AuditEvent{Time: time.Now(), Type: "token", Result: store.ResultSuccess,
			Details: map[string]string{store.DetailAddr: "192.0.2.10"}}); err != nil {
			t.Fatal(err)
		}
		events, err := db.ListAudit(ctx, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(events)) != seq || events[seq-1].Seq != seq || events[seq-1].Details[store.DetailAddr] != "192.0.2.10" {
			t.Fatalf("events after those from seq %d were lost: %d, want %d, the last with its address", seq, len(events), seq)
		}
		if err := store.VerifyAuditChain(nil, events); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPostgresChainLockRefusedAtBegin: a BEGIN whose chain lock the
// server refuses (here after lock_timeout, while another session holds
// the lock) fails its writes, and leaves no connection in the aborted
// transaction: once the lock is free, the next write succeeds.
func TestPostgresChainLockRefusedAtBegin(t *testing.T) {
	ctx := t.Context()
	dsn := pgtest.NewDatabase(t)
	db := openPostgres(t, dsn+"&lock_timeout=200")
	holder, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	conn, err := holder.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1, $2)", postgresLockKey, postgresAuditLockID); err != nil {
		t.Fatal(err)
	}
	event := &store.AuditEvent{Time: time.Now(), Type: "token", Result: store.ResultSuccess}
	if err := db.AppendAudit(ctx, event); err == nil {
		t.Fatal("an event appended while another session held the chain's lock")
	}
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_unlock($1, $2)", postgresLockKey, postgresAuditLockID); err != nil {
		t.Fatal(err)
	}
	event = &store.AuditEvent{Time: time.Now(), Type: "token", Result: store.ResultSuccess}
	if err := db.AppendAudit(ctx, event); err != nil {
		t.Fatalf("an event once the lock is free: %v", err)
	}
	if err := db.CreateAuthRequest(ctx, benchAuthRequest("r", time.Now())); err != nil {
		t.Fatalf("a write once the lock is free: %v", err)
	}
}

// TestPostgresIdleWebhookClaim: every node polls the webhook outbox
// each second. A poll with nothing due is one read, outside any
// transaction, and takes no lock, the audit chain's advisory lock least
// of all, which every write transaction of every node waits for; a
// poll with work claims it in a write transaction as before, and a
// delivery another node leased is not due, so polling past it is idle
// again.
func TestPostgresIdleWebhookClaim(t *testing.T) {
	ctx := t.Context()
	counter := pgtest.NewCounter(t, pgtest.NewDatabase(t))
	a, b := openPostgres(t, counter.DSN), openPostgres(t, counter.DSN)
	now := time.Now()
	claim := func(db *DB, node string) []*store.WebhookDelivery {
		t.Helper()
		ds, err := db.ClaimWebhooks(ctx, node, now, now.Add(time.Minute), 10, 2)
		if err != nil {
			t.Fatal(err)
		}
		return ds
	}
	idle := func(what string, db *DB, node string) {
		t.Helper()
		var ds []*store.WebhookDelivery
		c := roundTrips(t, counter, func() error { ds = claim(db, node); return nil })
		if len(ds) != 0 {
			t.Errorf("%s: claimed %d deliveries, want none", what, len(ds))
		}
		if c.Transactions != 0 || c.RoundTrips != 1 {
			t.Errorf("%s: %d round trips in %d transactions, want one read outside any", what, c.RoundTrips, c.Transactions)
		}
		for _, line := range c.Sent {
			if strings.Contains(line, "pg_advisory") || strings.Contains(strings.ToUpper(line), "FOR UPDATE") {
				t.Errorf("%s: took a lock: %q", what, line)
			}
		}
	}
	// The first poll prepares its read on the connection.
	claim(a, "node-a")
	idle("an empty outbox", a, "node-a")

	later := &store.WebhookDelivery{ID: "wh-later", ClientID: "c", URL: "https://c.example/hook", Event: "component_state",
		ContentType: "application/secevent+jwt", CreatedAt: now, NextAttemptAt: now.Add(time.Hour)}
	if err := a.EnqueueWebhooks(ctx, []*store.WebhookDelivery{later}); err != nil {
		t.Fatal(err)
	}
	idle("a delivery due later", a, "node-a")

	due := *later
	due.ID, due.NextAttemptAt = "wh-due", now.Add(-time.Second)
	if err := a.EnqueueWebhooks(ctx, []*store.WebhookDelivery{&due}); err != nil {
		t.Fatal(err)
	}
	var ds []*store.WebhookDelivery
	c := roundTrips(t, counter, func() error { ds = claim(b, "node-b"); return nil })
	if len(ds) != 1 || ds[0].ID != "wh-due" || c.Transactions != 1 {
		t.Errorf("a claim with a delivery due: %d claimed in %d transactions, want wh-due in 1", len(ds), c.Transactions)
	}
	idle("a delivery the other node leased", a, "node-a")
}
