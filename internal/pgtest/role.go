package pgtest

import (
	"context"
	"fmt"
	"net/url"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
)

// Role is a role that may log in to a database of NewDatabase, for a
// test of what a node or a command does with fewer rights than the
// database's owner has.
type Role struct {
	Name string
	// DSN is the database's, as the role.
	DSN string
	// Admin is a connection to the database as its owner, through which
	// the test grants the role what it needs, or takes it away.
	Admin *pgx.Conn
}

var roles atomic.Int64

// NewRole creates a role that may log in to the database at dsn (from
// NewDatabase), with no right on its tables yet. The role, and what it
// came to own, are dropped when the test ends.
func NewRole(tb testing.TB, dsn string) *Role {
	tb.Helper()
	ctx := context.Background()
	u, err := url.Parse(dsn)
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		tb.Fatalf("pgtest: connect to %s: %v", u.Path, err)
	}
	tb.Cleanup(func() { admin.Close(ctx) })
	name := fmt.Sprintf("role_%d", roles.Add(1))
	if _, err := admin.Exec(ctx, "CREATE ROLE "+name+" LOGIN"); err != nil {
		tb.Fatalf("pgtest: create role %s: %v", name, err)
	}
	tb.Cleanup(func() {
		if _, err := admin.Exec(ctx, "DROP OWNED BY "+name+"; DROP ROLE "+name); err != nil {
			tb.Errorf("pgtest: drop role %s: %v", name, err)
		}
	})
	as := *u
	as.User = url.User(name)
	return &Role{Name: name, DSN: as.String(), Admin: admin}
}
