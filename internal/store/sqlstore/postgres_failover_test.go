package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/varde-eid/varde/internal/pgtest"
	"github.com/varde-eid/varde/internal/store"
)

// syncRepStall opens a store on srv and has srv wait, at every commit
// of the store's sessions, for a synchronous standby that never comes
// (synchronous_standby_names names none that runs): the commit is made
// on the server and then waits, as it does on a primary whose
// synchronous standby is lost. A session ended while it waits has
// committed all the same (PostgreSQL documentation, 27.2.8, Synchronous
// Replication). The settings take effect at a restart, before which the
// store is opened (its migrations commit without waiting); its sessions
// ask for synchronous commit from then on (ALTER DATABASE outranks the
// test server's command line). The returned admin pool only reads, and
// a read waits for no standby.
func syncRepStall(t *testing.T, srv *pgtest.Server) (db *DB, admin *sql.DB) {
	t.Helper()
	db = openPostgres(t, srv.DSN())
	for _, q := range []string{
		"ALTER DATABASE postgres SET synchronous_commit = on",
		"ALTER SYSTEM SET synchronous_standby_names = 'absent'",
	} {
		if _, err := db.w.ExecContext(t.Context(), q); err != nil {
			t.Fatal(err)
		}
	}
	srv.Stop()
	srv.Start()
	return db, adminDB(t, srv.DSN())
}

// endWhenCommitWaits ends, from admin, the session of the first backend
// found waiting for a synchronous standby, once one is, and reports
// through the returned channel whether it did.
func endWhenCommitWaits(ctx context.Context, admin *sql.DB) <-chan error {
	ended := make(chan error, 1)
	go func() {
		for {
			var done bool
			err := admin.QueryRowContext(ctx, `SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity
				WHERE wait_event = 'SyncRep' LIMIT 1`).Scan(&done)
			if err == nil && done {
				ended <- nil
				return
			}
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				ended <- err
				return
			}
			select {
			case <-ctx.Done():
				ended <- ctx.Err()
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return ended
}

// TestPostgresShutdownAfterCommit: a write that the server committed
// and then answered with FATAL 57P01 admin_shutdown (its session ended
// by a shutdown or pg_terminate_backend while the commit waited for a
// synchronous standby) is stored. Whether it ran alone in autocommit or
// in a transaction, the node tells its caller the outcome is unknown,
// not that the store is unavailable (a caller would take that for
// "nothing was written" and could write it again), and the writer does
// not run it again: it is stored once.
func TestPostgresShutdownAfterCommit(t *testing.T) {
	srv := pgtest.NewServer(t)
	db, admin := syncRepStall(t, srv)
	writes := []struct {
		name string
		do   func(ctx context.Context, fn op, onCommit func()) error
	}{
		{"one statement in autocommit", db.wr.doOne},
		{"transaction", func(ctx context.Context, fn op, onCommit func()) error {
			return db.wr.doThen(ctx, true, fn, onCommit)
		}},
	}
	for _, w := range writes {
		t.Run(w.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			id := "shutdown-" + w.name
			ended := endWhenCommitWaits(ctx, admin)
			var runs, commits int
			err := w.do(ctx, func(ctx context.Context, tx querier) error {
				runs++
				return insertGrant(db, id)(ctx, tx)
			}, func() { commits++ })
			if e := <-ended; e != nil {
				t.Fatalf("end the session whose commit waits: %v", e)
			}
			if !errors.Is(err, store.ErrOutcomeUnknown) || store.Unavailable(err) {
				t.Errorf("write whose session ended after its commit: %v, want store.ErrOutcomeUnknown", err)
			}
			if runs != 1 || commits != 0 {
				t.Errorf("ran %d times, committed %d times, want 1 run and no commit reported", runs, commits)
			}
			var n int
			if err := admin.QueryRowContext(ctx, "SELECT count(*) FROM grants WHERE id = $1", id).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != 1 {
				t.Errorf("%d grants stored, want the 1 the server committed", n)
			}
		})
	}
}

// needsPrimary returns an op of one statement that only a primary can
// carry out: on a standby the server refuses it with 55000 "recovery is
// in progress".
func needsPrimary(ctx context.Context, tx querier) error {
	var lsn string
	return tx.QueryRowContext(ctx, "SELECT pg_current_wal_lsn()::text").Scan(&lsn)
}

// TestPostgresStandbyIsUnavailable: a node whose store is reached on a
// standby, as through a proxy that has not yet moved to the new primary
// at a failover, gets store.ErrUnavailable ("try again") for its writes,
// whether the standby refuses them as writes (25006) or as what only a
// primary can do (55000), with their outcome known; the same SQLSTATE
// 55000 from a primary, for a request that is wrong there too, stays a
// failure. Once the standby is promoted, the same DB writes.
func TestPostgresStandbyIsUnavailable(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	srv := pgtest.NewServer(t)
	primary := openPostgres(t, srv.DSN())
	standby := srv.NewStandby()
	db, err := OpenExistingPostgres(ctx, standby.DSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })

	writes := []struct {
		name  string
		write func(db *DB) error
	}{
		{"a write (25006)", func(db *DB) error {
			return db.AppendAudit(ctx, &store.AuditEvent{Type: "t", Time: time.Now()})
		}},
		{"one statement that needs a primary (55000)", func(db *DB) error { return db.wr.doOne(ctx, needsPrimary, nil) }},
		{"a transaction that needs a primary (55000)", func(db *DB) error { return db.wr.do(ctx, true, needsPrimary) }},
	}
	for _, w := range writes {
		if err := w.write(db); !store.Unavailable(err) {
			t.Errorf("%s on a standby: %v, want store.ErrUnavailable and a known outcome", w.name, err)
		}
	}

	if _, err := primary.w.ExecContext(ctx, "CREATE SEQUENCE never_used"); err != nil {
		t.Fatal(err)
	}
	notYet := func(ctx context.Context, tx querier) error {
		var n int64
		return tx.QueryRowContext(ctx, "SELECT currval('never_used')").Scan(&n)
	}
	for name, err := range map[string]error{
		"one statement":  primary.wr.doOne(ctx, notYet, nil),
		"in transaction": primary.wr.do(ctx, true, notYet),
	} {
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "55000" || errors.Is(err, store.ErrUnavailable) {
			t.Errorf("currval before nextval on the primary, %s: %v, want SQLSTATE 55000 and not store.ErrUnavailable", name, err)
		}
	}

	standby.Promote()
	for _, w := range writes {
		if err := w.write(db); err != nil {
			t.Errorf("%s once the standby is promoted: %v", w.name, err)
		}
	}
}

