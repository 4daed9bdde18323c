package sqlstore

import (
	"context"
	"database/sql"
	"time"
)

// checkpointer copies the WAL back into the database file in the
// background (PRAGMA wal_checkpoint(PASSIVE)), on a connection of its
// own, so that the writer does not stop for checkpoints and their
// fsyncs on its commit path. A passive checkpoint never waits for
// readers or the writer. SQLite's own automatic checkpoint stays on with
// a higher threshold as a backstop.
type checkpointer struct {
	db       *sql.DB
	quit     chan struct{}
	finished chan struct{}
}

func newCheckpointer(db *sql.DB, every time.Duration) *checkpointer {
	c := &checkpointer{db: db, quit: make(chan struct{}), finished: make(chan struct{})}
	go c.loop(every)
	return c
}

func (c *checkpointer) loop(every time.Duration) {
	defer close(c.finished)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			// A failed checkpoint (say, another process checkpointing) is
			// retried at the next tick; the backstop covers a long run.
			_, _ = c.db.ExecContext(context.Background(), "PRAGMA wal_checkpoint(PASSIVE)")
		case <-c.quit:
			return
		}
	}
}

// close stops the loop and closes the connection.
func (c *checkpointer) close() error {
	close(c.quit)
	<-c.finished
	return c.db.Close()
}
