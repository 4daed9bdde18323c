package health

import (
	"context"
	"database/sql"
	"os"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/varde-eid/varde/internal/pgtest"
	"github.com/varde-eid/varde/internal/store"
	"github.com/varde-eid/varde/internal/store/sqlstore"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// A store that takes writes and never answers (here PostgreSQL with the
// probe table locked by another session) must not stop the probing: the
// round ends well before the store gives up on the write (10 s for
// PostgreSQL), the component still goes down, and the records wait.
func TestMonitorStoreHangs(t *testing.T) {
	ctx := t.Context()
	dsn := pgtest.NewDatabase(t)
	db, err := sqlstore.OpenPostgres(ctx, dsn)
	must(t, err)
	t.Cleanup(func() { db.Close() })

	locker, err := sql.Open("pgx", dsn)
	must(t, err)
	t.Cleanup(func() { locker.Close() })
	tx, err := locker.BeginTx(ctx, nil)
	must(t, err)
	_, err = tx.ExecContext(ctx, "LOCK TABLE health_probes IN ACCESS EXCLUSIVE MODE")
	must(t, err)

	f := newFixture(t, Config{Interval: 200 * time.Millisecond, FailuresToDown: 2}, db)
	must(t, f.mon.Add("a", PingProber(func(context.Context) error { return errStoreDown })))
	for i := range 2 {
		done := make(chan error, 1)
		go func() { done <- f.mon.Tick(ctx) }()
		select {
		case err := <-done:
			if err == nil {
				t.Fatalf("round %d wrote to a locked table", i)
			}
		case <-time.After(5 * time.Second):
			tx.Rollback()
			t.Fatalf("round %d still writing to a store that does not answer after 5s", i)
		}
		f.clock.Add(f.mon.Config().Interval)
	}
	if got := f.mon.State("a"); got != Down {
		t.Errorf("state after 2 failed probes with the store hanging: %s, want down", got)
	}

	must(t, tx.Rollback())
	must(t, f.mon.Flush(ctx))
	probes, err := db.ListProbes(ctx, store.HealthQuery{Component: "a"})
	must(t, err)
	if len(probes) != 2 {
		t.Errorf("stored %d probes once the store answered, want 2", len(probes))
	}
}

// Seeding reads the other nodes' probes from PostgreSQL as from SQLite.
func TestMonitorSeedsFromFleetPostgres(t *testing.T) {
	db, err := sqlstore.OpenPostgres(t.Context(), pgtest.NewDatabase(t))
	must(t, err)
	t.Cleanup(func() { db.Close() })
	testSeedsFromFleet(t, db)
}
