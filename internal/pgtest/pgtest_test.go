package pgtest_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/varde-eid/varde/internal/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// connect opens a connection to dsn that is closed when the test ends.
func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(bounded(t), dsn)
	if err != nil {
		t.Fatalf("connect to %s: %v", dsn, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// bounded returns a context that ends with the test or after 30 s.
func bounded(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// maintenance returns the DSN of the server's postgres database.
func maintenance(t *testing.T, dsn string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("parse %s: %v", dsn, err)
	}
	u.Path = "/postgres"
	return u.String()
}

func TestDSN(t *testing.T) {
	u, err := url.Parse(pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	if u.Scheme != "postgres" || u.Hostname() != "127.0.0.1" || u.Port() == "" || u.User.Username() != "postgres" ||
		u.Query().Get("sslmode") != "disable" || len(u.Path) < 2 {
		t.Errorf("DSN %s is not postgres://postgres@127.0.0.1:PORT/NAME?sslmode=disable", u)
	}
}

// TestDatabasesAreSeparate: each call gives a new, empty database, and
// what one test writes is not seen in another's.
func TestDatabasesAreSeparate(t *testing.T) {
	a, b := connect(t, pgtest.NewDatabase(t)), connect(t, pgtest.NewDatabase(t))
	ctx := bounded(t)
	var nameA, nameB string
	if err := a.QueryRow(ctx, "SELECT current_database()").Scan(&nameA); err != nil {
		t.Fatal(err)
	}
	if err := b.QueryRow(ctx, "SELECT current_database()").Scan(&nameB); err != nil {
		t.Fatal(err)
	}
	if nameA == nameB {
		t.Fatalf("both databases are %s", nameA)
	}
	for _, conn := range []*pgx.Conn{a, b} {
		var tables int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'").Scan(&tables); err != nil {
			t.Fatal(err)
		}
		if tables != 0 {
			t.Errorf("new database %s has %d tables", conn.Config().Database, tables)
		}
	}

	if _, err := a.Exec(ctx, "CREATE TABLE things (id int PRIMARY KEY, name text NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Exec(ctx, "INSERT INTO things VALUES (1, 'één'), (2, 'two')"); err != nil {
		t.Fatal(err)
	}
	var name string
	if err := a.QueryRow(ctx, "SELECT name FROM things WHERE id = $1", 1).Scan(&name); err != nil {
		t.Fatal(err)
	}
	if name != "één" {
		t.Errorf("read back %q, want %q", name, "één")
	}
	var found *string
	if err := b.QueryRow(ctx, "SELECT to_regclass('public.things')::text").Scan(&found); err != nil {
		t.Fatal(err)
	}
	if found != nil {
		t.Errorf("table things, created in %s, is also in %s", nameA, nameB)
	}
}

// TestCleanupDropsDatabase: the database is gone once its test has
// ended, even though a connection to it was left open.
func TestCleanupDropsDatabase(t *testing.T) {
	var dsn, name string
	var left *pgx.Conn
	t.Run("use", func(t *testing.T) {
		dsn = pgtest.NewDatabase(t)
		var err error
		if left, err = pgx.Connect(bounded(t), dsn); err != nil {
			t.Fatal(err)
		}
		if err := left.QueryRow(bounded(t), "SELECT current_database()").Scan(&name); err != nil {
			t.Fatal(err)
		}
	})
	if left != nil {
		defer left.Close(context.Background())
	}
	if t.Failed() {
		return
	}
	admin := connect(t, maintenance(t, dsn))
	var n int
	if err := admin.QueryRow(bounded(t), "SELECT count(*) FROM pg_database WHERE datname = $1", name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("database %s still exists after its test", name)
	}
}

// TestConcurrentDatabases: parallel tests each get their own database
// from the one server.
func TestConcurrentDatabases(t *testing.T) {
	for i := range 8 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			conn := connect(t, pgtest.NewDatabase(t))
			ctx := bounded(t)
			if _, err := conn.Exec(ctx, "CREATE TABLE n (v int)"); err != nil {
				t.Fatal(err)
			}
			if _, err := conn.Exec(ctx, "INSERT INTO n VALUES ($1)", i); err != nil {
				t.Fatal(err)
			}
			var sum int
			if err := conn.QueryRow(ctx, "SELECT sum(v) FROM n").Scan(&sum); err != nil {
				t.Fatal(err)
			}
			if sum != i {
				t.Errorf("sum = %d, want %d", sum, i)
			}
		})
	}
}

// TestCrashRecovers: after Crash (an immediate shutdown) and Start, the
// server has recovered from its WAL, saying so in its log, and holds
// what a session that committed synchronously wrote before the crash.
func TestCrashRecovers(t *testing.T) {
	srv := pgtest.NewServer(t)
	dsn := srv.DSN() + "&synchronous_commit=on"
	conn := connect(t, dsn)
	ctx := bounded(t)
	if _, err := conn.Exec(ctx, "CREATE TABLE kept (n int)"); err != nil {
		t.Fatal(err)
	}
	for n := range 100 {
		if _, err := conn.Exec(ctx, "INSERT INTO kept VALUES ($1)", n); err != nil {
			t.Fatal(err)
		}
	}
	srv.Crash()
	srv.Start()
	var n int
	if err := connect(t, dsn).QueryRow(ctx, "SELECT count(*) FROM kept").Scan(&n); err != nil || n != 100 {
		t.Fatalf("rows after the crash: %d (%v), want the 100 committed", n, err)
	}
	if log := srv.Log(); !strings.Contains(log, "not properly shut down; automatic recovery in progress") {
		t.Errorf("the server's log does not say it recovered from a crash:\n%s", log)
	}
}
