package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/varde-eid/varde/internal/pgtest"
	"github.com/varde-eid/varde/internal/store"
)

// sqliteErrors returns a real SQLITE_BUSY (a second writer meets the
// first's lock after a busy timeout of 10 ms) and a real unique
// constraint violation.
func sqliteErrors(t *testing.T) (busy, constraint error) {
	t.Helper()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "locked.db")
	open := func() *sql.DB {
		db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10)&_pragma=journal_mode(WAL)")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		db.SetMaxOpenConns(1)
		return db
	}
	a, b := open(), open()
	if _, err := a.ExecContext(ctx, "CREATE TABLE t (k TEXT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.ExecContext(ctx, "INSERT INTO t VALUES ('x')"); err != nil {
		t.Fatal(err)
	}
	_, constraint = a.ExecContext(ctx, "INSERT INTO t VALUES ('x')")
	tx, err := a.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "INSERT INTO t VALUES ('y')"); err != nil {
		t.Fatal(err)
	}
	_, busy = b.ExecContext(ctx, "INSERT INTO t VALUES ('z')")
	if busy == nil || constraint == nil {
		t.Fatalf("want both errors, got busy %v, constraint %v", busy, constraint)
	}
	return busy, constraint
}

func TestUnavailableClassifies(t *testing.T) {
	busy, constraint := sqliteErrors(t)
	pg := func(code string) error { return fmt.Errorf("query: %w", &pgconn.PgError{Code: code}) }
	cases := []struct {
		name        string
		err         error
		ownDeadline bool
		want        bool
	}{
		{"postgres connection failure 08006", pg("08006"), false, true},
		{"postgres cannot connect 08001", pg("08001"), false, true},
		{"postgres too many connections 53300", pg("53300"), false, true},
		{"postgres out of memory 53200", pg("53200"), false, true},
		{"postgres admin shutdown 57P01", pg("57P01"), false, true},
		{"postgres crash shutdown 57P02", pg("57P02"), false, true},
		{"postgres cannot connect now 57P03", pg("57P03"), false, true},
		{"postgres statement timeout 57014", pg("57014"), false, true},
		{"postgres serialization failure after retries 40001", pg("40001"), false, true},
		{"postgres deadlock after retries 40P01", pg("40P01"), false, true},
		{"postgres read-only transaction 25006", pg("25006"), false, true},
		{"postgres 55000 from a server in recovery", fmt.Errorf("%w: %w", errStandby, pg("55000")), false, true},
		{"postgres 55000 from a primary", pg("55000"), false, false},
		{"postgres admin shutdown 57P01 answering a statement in autocommit", fmt.Errorf("%w: %w", store.ErrOutcomeUnknown, pg("57P01")), false, false},
		{"postgres unique violation 23505", pg("23505"), false, false},
		{"postgres foreign key violation 23503", pg("23503"), false, false},
		{"postgres invalid text 22P02", pg("22P02"), false, false},
		{"postgres syntax error 42601", pg("42601"), false, false},
		{"postgres conflict classified", classifyPostgres(pg("23505")), false, false},
		{"sqlite busy after the busy timeout", busy, false, true},
		{"sqlite unique violation", constraint, false, false},
		{"sqlite conflict classified", classifySQLite(constraint), false, false},
		{"bad connection", fmt.Errorf("read: %w", driver.ErrBadConn), false, true},
		{"connection done", sql.ErrConnDone, false, true},
		{"connection cut mid-answer", io.ErrUnexpectedEOF, false, true},
		{"not found", store.ErrNotFound, false, false},
		{"no rows", sql.ErrNoRows, false, false},
		{"conflict", store.ErrConflict, false, false},
		{"outcome unknown", fmt.Errorf("%w: %w", store.ErrOutcomeUnknown, io.ErrUnexpectedEOF), false, false},
		{"store's own deadline", fmt.Errorf("write: %w", context.DeadlineExceeded), true, true},
		{"caller's deadline", fmt.Errorf("write: %w", context.DeadlineExceeded), false, false},
		{"caller cancelled", context.Canceled, true, false},
		{"plain error", errors.New("scan: bad JSON"), false, false},
	}
	for _, c := range cases {
		got := errors.Is(unavailable(c.err, c.ownDeadline), store.ErrUnavailable)
		if got != c.want {
			t.Errorf("%s: %v unavailable = %v, want %v", c.name, c.err, got, c.want)
		}
	}
}

