package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/varde-eid/varde/internal/store"
)

// errClosed is returned by writes attempted after Close.
var errClosed = errors.New("sqlstore: database closed")

// maxBatch caps how many operations share one transaction, which bounds
// the wait of the first of them.
const maxBatch = 128

// op is one write operation. It runs on the write connection inside a
// transaction that it may share with other operations; it must use tx
// for every statement, including reads, so it sees the effects of the
// operations before it in the same transaction.
type op func(ctx context.Context, tx querier) error

// querier is what an op runs its statements on: the batch's *sql.Tx, or
// for an operation of one statement alone in its batch, where BEGIN and
// COMMIT would cost two round trips more (PostgreSQL), the write
// connection in autocommit.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	// StmtContext returns stmt, prepared on the write pool, for use on
	// this querier.
	StmtContext(ctx context.Context, stmt *sql.Stmt) *sql.Stmt
}

// autocommit runs each statement on the write pool (its one connection)
// as a transaction of its own.
type autocommit struct{ *sql.DB }

func (autocommit) StmtContext(_ context.Context, stmt *sql.Stmt) *sql.Stmt { return stmt }

// batchTx is the batch's transaction as its ops' querier. It binds each
// prepared statement to the transaction once: database/sql's
// Tx.StmtContext makes a new statement, and registers it under a lock,
// at every call, and a batch of logins runs the same few statements
// many times. The statements it binds are closed with the transaction.
type batchTx struct {
	*sql.Tx
	stmts map[*sql.Stmt]*sql.Stmt
}

// StmtContext returns stmt bound to the transaction.
func (b *batchTx) StmtContext(ctx context.Context, stmt *sql.Stmt) *sql.Stmt {
	if s, ok := b.stmts[stmt]; ok {
		return s
	}
	s := b.Tx.StmtContext(ctx, stmt)
	if b.stmts == nil {
		b.stmts = make(map[*sql.Stmt]*sql.Stmt)
	}
	b.stmts[stmt] = s
	return s
}

// writeReq is one op waiting for the writer.
type writeReq struct {
	ctx context.Context
	fn  op
	// multi marks an op of several statements: it runs inside a savepoint
	// so that a failure undoes its earlier statements and nothing else. A
	// single statement is atomic on its own.
	multi bool
	// oneStatement marks an op that writes with one statement and reads,
	// if at all, only after it and only to explain its failure: where
	// statements cost round trips (dialect.shared), it runs alone in
	// autocommit when nothing else is waiting.
	oneStatement bool
	// onCommit, if set, runs on the writer goroutine after the
	// transaction holding a successful fn committed, in commit order; it
	// keeps in-memory copies of committed state (see cache.go) exact.
	onCommit func()
	err      error
	// clashes counts the runs of the request that clashed with another
	// transaction (again).
	clashes int
	// rerun marks a request whose transaction already ran again because
	// its connection's session had ended before its COMMIT (rerun).
	rerun bool
	// done is closed once err is final; only run touches delivered.
	done      chan struct{}
	delivered bool
}

// writer is group commit over the single write connection: one goroutine
// takes the operations that are waiting, runs them in one transaction
// and commits once. A commit (WAL frames, locks) costs several times a
// statement, so under concurrency this multiplies write throughput; a
// lone operation runs in a transaction of its own as before. Each
// operation returns only after its transaction committed.
type writer struct {
	db       *sql.DB
	d        dialect
	st       *statements
	reqs     chan *writeReq // unbuffered: a send is a hand-over to the loop
	quit     chan struct{}
	finished chan struct{}

	// ops and batches count what the loop ran, for benchmarks.
	ops, batches atomic.Int64

	// head is the audit chain's last event as of the last commit, and
	// txHead the same within the transaction in progress. Only the loop
	// goroutine (and the ops it runs) touches them. A zero value means
	// unknown: the next append reads the head from the database.
	head, txHead auditHead

	// dataVersion is PRAGMA data_version as last read on the write
	// connection, if versionKnown. It changes only when another
	// connection, which can only be another process, commits; then
	// forget, set by the DB, drops every in-memory copy of committed
	// state.
	dataVersion  int64
	versionKnown bool
	forget       func()
}

// auditHead is the last event of the audit hash chain.
type auditHead struct {
	known bool
	seq   int64
	hash  []byte
}

