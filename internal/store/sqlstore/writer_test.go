package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/varde-eid/varde/internal/pgtest"
	"github.com/varde-eid/varde/internal/store"
)

// insertGrant is an op that creates grant id.
func insertGrant(db *DB, id string) op {
	return func(ctx context.Context, tx querier) error {
		_, err := tx.StmtContext(ctx, db.st.insertGrant).ExecContext(ctx, grantArgs(&store.Grant{ID: id})...)
		return db.d.classify(err)
	}
}

func req(ctx context.Context, multi bool, fn op) *writeReq {
	return &writeReq{ctx: ctx, fn: fn, multi: multi, done: make(chan struct{})}
}

// TestWriterBatch runs one batch by hand: a fatal error in one op must not
// cost the others their writes, and a failed op of several statements
// must leave none of them behind.
func TestWriterBatch(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testWriterBatch(t, openTemp(t)) })
	t.Run("postgres", func(t *testing.T) { testWriterBatch(t, openPostgres(t, pgtest.NewDatabase(t))) })
}

func testWriterBatch(t *testing.T, db *DB) {
	ctx := t.Context()
	cancelled, cancel := context.WithCancel(ctx)
	cancel()

	fatalErr := func(ctx context.Context, tx querier) error {
		if err := insertGrant(db, "fatal")(ctx, tx); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, "INSERT INTO no_such_table VALUES (1)")
		return err
	}
	halfDone := func(ctx context.Context, tx querier) error {
		if err := insertGrant(db, "half")(ctx, tx); err != nil {
			return err
		}
		return fmt.Errorf("changed my mind: %w", store.ErrConflict)
	}
	both := func(ctx context.Context, tx querier) error {
		if err := insertGrant(db, "both-1")(ctx, tx); err != nil {
			return err
		}
		return insertGrant(db, "both-2")(ctx, tx)
	}
	batch := []*writeReq{
		req(ctx, false, insertGrant(db, "before")),
		req(ctx, true, halfDone),
		req(ctx, false, insertGrant(db, "before")), // duplicate: constraint, not fatal
		req(ctx, true, both),
		req(cancelled, false, insertGrant(db, "cancelled")),
		req(ctx, true, fatalErr),
		req(ctx, false, insertGrant(db, "after")),
	}
	db.wr.run(batch)

	wantErrs := []error{nil, store.ErrConflict, store.ErrConflict, nil, context.Canceled, errors.New("fatal"), nil}
	for i, r := range batch {
		select {
		case <-r.done:
		default:
			t.Fatalf("request %d not answered", i)
		}
		switch want := wantErrs[i]; {
		case want == nil && r.err != nil:
			t.Errorf("request %d: %v", i, r.err)
		case want != nil && want.Error() == "fatal" && (r.err == nil || !db.d.fatal(r.err)):
			t.Errorf("request %d: got %v, want a fatal %s error", i, r.err, db.d.name)
		case want != nil && want.Error() != "fatal" && !errors.Is(r.err, want):
			t.Errorf("request %d: got %v, want %v", i, r.err, want)
		}
	}
	for id, want := range map[string]bool{
		"before": true, "both-1": true, "both-2": true, "after": true,
		"half": false, "cancelled": false, "fatal": false,
	} {
		_, err := db.GetGrant(ctx, id)
		if got := err == nil; got != want {
			t.Errorf("grant %s stored = %v, want %v (%v)", id, got, want, err)
		}
	}
}

// TestWriterBindsStatementOncePerBatch: the ops of a batch that run the
// same prepared statement get it bound to their transaction once, not
// once per run, which each login's writes would pay for; and the bound
// statement still runs after an op of the batch failed and was rolled
// back to its savepoint.
func TestWriterBindsStatementOncePerBatch(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testWriterBindsStatementOncePerBatch(t, openTemp(t)) })
	t.Run("postgres", func(t *testing.T) {
		testWriterBindsStatementOncePerBatch(t, openPostgres(t, pgtest.NewDatabase(t)))
	})
}

func testWriterBindsStatementOncePerBatch(t *testing.T, db *DB) {
	ctx := t.Context()
	var bound []*sql.Stmt
	insert := func(id string, fail bool) op {
		return func(ctx context.Context, tx querier) error {
			st := tx.StmtContext(ctx, db.st.insertGrant)
			bound = append(bound, st)
			if _, err := st.ExecContext(ctx, grantArgs(&store.Grant{ID: id})...); err != nil {
				return db.d.classify(err)
			}
			if fail {
				return store.ErrConflict
			}
			return nil
		}
	}
	batch := []*writeReq{
		req(ctx, true, insert("g1", false)),
		req(ctx, true, insert("undone", true)),
		req(ctx, true, insert("g2", false)),
		req(ctx, false, insert("g3", false)),
	}
	db.wr.run(batch)
	for i, r := range batch {
		if want := i == 1; (r.err != nil) != want {
			t.Errorf("request %d: %v", i, r.err)
		}
	}
	for i, st := range bound {
		if st != bound[0] {
			t.Errorf("op %d ran the statement bound anew; want the batch's one binding", i)
		}
	}
	for id, want := range map[string]bool{"g1": true, "g2": true, "g3": true, "undone": false} {
		if _, err := db.GetGrant(ctx, id); (err == nil) != want {
			t.Errorf("grant %s stored = %v, want %v (%v)", id, err == nil, want, err)
		}
	}
}