// TestPostgresStoppedIsUnavailable: with its server stopped, the
// store's reads and writes fail with store.ErrUnavailable, not a bare
// driver error, and once the server runs again the same DB serves them.
func TestPostgresStoppedIsUnavailable(t *testing.T) {
	srv := pgtest.NewServer(t)
	db := openPostgres(t, srv.DSN())
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	write := func() error {
		return db.AppendAudit(ctx, &store.AuditEvent{Type: "t", Time: time.Now()})
	}
	reads := []struct {
		name string
		read func() error
	}{
		{"single row", func() error { _, err := db.GetClient(ctx, "none"); return err }},
		{"list", func() error { _, err := db.ListAudit(ctx, 0, 10); return err }},
	}
	if err := write(); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	if err := write(); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("write with the server stopped: %v, want store.ErrUnavailable", err)
	}
	for _, r := range reads {
		if err := r.read(); !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("read %s with the server stopped: %v, want store.ErrUnavailable", r.name, err)
		}
	}
	srv.Start()
	if err := write(); err != nil {
		t.Errorf("write once the server runs again: %v", err)
	}
	if _, err := db.GetClient(ctx, "none"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("read once the server runs again: %v, want store.ErrNotFound", err)
	}
	if _, err := db.ListAudit(ctx, 0, 10); err != nil {
		t.Errorf("list once the server runs again: %v", err)
	}
}