// newWriter starts the writer; forget drops the in-memory copies of
// committed state kept outside it (see checkForeign).
func newWriter(db *sql.DB, d dialect, st *statements, forget func()) *writer {
	w := &writer{
		db: db, d: d, st: st, forget: forget,
		reqs:     make(chan *writeReq),
		quit:     make(chan struct{}),
		finished: make(chan struct{}),
	}
	// The baseline, read before anything can be cached: a commit by
	// another process after it is seen by the next check.
	w.checkForeign(nil)
	go w.loop()
	return w
}

// do runs fn on the write connection and returns its error, or the
// commit's. A request whose ctx ends before it starts does not run;
// once running it is not interrupted, since that would roll back the
// operations sharing its transaction.
func (w *writer) do(ctx context.Context, multi bool, fn op) error {
	return w.doThen(ctx, multi, fn, nil)
}

// doThen is do that also runs onCommit (if not nil) on the writer
// goroutine once fn succeeded and its transaction committed, before do
// returns.
func (w *writer) doThen(ctx context.Context, multi bool, fn op, onCommit func()) error {
	return w.send(&writeReq{ctx: ctx, fn: fn, multi: multi, onCommit: onCommit})
}

// doOne is doThen for an op of one statement (writeReq.oneStatement).
func (w *writer) doOne(ctx context.Context, fn op, onCommit func()) error {
	return w.send(&writeReq{ctx: ctx, fn: fn, oneStatement: true, onCommit: onCommit})
}

