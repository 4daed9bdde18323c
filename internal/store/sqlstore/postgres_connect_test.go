package sqlstore

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/store"
)

// TestPostgresConnectTimeout: a DSN that names no connect_timeout gets
// postgresConnectTimeout, in either form, even where a quoted value
// holds the words; one the operator named is kept: in the DSN, 0 (wait
// as long as TCP does) included, or in PGCONNECT_TIMEOUT, whose 0
// cannot be told from none.
func TestPostgresConnectTimeout(t *testing.T) {
	cases := []struct {
		name, dsn, env string
		want           time.Duration
	}{
		{"a URL naming none", "postgres://varde@db.example/varde?sslmode=disable", "", postgresConnectTimeout},
		{"keywords naming none", "host=db.example dbname=varde user=varde", "", postgresConnectTimeout},
		{"a password holding the words", "host=db.example dbname=varde password='connect_timeout=3'", "", postgresConnectTimeout},
		{"a URL naming 3", "postgresql://varde@db.example/varde?connect_timeout=3", "", 3 * time.Second},
		{"keywords naming 3", "host=db.example connect_timeout = 3 dbname=varde", "", 3 * time.Second},
		{"keywords naming 0", "host=db.example dbname=varde connect_timeout=0", "", 0},
		{"a URL naming 0", "postgres://db.example/varde?connect_timeout=0", "", 0},
		{"PGCONNECT_TIMEOUT", "postgres://db.example/varde", "4", 4 * time.Second},
		{"PGCONNECT_TIMEOUT 0, as if none", "host=db.example dbname=varde", "0", postgresConnectTimeout},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("PGCONNECT_TIMEOUT", c.env)
			cfg, err := postgresConfig(c.dsn)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.ConnectTimeout != c.want {
				t.Errorf("postgresConfig(%q) with PGCONNECT_TIMEOUT=%q: ConnectTimeout %v, want %v", c.dsn, c.env, cfg.ConnectTimeout, c.want)
			}
		})
	}
}

// TestOpenPostgresGivesUpOnSilentServer: a server whose address takes
// the TCP connection and never answers PostgreSQL's startup (a proxy
// whose back end is gone, a host that hangs) fails a try to open the
// store after the connect timeout, as one that waiting may fix
// (store.ErrUnavailable), instead of holding it for ever.
func TestOpenPostgresGivesUpOnSilentServer(t *testing.T) {
	addr := silentListener(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	start := time.Now()
	db, err := OpenPostgres(ctx, "postgres://varde@"+addr+"/varde?sslmode=disable&connect_timeout=1")
	took := time.Since(start)
	if err == nil {
		db.Close()
		t.Fatal("opened a store on a server that never answers")
	}
	if !store.Unavailable(err) || ctx.Err() != nil {
		t.Errorf("OpenPostgres: %v; want store.ErrUnavailable, before the test's own deadline", err)
	}
	if took < time.Second || took > 5*time.Second {
		t.Errorf("OpenPostgres gave up after %v, want about connect_timeout=1 (1s)", took)
	}
}

// silentListener listens on loopback, takes every connection and
// reads what it is sent without ever answering, until the test ends;
// it returns its address.
func silentListener(t *testing.T) string {
	return loopbackListener(t, func(c net.Conn) {
		defer c.Close()
		_, _ = io.Copy(io.Discard, c)
	})
}
