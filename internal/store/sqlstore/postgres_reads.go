package sqlstore

import (
	"context"
	"database/sql/driver"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/stdlib"
)

// postgresReadConnector gives the read pool connections that report a
// session the server ended as driver.ErrBadConn, so that database/sql
// runs the read again on another connection (up to twice on pooled
// ones, then on a new one) rather than failing it.
//
// When the server ends a session (a restart, a failover,
// pg_terminate_backend), the pooled connection learns of it only at its
// next use: pgx pings a connection before reusing it only after it has
// been idle for over a second, so without this every read connection
// used within the last second fails one read. A ping before every read
// would cost a round trip on the hot path; a read run twice costs
// nothing.
//
// Only what cannot write is run again: a query that is a SELECT, and a
// BEGIN (nothing ran). ExecContext, and any other query, fails as it
// did, since the server may have done it before it ended the session.
//
// A read that fails because the server cannot be reached or cannot
// serve it now (see unavailable) fails with store.ErrUnavailable.
type postgresReadConnector struct{ driver.Connector }

func (c postgresReadConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, unavailable(err, false)
	}
	sc, ok := conn.(*stdlib.Conn)
	if !ok {
		conn.Close()
		return nil, fmt.Errorf("postgres read pool: unexpected driver connection %T", conn)
	}
	return &postgresReadConn{stdlibConn: sc}, nil
}

// postgresReadConn is a pgx connection whose reads report a session the
// server ended as driver.ErrBadConn (postgresReadConnector). Its other
// methods, Conn among them, are the pgx connection's.
type postgresReadConn struct{ *stdlibConn }

// stdlibConn names the embedded connection so that its field does not
// hide its method Conn.
type stdlibConn = stdlib.Conn

// sessionEnded returns err, marked as driver.ErrBadConn (and still
// wrapping err) if the connection's session is gone: pgx closed the
// connection (a FATAL error from the server such as 57P01
// admin_shutdown, or a broken socket) while ctx still allowed the work,
// so the failure is the connection's and not the read's.
func (c *postgresReadConn) sessionEnded(ctx context.Context, err error) error {
	if err == nil || ctx.Err() != nil || !c.Conn().IsClosed() {
		return err
	}
	return fmt.Errorf("%w: %w", driver.ErrBadConn, err)
}

func (c *postgresReadConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	rows, err := c.stdlibConn.QueryContext(ctx, query, args)
	if err != nil && isSelect(query) {
		err = c.sessionEnded(ctx, err)
	}
	return rows, unavailable(err, false)
}

func (c *postgresReadConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	st, err := c.stdlibConn.PrepareContext(ctx, query)
	if err != nil {
		// Preparing changes nothing in the database.
		return nil, c.sessionEnded(ctx, err)
	}
	return &postgresReadStmt{Stmt: st.(*stdlib.Stmt), conn: c, query: query}, nil
}

// Prepare is PrepareContext without a deadline, so that the embedded
// connection's Prepare never hands out an unwrapped statement.
func (c *postgresReadConn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

func (c *postgresReadConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	tx, err := c.stdlibConn.BeginTx(ctx, opts)
	if err != nil {
		return nil, c.sessionEnded(ctx, err)
	}
	return tx, nil
}

// Begin is BeginTx with the default options (see Prepare).
func (c *postgresReadConn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

// postgresReadStmt is a statement prepared on a postgresReadConn.
type postgresReadStmt struct {
	*stdlib.Stmt
	conn  *postgresReadConn
	query string
}

func (s *postgresReadStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	rows, err := s.Stmt.QueryContext(ctx, args)
	if err != nil && isSelect(s.query) {
		err = s.conn.sessionEnded(ctx, err)
	}
	return rows, unavailable(err, false)
}

// isSelect reports whether query begins with SELECT: a statement that
// reads only, unless it calls a function that writes, which the store
// does not do on the read pool. A data-modifying WITH does not begin
// with SELECT.
func isSelect(query string) bool {
	q := strings.TrimLeft(query, " \t\r\n")
	return len(q) >= 6 && strings.EqualFold(q[:6], "select")
}