// send hands r to the loop and waits until it ran. An error that means
// the store could not be reached or is overloaded is
// store.ErrUnavailable (unavailable).
func (w *writer) send(r *writeReq) error {
	ctx := r.ctx
	done := make(chan struct{})
	r.done = done
	select {
	case w.reqs <- r:
	case <-w.quit:
		return errClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	<-done
	// A deadline met while the caller's context still allowed the work
	// is the store's own (dialect.writeTimeout).
	return unavailable(r.err, ctx.Err() == nil)
}

// close stops the loop after the batch in progress.
func (w *writer) close() {
	close(w.quit)
	<-w.finished
}

// foreignCheckEvery is how often an idle writer looks for commits by
// another process, which must not be hidden by the in-memory copies.
const foreignCheckEvery = time.Second

func (w *writer) loop() {
	defer close(w.finished)
	batch := make([]*writeReq, 0, maxBatch)
	tick := time.NewTicker(foreignCheckEvery)
	defer tick.Stop()
	for {
		select {
		case r := <-w.reqs:
			batch = append(batch[:0], r)
		case <-tick.C:
			w.checkForeign(nil)
			continue
		case <-w.quit:
			return
		}
		batch = w.gather(batch)
		w.ops.Add(int64(len(batch)))
		w.batches.Add(1)
		w.run(batch)
		for i := range batch {
			batch[i] = nil
		}
	}
}

// gatherYields is how many times gather lets other goroutines run while
// more writes keep arriving.
const gatherYields = 3

// gather adds to batch every request already waiting. The goroutines the
// last commit woke are usually about to send their next write, so while
// requests keep arriving it yields the processor a few times to let them
// join. Yielding costs well under a microsecond; a commit costs tens.
func (w *writer) gather(batch []*writeReq) []*writeReq {
	for yields := 0; ; yields++ {
		before := len(batch)
	drain:
		for len(batch) < maxBatch {
			select {
			case r := <-w.reqs:
				batch = append(batch, r)
			default:
				break drain
			}
		}
		if len(batch) >= maxBatch || yields == gatherYields || (yields > 0 && len(batch) == before) {
			return batch
		}
		runtime.Gosched()
	}
}

// run executes batch in one transaction and reports to every request. If
// an op fails in a way that may have ended the transaction itself (an
// I/O error rather than a constraint), the transaction is rolled back,
// that op gets its error, and every other op is run again alone; if the
// failure was the end of the connection's session, the whole batch runs
// again instead (rerun).
func (w *writer) run(batch []*writeReq) {
	defer func() {
		w.markStandby(batch)
		for _, r := range batch {
			if !r.delivered {
				r.delivered = true
				close(r.done)
			}
		}
	}()
	if len(batch) == 1 && batch[0].oneStatement && w.d.shared {
		w.runAlone(batch[0])
		return
	}
	w.runTx(batch, w.deadline())
}

// recoveryCheckTimeout bounds markStandby's question to the server.
const recoveryCheckTimeout = 2 * time.Second

// markStandby marks the errors of batch's requests not yet delivered
// that a server in recovery gives to what only a primary can do
// (dialect.needsPrimary) with errStandby, which makes them unavailable,
// when the server says it is in recovery (dialect.inRecovery). It runs
// once the batch's transaction has ended, so it asks on the write
// pool's one connection, the one that failed: a standby reached through
// a proxy at a failover says yes; a primary, whose refusal is a fault of
// the request, says no, and the error stays a failure, as it does when
// the question gets no answer.
func (w *writer) markStandby(batch []*writeReq) {
	if w.d.needsPrimary == nil {
		return
	}
	asked, standby := false, false
	for _, r := range batch {
		if r.delivered || r.err == nil || !w.d.needsPrimary(r.err) {
			continue
		}
		if !asked {
			asked, standby = true, w.inRecovery()
		}
		if standby {
			r.err = fmt.Errorf("%w: %w", errStandby, r.err)
		}
	}
}

// inRecovery asks the write connection's server whether it is in
// recovery; no answer is taken for no.
func (w *writer) inRecovery() bool {
	ctx, cancel := context.WithTimeout(context.Background(), recoveryCheckTimeout)
	defer cancel()
	var recovery bool
	err := w.db.QueryRowContext(ctx, w.d.inRecovery).Scan(&recovery)
	return err == nil && recovery
}

// runTx is run's transaction, which must be over by deadline (zero:
// no limit). run delivers the requests' errors once it returns.
func (w *writer) runTx(batch []*writeReq, deadline time.Time) {
	txCtx, cancel := opContext(context.Background(), deadline)
	defer cancel()
	// The audit chain's lock comes first, before any row's, so that
	// transactions of different nodes that append events take their
	// locks in one order and cannot deadlock (ADR 13). Operations that
	// append lock rows before they append, and a batch may hold other
	// operations' row locks, so taking it at the append is too late. It
	// is taken with the BEGIN, in its round trip (postgresWriteConn).
	beginCtx := txCtx
	if w.d.auditLock != "" {
		beginCtx = withChainLock(txCtx)
	}
	sqlTx, err := w.db.BeginTx(beginCtx, nil)
	if err != nil && w.d.shared && txCtx.Err() == nil {
		// The server may have ended the connection's session since the
		// last batch (a restart, a failover): the BEGIN meets the news
		// and the connection is dropped. Nothing ran, so a BEGIN on a
		// new connection costs no operation anything.
		sqlTx, err = w.db.BeginTx(beginCtx, nil)
	}
	if err != nil {
		for _, r := range batch {
			r.err = fmt.Errorf("begin: %w", err)
		}
		return
	}
	tx := &batchTx{Tx: sqlTx}
	w.checkForeign(sqlTx)
	if w.d.shared && w.st.appendAudit == nil {
		// Another node may have appended since this one's last commit,
		// and an insert after a head gone stale would be refused with an
		// error, which aborts the transaction. Where an append finds so
		// without one (insertEvent), the head is kept (ADR 52).
		w.head = auditHead{}
	}
	w.txHead = w.head
	for i, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.err = err
			continue
		}
		var spoiled bool
		r.err, spoiled = w.exec(tx, r, len(batch) == 1, deadline)
		if spoiled {
			_ = tx.Rollback()
			w.head, w.txHead = auditHead{}, auditHead{}
			if w.rerun(batch, r.err, deadline) {
				w.runTx(batch, deadline)
				return
			}
			for j, other := range batch {
				if j != i {
					w.run([]*writeReq{other})
				}
			}
			// An operation that clashed with another node's transaction
			// runs again, alone, its reads included.
			if w.again(r) {
				w.run([]*writeReq{r})
			}
			return
		}
	}
	// A failure from here on is never met by rerun: the COMMIT was sent,
	// so the transaction may have taken effect.
	if err := tx.Commit(); err != nil {
		w.head, w.txHead = auditHead{}, auditHead{}
		// A COMMIT the server refused for a clash (a deadlock or
		// serialization failure met by a deferred check) wrote nothing:
		// each operation that had succeeded runs again alone, as one
		// that clashed while it ran does. With the isolation and
		// constraints in use today (read committed, none deferred) the
		// server does not refuse a COMMIT so.
		if w.transient(err) {
			for _, r := range batch {
				if r.err != nil {
					continue
				}
				r.err = fmt.Errorf("commit: %w", err)
				if w.again(r) {
					w.run([]*writeReq{r})
				}
			}
			return
		}
		// A COMMIT sent to a server that failed otherwise than by the
		// server's refusal (a clash) may have been carried out before the
		// connection dropped: the error says the outcome is unknown, so
		// that no caller reads it as "nothing was written". SQLite's
		// COMMIT runs in this process, and one that failed rolled back.
		if w.d.shared && !errors.Is(err, sql.ErrTxDone) {
			err = fmt.Errorf("%w: %w", store.ErrOutcomeUnknown, err)
		}
		for _, r := range batch {
			if r.err == nil {
				r.err = fmt.Errorf("commit: %w", err)
			}
		}
		return
	}
	w.head = w.txHead
	for _, r := range batch {
		if r.err == nil && r.onCommit != nil {
			r.onCommit()
		}
	}
}

