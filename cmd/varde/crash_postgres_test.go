package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/loadgen"
	"github.com/varde-eid/varde/internal/pgtest"
)

// TestKilledNodeOrDatabaseOverPostgresKeepsWhatItAcknowledged: two
// nodes over one PostgreSQL database, behind the balancer, under the
// load of TestKilledNodeKeepsWhatItAcknowledged. Node a is killed
// (SIGKILL) at a random moment, twice, while node b goes on; then the
// database server is ended as by an immediate shutdown (every server
// process exits at once, no checkpoint) and started again, twice. After
// each fault `varde store verify` passes and every answer a client
// received as a success is in the database, and once both nodes are
// ready again each chain's last refresh token works once, every
// acknowledged passkey logs in and every person's last acknowledged
// recovery codes work. The test server commits asynchronously by
// default (synchronous_commit off), as a server tuned for speed may: the
// nodes' writes commit synchronously all the same (ADR 65), or the
// immediate shutdown would lose the last commits the nodes answered for.
func TestKilledNodeOrDatabaseOverPostgresKeepsWhatItAcknowledged(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two nodes and kills one, and the database, four times")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	srv := pgtest.NewServer(t)
	dsn := srv.DSN()
	nc, err := listenCluster(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.stop)
	err = nc.start(ctx, clusterSpec{dsn: dsn, names: []string{"a", "b"}, salt: []byte(rand.Text() + rand.Text()),
		env: []string{childEnvMarker + "=1"}, logLevel: "warn"})
	if err != nil {
		t.Fatal(err)
	}
	nc.serve(100 * time.Millisecond)
	c := &crashRun{cfgPath: nc.nodes[1].cfg, issuer: nc.issuer, bind: dollarParams,
		rp: &loadgen.RP{Issuer: nc.issuer, ClientID: clusterClient, RedirectURI: clusterCallback, Key: nc.rpKey, KeyID: clusterKID, HTTP: loadgen.NewHTTPClient(16)}}
	if c.db, err = sql.Open("pgx", dsn); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.db.Close() })
	ready := func() {
		t.Helper()
		hc := &http.Client{Timeout: 5 * time.Second}
		for _, n := range nc.nodes {
			if err := n.waitReady(ctx, hc, n.url); err != nil {
				t.Fatalf("%s after the fault: %v\n%s", n.name, err, tail(n.log, 30))
			}
		}
		// The balancer checks /readyz every 100 ms: both nodes are back
		// in its turn after the next check.
		time.Sleep(300 * time.Millisecond)
	}
	faults := []struct {
		name           string
		kill, recovery func()
	}{
		{"node a killed", nc.nodes[0].kill, func() {
			if err := nc.restart(0); err != nil {
				t.Fatal(err)
			}
		}},
		{"database ended by an immediate shutdown", srv.Crash, srv.Start},
	}
	for _, f := range faults {
		for i := range 2 {
			kill := time.Duration(800+randN(1200)) * time.Millisecond
			c.load(t, kill, f.kill)
			t.Logf("%s (%d) after %v: %d answers acknowledged, %d requests in flight", f.name, i+1, kill, c.acked.Load(), c.inFlight.Load())
			f.recovery()
			ready()
			if out, err := runCmd(t, "store", "verify", "--config", c.cfgPath); err != nil {
				t.Fatalf("store verify after %s: %v\n%s", f.name, err, out)
			}
			c.checkStored(t)
			c.checkAfterRestart(t)
		}
	}
	c.summary(t, 4)
}

// dollarParams rewrites a query's ? placeholders as PostgreSQL's $1,
// $2, ….
func dollarParams(q string) string {
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