// TestWriterConcurrent checks that concurrent writes are batched and all
// land.
func TestWriterConcurrent(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testWriterConcurrent(t, openTemp(t)) })
	t.Run("postgres", func(t *testing.T) { testWriterConcurrent(t, openPostgres(t, pgtest.NewDatabase(t))) })
}

func testWriterConcurrent(t *testing.T, db *DB) {
	ctx := t.Context()
	const n = 200
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if err := db.CreateGrant(ctx, &store.Grant{ID: fmt.Sprint(i)}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for i := range n {
		if _, err := db.GetGrant(ctx, fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	if ops, batches := db.wr.ops.Load(), db.wr.batches.Load(); ops != n || batches > ops {
		t.Errorf("%d ops in %d batches", ops, batches)
	} else {
		t.Logf("%d writes in %d transactions", ops, batches)
	}
}

func TestWriterClosed(t *testing.T) {
	db := openTemp(t)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateGrant(t.Context(), &store.Grant{ID: "late"}); !errors.Is(err, errClosed) {
		t.Errorf("CreateGrant after Close = %v, want errClosed", err)
	}
}

func TestWriterCancelledBeforeSend(t *testing.T) {
	db := openTemp(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	// The writer may pick the request up or the send may see ctx first;
	// either way the grant must not be written.
	err := db.CreateGrant(ctx, &store.Grant{ID: "g"})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("CreateGrant with a cancelled context = %v", err)
	}
	if _, err := db.GetGrant(t.Context(), "g"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetGrant = %v, want ErrNotFound", err)
	}
}

// TestAuditHeadAfterRollback checks that the audit head the writer keeps
// in memory follows rollbacks: an append undone with its transaction or
// its savepoint must not become the previous hash of the next event.
func TestAuditHeadAfterRollback(t *testing.T) {
	ctx := t.Context()
	db := openTemp(t)
	fatal := func(ctx context.Context, tx querier) error {
		_, err := tx.ExecContext(ctx, "INSERT INTO no_such_table VALUES (1)")
		return err
	}
	undone := &store.AuditEvent{Type: "undone"}
	appendThenFail := func(ctx context.Context, tx querier) error {
		if err := db.appendAudit(undone)(ctx, tx); err != nil {
			return err
		}
		return fmt.Errorf("changed my mind: %w", store.ErrConflict)
	}
	batches := [][]*writeReq{
		// The whole transaction is rolled back; the append runs again alone.
		{req(ctx, false, db.appendAudit(&store.AuditEvent{Type: "first"})), req(ctx, true, fatal)},
		// Only the savepoint is rolled back; the appends around it stay.
		{
			req(ctx, false, db.appendAudit(&store.AuditEvent{Type: "second"})),
			req(ctx, true, appendThenFail),
			req(ctx, false, db.appendAudit(&store.AuditEvent{Type: "third"})),
		},
	}
	for _, b := range batches {
		db.wr.run(b)
	}
	if err := db.AppendAudit(ctx, &store.AuditEvent{Type: "fourth"}); err != nil {
		t.Fatal(err)
	}
	all, err := db.ListAudit(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, e := range all {
		types = append(types, e.Type)
	}
	if fmt.Sprint(types) != "[first second third fourth]" {
		t.Errorf("log holds %v, want [first second third fourth]", types)
	}
	if err := store.VerifyAuditChain(nil, all); err != nil {
		t.Error(err)
	}
}

// TestWriterClashRetriesEndWithCaller: an operation that keeps clashing
// with other transactions is not run again once its caller has given up,
// in autocommit or in a transaction.
func TestWriterClashRetriesEndWithCaller(t *testing.T) {
	db := openPostgres(t, pgtest.NewDatabase(t))
	for _, tc := range []struct {
		name string
		send func(ctx context.Context, fn op) error
	}{
		{"autocommit", func(ctx context.Context, fn op) error { return db.wr.doOne(ctx, fn, nil) }},
		{"transaction", func(ctx context.Context, fn op) error { return db.wr.do(ctx, true, fn) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			runs := 0
			clash := func(ctx context.Context, tx querier) error {
				runs++
				cancel() // the caller gives up while its op runs
				_, err := tx.ExecContext(ctx, "DO $$ BEGIN RAISE EXCEPTION 'clash' USING ERRCODE = '40001'; END $$")
				return db.d.classify(err)
			}
			err := tc.send(ctx, clash)
			if !db.wr.transient(err) {
				t.Errorf("err = %v, want the clash", err)
			}
			if runs != 1 {
				t.Errorf("ran %d times after the caller gave up, want 1", runs)
			}
		})
	}
}