// rerun reports whether batch, whose transaction failed with err before
// its COMMIT was sent, is to run again whole in a new transaction, and
// if so readies its requests for it: once at most, when err says the
// connection's session was gone (dialect.sessionEnded: the server ended
// it, as at a restart or a failover, or the connection broke): a
// transaction whose COMMIT the server never received cannot have taken
// effect, whatever its statements did before, so running it again on a
// new connection does nothing twice, and the operations that had not
// failed need not fail for a connection they could not see was gone.
// The new run keeps the first one's deadline and starts only while a
// caller still waits for it. What an op keeps in memory from a run it
// must set again in the next (as for a clash, again); onCommit runs
// only after the COMMIT that succeeded.
func (w *writer) rerun(batch []*writeReq, err error, deadline time.Time) bool {
	if w.d.sessionEnded == nil || !w.d.sessionEnded(err) ||
		(!deadline.IsZero() && !time.Now().Before(deadline)) {
		return false
	}
	waited := false
	for _, r := range batch {
		if r.rerun {
			return false
		}
		waited = waited || r.ctx.Err() == nil
	}
	if !waited {
		return false
	}
	for _, r := range batch {
		r.rerun, r.err = true, nil
	}
	return true
}

// deadline is when a write transaction starting now must give up
// (dialect.writeTimeout), or zero for never.
func (w *writer) deadline() time.Time {
	if w.d.writeTimeout <= 0 {
		return time.Time{}
	}
	return time.Now().Add(w.d.writeTimeout)
}

// opContext is the context an op runs in: its caller's values, not its
// cancellation (cancelling a statement would spoil the transaction the
// op shares), and the transaction's deadline, if it has one.
func opContext(ctx context.Context, deadline time.Time) (context.Context, context.CancelFunc) {
	ctx = context.WithoutCancel(ctx)
	if deadline.IsZero() {
		return ctx, func() {}
	}
	return context.WithDeadline(ctx, deadline)
}

// runAlone runs r, an op of one statement, in autocommit: its
// statement is its transaction. Only dialects whose writer keeps nothing
// across transactions (shared) do this, so there is no audit head or
// cache to keep in step.
func (w *writer) runAlone(r *writeReq) {
	if r.err = r.ctx.Err(); r.err != nil {
		return
	}
	ctx, cancel := opContext(r.ctx, w.deadline())
	defer cancel()
	r.err = r.fn(ctx, autocommit{w.db})
	for w.again(r) {
		r.err = r.fn(ctx, autocommit{w.db})
	}
	// A statement whose connection dropped after it was sent may have
	// been carried out, as a COMMIT that got no answer (run).
	if r.err != nil && w.d.unanswered != nil && w.d.unanswered(r.err) {
		r.err = fmt.Errorf("%w: %w", store.ErrOutcomeUnknown, r.err)
	}
	if r.err == nil && r.onCommit != nil {
		r.onCommit()
	}
}