// TestPostgresReadOnlyIsUnavailable: a server that takes no writes, as
// a primary demoted at a failover, refuses the store's writes with
// store.ErrUnavailable, the outcome known (nothing was written), while
// reads go on; once it takes writes again, so does the same DB.
func TestPostgresReadOnlyIsUnavailable(t *testing.T) {
	srv := pgtest.NewServer(t)
	db := openPostgres(t, srv.DSN())
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	admin, err := sql.Open("pgx", srv.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	// readOnly sets the server's default and has it reread its settings;
	// each session rereads them before its next statement once told,
	// which is after pg_reload_conf returns, so the writes after it are
	// tried until one meets the new setting.
	readOnly := func(on string) {
		t.Helper()
		for _, q := range []string{"ALTER SYSTEM SET default_transaction_read_only = " + on, "SELECT pg_reload_conf()"} {
			if _, err := admin.ExecContext(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
	}
	write := func() error {
		return db.AppendAudit(ctx, &store.AuditEvent{Type: "t", Time: time.Now()})
	}
	// until writes until done says the answer is the awaited one.
	until := func(what string, done func(error) bool) {
		t.Helper()
		for {
			if done(write()) {
				return
			}
			select {
			case <-ctx.Done():
				t.Fatalf("%s: never", what)
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	if err := write(); err != nil {
		t.Fatal(err)
	}
	readOnly("on")
	until("a write refused by the read-only server", func(err error) bool {
		if err != nil && !store.Unavailable(err) {
			t.Fatalf("write to a read-only server: %v, want store.ErrUnavailable and not store.ErrOutcomeUnknown", err)
		}
		return err != nil
	})
	if _, err := db.ListAudit(ctx, 0, 10); err != nil {
		t.Errorf("read from a read-only server: %v", err)
	}
	readOnly("off")
	until("a write once the server takes writes again", func(err error) bool {
		if err != nil && !store.Unavailable(err) {
			t.Fatalf("write while the server turns writable: %v, want store.ErrUnavailable", err)
		}
		return err == nil
	})
}

// closingListener accepts connections and closes each at once, as a
// proxy with no server to send them to does.
func closingListener(t *testing.T) string {
	return loopbackListener(t, func(c net.Conn) { c.Close() })
}

// loopbackListener listens on loopback until the test ends, handing
// each connection to serve, and returns its address.
func loopbackListener(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serve(c)
		}
	}()
	return ln.Addr().String()
}

// TestUnansweredPostgres: a statement whose connection failed may have
// been carried out only if it was sent; a connection never made sent
// nothing, whatever the error wraps.
func TestUnansweredPostgres(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	connect := func(addr string) error {
		c, err := pgconn.Connect(ctx, "postgres://varde@"+addr+"/varde?sslmode=disable&connect_timeout=30")
		if err == nil {
			c.Close(ctx)
			t.Fatalf("connected to %s", addr)
		}
		return err
	}
	// The listener's close reads as an unexpected EOF, or, when the
	// startup message was already on its way, as a reset: either would
	// pass for an answer cut short, were it not for the ConnectError.
	cutShort := connect(closingListener(t))
	var ce *pgconn.ConnectError
	var ne net.Error
	if !errors.As(cutShort, &ce) || !(errors.Is(cutShort, io.ErrUnexpectedEOF) || errors.As(cutShort, &ne)) {
		t.Fatalf("connection closed by the listener: %v, want a ConnectError ending in unexpected EOF or a reset", cutShort)
	}
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"connection cut short before it was made", fmt.Errorf("store: %w", cutShort), false},
		{"server's answer", &pgconn.PgError{Code: "23505"}, false},
		{"read-only transaction 25006", &pgconn.PgError{Code: "25006"}, false},
		{"admin shutdown 57P01, mid-statement", fmt.Errorf("exec: %w", &pgconn.PgError{Severity: "FATAL", Code: "57P01"}), true},
		{"crash shutdown 57P02, mid-statement", &pgconn.PgError{Severity: "FATAL", Code: "57P02"}, true},
		{"idle session timeout 57P05, at rest", &pgconn.PgError{Severity: "FATAL", Code: "57P05"}, false},
		{"read cut mid-answer", fmt.Errorf("exec: %w", io.ErrUnexpectedEOF), true},
		{"read reset", &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}, true},
	}
	for _, c := range cases {
		if got := unansweredPostgres(c.err); got != c.want {
			t.Errorf("%s: %v unanswered = %v, want %v", c.name, c.err, got, c.want)
		}
	}
}

// TestSessionEndedPostgres: which failures, met before a transaction's
// COMMIT was sent, mean its connection's session was gone, so that the
// writer runs the transaction again whole on a new connection.
func TestSessionEndedPostgres(t *testing.T) {
	pg := func(code string) error { return fmt.Errorf("exec: %w", &pgconn.PgError{Severity: "FATAL", Code: code}) }
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"admin shutdown 57P01", pg("57P01"), true},
		{"crash shutdown 57P02", pg("57P02"), true},
		{"cannot connect now 57P03", pg("57P03"), true},
		{"idle session timeout 57P05", pg("57P05"), true},
		{"bad connection", fmt.Errorf("exec: %w", driver.ErrBadConn), true},
		{"connection done", sql.ErrConnDone, true},
		{"read cut mid-answer", fmt.Errorf("exec: %w", io.ErrUnexpectedEOF), true},
		{"connection reset", &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}, true},
		{"statement timeout 57014", pg("57014"), false},
		{"serialization failure 40001", pg("40001"), false},
		{"read-only transaction 25006", pg("25006"), false},
		{"unique violation", classifyPostgres(pg("23505")), false},
		{"the transaction's own deadline", fmt.Errorf("exec: %w", context.DeadlineExceeded), false},
		{"cancelled", context.Canceled, false},
		{"not found", store.ErrNotFound, false},
		{"plain error", errors.New("scan: bad JSON"), false},
	}
	for _, c := range cases {
		if got := sessionEndedPostgres(c.err); got != c.want {
			t.Errorf("%s: %v session ended = %v, want %v", c.name, c.err, got, c.want)
		}
	}
}