// TestOpenPostgresSaysWhetherToWait: opening a node's store (migrating
// it) on a standby, or on a server that does not answer, fails with
// store.ErrUnavailable (a standby with ErrReadOnly), so that a node
// starting during a failover knows to wait, even when the standby's
// schema is up to date and so needs no write to open; a wrong password
// and a database that does not exist are failures to report at once.
func TestOpenPostgresSaysWhetherToWait(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	srv := pgtest.NewServer(t)
	openPostgres(t, srv.DSN())
	right := srv.PasswordRole("varde", "right-password")
	standby := srv.NewStandby()
	stopped := pgtest.NewServer(t)
	stopped.Stop()
	cases := []struct {
		name     string
		dsn      string
		wait     bool
		readOnly bool
	}{
		{"a standby", standby.DSN(), true, true},
		{"a stopped server", stopped.DSN(), true, false},
		{"a wrong password", strings.Replace(right, "right-password", "wrong-password", 1), false, false},
		{"no such database", strings.Replace(srv.DSN(), "/postgres?", "/nosuchdb?", 1), false, false},
	}
	for _, c := range cases {
		db, err := OpenPostgres(ctx, c.dsn)
		if err == nil {
			db.Close()
			t.Errorf("%s: opened", c.name)
			continue
		}
		if store.Unavailable(err) != c.wait || errors.Is(err, ErrReadOnly) != c.readOnly {
			t.Errorf("%s: %v; want unavailable %v, read-only %v", c.name, err, c.wait, c.readOnly)
		}
		if strings.Contains(err.Error(), "wrong-password") {
			t.Errorf("%s: %v shows the password", c.name, err)
		}
	}
	db, err := OpenPostgres(ctx, right)
	if err != nil {
		t.Fatalf("the right password: %v", err)
	}
	db.Close()
}