// An operation whose transaction clashed with another's (a deadlock, a
// serialization failure: the server aborts one side) runs up to
// clashTries times in all before the clash is its error. Before each new
// run the writer waits a random time of up to clashPause times the
// clashes so far, so that the two sides do not meet again in step.
const (
	clashTries = 8
	clashPause = 10 * time.Millisecond
)

// again reports whether r, which just ran, is to run again because it
// clashed with another transaction, and if so waits before it does. A
// request whose caller has given up (its ctx ended) does not run again:
// its clash is its error. Only a run that has begun goes on without
// the caller, since cutting it would spoil the transaction it shares.
func (w *writer) again(r *writeReq) bool {
	if !w.transient(r.err) || r.clashes >= clashTries-1 || r.ctx.Err() != nil {
		return false
	}
	r.clashes++
	pause := time.NewTimer(rand.N(clashPause * time.Duration(r.clashes)))
	defer pause.Stop()
	select {
	case <-pause.C:
		return true
	case <-r.ctx.Done():
		return false
	}
}

// checkForeign drops the in-memory copies of committed state if another
// process committed since the last check. Inside a write transaction
// (tx not nil) the check sees every commit before the write lock was
// taken, and no other can follow until this one commits. If the version
// cannot be read, the copies are dropped too.
func (w *writer) checkForeign(tx *sql.Tx) {
	if w.d.shared {
		return // nothing outlives its transaction (see dialect.shared)
	}
	ctx := context.Background()
	st := w.st.dataVersion
	if tx != nil {
		st = tx.StmtContext(ctx, st)
	}
	var v int64
	err := st.QueryRowContext(ctx).Scan(&v)
	if err == nil && w.versionKnown && v == w.dataVersion {
		return
	}
	// Changed, or unknown (the first check, when nothing is cached yet,
	// or after a failed read, when anything may have changed since).
	w.head = auditHead{}
	w.forget()
	w.dataVersion, w.versionKnown = v, err == nil
}

// exec runs one op, inside a savepoint when it has several statements
// and shares its transaction with others, so that its failure undoes its
// own statements and nothing else. spoiled reports that the transaction
// can no longer be committed: it must be rolled back, and the other
// operations of the batch run again on their own.
//
// Where any failed statement aborts the transaction (abortsOnError), an
// operation alone in its transaction needs no savepoint: if it fails at
// all, its transaction is rolled back.
func (w *writer) exec(tx *batchTx, r *writeReq, alone bool, deadline time.Time) (err error, spoiled bool) {
	ctx, cancel := opContext(r.ctx, deadline)
	defer cancel()
	if !r.multi || (alone && w.d.abortsOnError) {
		err := r.fn(ctx, tx)
		return err, err != nil && ((r.multi && alone) || w.spoils(err))
	}
	if _, err := tx.StmtContext(ctx, w.st.savepoint).ExecContext(ctx); err != nil {
		return fmt.Errorf("savepoint: %w", err), true
	}
	err = r.fn(ctx, tx)
	if err != nil {
		// What the op did to the audit head is undone with it.
		w.txHead = auditHead{}
		if _, rerr := tx.StmtContext(ctx, w.st.rollbackTo).ExecContext(ctx); rerr != nil {
			return fmt.Errorf("%w (rollback to savepoint: %w)", err, rerr), true
		}
	}
	if _, rerr := tx.StmtContext(ctx, w.st.release).ExecContext(ctx); rerr != nil {
		return errors.Join(err, fmt.Errorf("release savepoint: %w", rerr)), true
	}
	switch {
	case err == nil:
		return nil, false
	case w.d.abortsOnError:
		// Rolled back to its savepoint, a failed statement leaves the
		// transaction whole; but a clash with another transaction is
		// best met by letting go of every lock this one holds.
		return err, w.transient(err)
	default:
		// SQLite's fatal errors (I/O, a full disk) may have ended the
		// transaction in spite of the savepoint.
		return err, w.spoils(err)
	}
}

// spoils reports whether err may have ended the transaction it happened
// in, or clashed with another transaction.
func (w *writer) spoils(err error) bool {
	return w.d.fatal(err) || w.transient(err)
}

// transient reports whether err is a clash with another transaction.
func (w *writer) transient(err error) bool {
	return w.d.transient != nil && w.d.transient(err)
}
