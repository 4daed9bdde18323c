package app_test

import (
	"context"
	"crypto/rand"
	"net/http/cookiejar"
	"strings"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/config"
	"github.com/varde-eid/varde/internal/loadgen"
	"github.com/varde-eid/varde/internal/pgtest"
)

// loginRoundTrips bounds what one login costs a node over PostgreSQL:
// the round trips to the server (each waits for its answer), the
// statements and the transactions (BEGIN) that
// TestLoginRoundTripsPostgres counts. docs/PERFORMANCE.md ("A node over
// PostgreSQL") gives them; a change that adds to them must say so there.
var loginRoundTrips = map[string]pgtest.Counts{
	"passkey":  {RoundTrips: 27, Statements: 29, Transactions: 2},
	"brokered": {RoundTrips: 29, Statements: 31, Transactions: 2},
}

// TestLoginRoundTripsPostgres counts, at the wire (pgtest.Counter), what
// a node over PostgreSQL sends its server for one whole login, from the
// relying party's PAR to its token request, with the person's passkey
// and through a simulated eID, one login at a time. The first logins
// warm the node's prepared statements and caches; of the next few, the
// fewest counted is the login's own (a background round of the node can
// only add to a login's; the webhook poll every second is left out).
// Run with -v to see the counts and every round trip.
func TestLoginRoundTripsPostgres(t *testing.T) {
	counter := pgtest.NewCounter(t, pgtest.NewDatabase(t))
	// The node's webhook poll claims due deliveries every second,
	// whatever the logins do.
	counter.Ignore("webhook_deliveries")
	salt := make([]byte, 32)
	_, _ = rand.Read(salt)
	sim := withSim(t)
	n, _ := startNodeTuned(t, "127.0.0.1:0", "", map[string]string{
		config.EnvStoreDriver: "postgres", config.EnvStoreDSN: counter.DSN,
	}, salt, sim.tune, func(cfg *config.Config) {
		cfg.Health.Interval = time.Hour // no probe round between the counts
	})
	ctx := context.Background()
	bank := n.addRP(t, "bank", "bank.example")
	person := n.enrol(t, false)
	logins := map[string]func() error{
		"passkey": func() error {
			// A browser of its own each time: a whole login, not one
			// continuing a session.
			jar, _ := cookiejar.New(nil)
			_, err := bank.Login(ctx, person, loadgen.LoginOptions{Jar: jar})
			return err
		},
		"brokered": func() error {
			_, err := bank.LoginWith(ctx, loadgen.Brokered{Provider: sim.id, Number: sim.number}, loadgen.LoginOptions{Prompt: "login"})
			return err
		},
	}
	for _, kind := range []string{"passkey", "brokered"} {
		login := logins[kind]
		for range 3 {
			if err := login(); err != nil {
				t.Fatalf("%s login: %v", kind, err)
			}
		}
		var least pgtest.Counts
		for i := range 5 {
			counter.Reset()
			if err := login(); err != nil {
				t.Fatalf("%s login: %v", kind, err)
			}
			if c := counter.Counts(); i == 0 || c.RoundTrips < least.RoundTrips {
				least = c
			}
		}
		t.Logf("%s login: %d round trips, %d statements, %d transactions:\n%s", kind,
			least.RoundTrips, least.Statements, least.Transactions, strings.Join(least.Sent, "\n"))
		want := loginRoundTrips[kind]
		if least.RoundTrips > want.RoundTrips || least.Statements > want.Statements || least.Transactions > want.Transactions {
			t.Errorf("%s login: %d round trips, %d statements, %d transactions; want at most %d, %d, %d",
				kind, least.RoundTrips, least.Statements, least.Transactions, want.RoundTrips, want.Statements, want.Transactions)
		}
	}
}
