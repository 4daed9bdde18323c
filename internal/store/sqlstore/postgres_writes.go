package sqlstore

import (
	"context"
	"database/sql/driver"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// postgresWriteConnector gives the write pool connections whose BEGIN,
// for a transaction of the writer (withChainLock), takes the audit
// chain's lock in the same round trip: "BEGIN; SELECT
// pg_advisory_xact_lock(…)" sent as one simple query, which the server
// runs in order, the lock inside the transaction it opened (ADR 13).
// Sent apart, the lock was a round trip of its own in every write
// transaction. Other transactions on the pool (the migrations') begin
// as usual: a migration holding the chain would hold every node's
// appends for as long as it runs.
type postgresWriteConnector struct {
	driver.Connector
	// beginLocked is the BEGIN of a writer's transaction.
	beginLocked string
}

func (c postgresWriteConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	sc, ok := conn.(*stdlib.Conn)
	if !ok {
		conn.Close()
		return nil, fmt.Errorf("postgres write pool: unexpected driver connection %T", conn)
	}
	return &postgresWriteConn{stdlibConn: sc, beginLocked: c.beginLocked}, nil
}

// postgresWriteConn is a pgx connection whose writer's BEGIN takes the
// audit chain's lock (postgresWriteConnector). Its other methods are
// the pgx connection's.
type postgresWriteConn struct {
	*stdlibConn
	beginLocked string
}

// chainLockKey marks the context of a BEGIN that is to take the audit
// chain's lock with it (withChainLock).
type chainLockKey struct{}

// withChainLock returns ctx for a BEGIN on the write pool that takes
// the audit chain's lock in the same round trip.
func withChainLock(ctx context.Context) context.Context {
	return context.WithValue(ctx, chainLockKey{}, true)
}

func (c *postgresWriteConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	locked, _ := ctx.Value(chainLockKey{}).(bool)
	if !locked || opts != (driver.TxOptions{}) {
		return c.stdlibConn.BeginTx(ctx, opts)
	}
	if c.Conn().IsClosed() {
		return nil, driver.ErrBadConn
	}
	// pgx closes the connection when its BEGIN fails for the connection
	// (a FATAL error, a broken socket, a deadline), and the writer then
	// begins once more on a new one. A lock the server refused otherwise
	// (lock_timeout) leaves the connection in the aborted transaction the
	// BEGIN opened; database/sql asks it to reset before its next use,
	// and the pgx driver discards a connection in a transaction then
	// (TestPostgresChainLockRefusedAtBegin).
	tx, err := c.Conn().BeginTx(ctx, pgx.TxOptions{BeginQuery: c.beginLocked})
	if err != nil {
		return nil, fmt.Errorf("begin and lock the audit chain: %w", err)
	}
	return pgxTx{ctx: ctx, tx: tx}, nil
}

// Begin is BeginTx with the default options, never the writer's.
func (c *postgresWriteConn) Begin() (driver.Tx, error) {
	return c.stdlibConn.BeginTx(context.Background(), driver.TxOptions{})
}

// pgxTx is a pgx transaction as database/sql's driver.Tx, as the pgx
// driver's own is.
type pgxTx struct {
	ctx context.Context
	tx  pgx.Tx
}

func (t pgxTx) Commit() error   { return t.tx.Commit(t.ctx) }
func (t pgxTx) Rollback() error { return t.tx.Rollback(t.ctx) }
