package sqlstore

import (
	"context"
	"database/sql"
	"log/slog"
	"sync/atomic"
	"time"
)

// checkpointFailureLogEvery is the least time between two log lines
// about failed checkpoints: one that fails at every tick (a full disk)
// is logged, with how many failed since, rather than every 100 ms.
const checkpointFailureLogEvery = time.Minute

// checkpointer copies the WAL back into the database file in the
// background (PRAGMA wal_checkpoint(PASSIVE)), on a connection of its
// own, so that the writer does not stop for checkpoints and their
// fsyncs on its commit path. A passive checkpoint never waits for
// readers or the writer. SQLite's own automatic checkpoint stays on with
// a higher threshold as a backstop.
//
// A checkpoint that fails is tried again at the next tick. Failures are
// counted (DB.CheckpointFailures) and logged at most once per
// checkpointFailureLogEvery, since a WAL that cannot be copied back (a
// full disk, an I/O error) keeps growing until someone acts.
type checkpointer struct {
	db       *sql.DB
	log      func() *slog.Logger
	failures atomic.Uint64
	quit     chan struct{}
	finished chan struct{}
}

func newCheckpointer(db *sql.DB, every time.Duration, log func() *slog.Logger) *checkpointer {
	c := &checkpointer{db: db, log: log, quit: make(chan struct{}), finished: make(chan struct{})}
	go c.loop(every)
	return c
}

func (c *checkpointer) loop(every time.Duration) {
	defer close(c.finished)
	t := time.NewTicker(every)
	defer t.Stop()
	var (
		logged   time.Time // when a failure was last logged
		unlogged int       // failures since
	)
	for {
		select {
		case <-t.C:
			err := c.checkpoint()
			if err == nil {
				continue
			}
			c.failures.Add(1)
			unlogged++
			if now := time.Now(); logged.IsZero() || now.Sub(logged) >= checkpointFailureLogEvery {
				c.log().Error("store: WAL checkpoint failed; the WAL file grows until a checkpoint succeeds",
					"err", err, "failures", unlogged)
				logged, unlogged = now, 0
			}
		case <-c.quit:
			return
		}
	}
}

// checkpoint runs one passive checkpoint. SQLite reports a checkpoint
// it could not run (another connection checkpointing at that moment) as
// busy, which is no failure: the next tick runs it.
func (c *checkpointer) checkpoint() error {
	var busy, logFrames, checkpointed int
	return c.db.QueryRowContext(context.Background(), "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &logFrames, &checkpointed)
}

// close stops the loop and closes the connection.
func (c *checkpointer) close() error {
	close(c.quit)
	<-c.finished
	return c.db.Close()
}
