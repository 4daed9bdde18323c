package pgtest_test

import (
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/varde-eid/varde/internal/pgtest"
)

// TestCounter: what a client sends through a Counter is counted as the
// server sees it: a prepared statement is one round trip, a pipeline of
// three statements (pgx's batch) is one round trip of three, a simple
// query of three statements one round trip, a BEGIN one transaction; a
// ping counts nothing, nor does a statement Ignore names, and a
// transaction that did nothing else is left out whole.
func TestCounter(t *testing.T) {
	ctx := bounded(t)
	counter := pgtest.NewCounter(t, pgtest.NewDatabase(t))
	conn := connect(t, counter.DSN)
	counter.Ignore("INTO background")
	for _, q := range []string{"CREATE TABLE t (n INT)", "CREATE TABLE background (n INT)"} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	// Prepared once, before the counts.
	for _, q := range []string{"INSERT INTO t VALUES ($1)", "INSERT INTO background VALUES ($1)"} {
		if _, err := conn.Exec(ctx, q, 0); err != nil {
			t.Fatal(err)
		}
	}
	inTx := func(qs ...string) error {
		tx, err := conn.Begin(ctx)
		if err != nil {
			return err
		}
		for _, q := range qs {
			if _, err := tx.Exec(ctx, q, 1); err != nil {
				return err
			}
		}
		return tx.Commit(ctx)
	}
	for _, tc := range []struct {
		name string
		run  func() error
		want pgtest.Counts
	}{
		{"prepared", func() error { _, err := conn.Exec(ctx, "INSERT INTO t VALUES ($1)", 1); return err },
			pgtest.Counts{RoundTrips: 1, Statements: 1}},
		{"pipeline", func() error {
			b := &pgx.Batch{}
			for i := range 3 {
				b.Queue("INSERT INTO t VALUES ($1)", i)
			}
			return conn.SendBatch(ctx, b).Close()
		}, pgtest.Counts{RoundTrips: 1, Statements: 3}},
		{"transaction", func() error {
			tx, err := conn.Begin(ctx)
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, "INSERT INTO t VALUES ($1)", 2); err != nil {
				return err
			}
			return tx.Commit(ctx)
		}, pgtest.Counts{RoundTrips: 3, Statements: 3, Transactions: 1}},
		{"simple query of three", func() error { _, err := conn.Exec(ctx, "BEGIN; SELECT 1; COMMIT"); return err },
			pgtest.Counts{RoundTrips: 1, Statements: 3, Transactions: 1}},
		{"ignored", func() error { _, err := conn.Exec(ctx, "INSERT INTO background VALUES ($1)", 1); return err },
			pgtest.Counts{}},
		{"ignored in a transaction of its own", func() error { return inTx("INSERT INTO background VALUES ($1)") },
			pgtest.Counts{}},
		{"ignored in a transaction with another", func() error {
			return inTx("INSERT INTO t VALUES ($1)", "INSERT INTO background VALUES ($1)")
		}, pgtest.Counts{RoundTrips: 3, Statements: 3, Transactions: 1}},
		{"ping", func() error { return conn.Ping(ctx) }, pgtest.Counts{}},
	} {
		counter.Reset()
		if err := tc.run(); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		got := counter.Counts()
		if got.RoundTrips != tc.want.RoundTrips || got.Statements != tc.want.Statements || got.Transactions != tc.want.Transactions {
			t.Errorf("%s: %d round trips, %d statements, %d transactions; want %d, %d, %d (sent %q)", tc.name,
				got.RoundTrips, got.Statements, got.Transactions, tc.want.RoundTrips, tc.want.Statements, tc.want.Transactions, got.Sent)
		}
	}
}
