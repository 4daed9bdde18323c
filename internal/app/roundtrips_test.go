package app_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/app"
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
	"passkey":  {RoundTrips: 26, Statements: 28, Transactions: 2},
	"brokered": {RoundTrips: 28, Statements: 30, Transactions: 2},
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

// loginPageReads bounds how often the passkey provider's pages for a
// relying party's login read its request (the rows of auth_requests)
// and the person (persons) over PostgreSQL, in one HTTP request each:
// the request once, for whether the broker holds it, whether a
// recovery code could end it, until when it stays open
// (provider.Holder) and, for a recovery code posted, the end of the
// login (provider.Hold.Finish); the person once, for the code's holder
// and whether they are blocked (provider.Result.Person).
// docs/PERFORMANCE.md ("Round trips per login") gives them.
var loginPageReads = map[string]struct{ requests, persons int }{
	"GET /passkey/login":    {1, 0},
	"GET /passkey/recover":  {1, 0},
	"POST /passkey/recover": {1, 1},
}

// TestLoginPageReadsPostgres counts, at the wire (pgtest.Counter), the
// reads of a login's request and of the person that the passkey login
// page, the recovery code page and a recovery code posted there make
// over PostgreSQL, in the browser the login was begun in; each page
// still says until when the login stays open, and the code ends the
// login at the relying party.
func TestLoginPageReadsPostgres(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)
	counter := pgtest.NewCounter(t, dsn)
	counter.Ignore("webhook_deliveries")
	n, _ := startNodeTuned(t, "127.0.0.1:0", "", map[string]string{
		config.EnvStoreDriver: "postgres", config.EnvStoreDSN: counter.DSN,
	}, make([]byte, 32), func(cfg *config.Config) {
		cfg.Health.Interval = time.Hour // no probe round between the counts
	})
	bank := n.addRP(t, "bank", "bank.example")
	// A recovery code for the person, stored beside the node.
	person := n.enrol(t, false)
	st, err := app.OpenStore(ctx, config.Store{Driver: "postgres", DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	holder, err := st.GetPersonByWebAuthnID(ctx, person.Auth.Options.UserHandle)
	if err != nil {
		t.Fatal(err)
	}
	const code = "7KQ3M9XD2B4C6F8G"
	sum := sha256.Sum256([]byte(code))
	if err := st.ReplaceRecoveryCodes(ctx, holder.ID, [][]byte{sum[:]}, time.Now()); err != nil {
		t.Fatal(err)
	}
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	requestURI, _ := push(t, n, bank)
	res, err := browser.Get(n.issuer + "/authorize?" + url.Values{"client_id": {bank.ClientID}, "request_uri": {requestURI}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	loc, err := res.Location()
	if err != nil || loc.Query().Get("req") == "" {
		t.Fatalf("authorize: %d, %v: no login to go to", res.StatusCode, err)
	}
	attempt := loc.Query().Get("req")
	var page string
	for _, path := range []string{"/passkey/login", "/passkey/recover"} {
		counter.Reset()
		res, err := browser.Get(n.issuer + path + "?" + url.Values{"attempt": {attempt}}.Encode())
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if page = string(body); res.StatusCode != http.StatusOK || !strings.Contains(page, `id="login-timeout`) {
			t.Fatalf("%s: %d, or no time limit on the page", path, res.StatusCode)
		}
		checkPageReads(t, counter, "GET "+path)
	}
	csrf := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(page)
	if csrf == nil {
		t.Fatal("the recovery code page has no form token")
	}
	counter.Reset()
	res, err = browser.PostForm(n.issuer+"/passkey/recover", url.Values{"attempt": {attempt}, "csrf": {csrf[1]}, "code": {code}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if loc := res.Header.Get("Location"); res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, bank.RedirectURI+"?") {
		t.Fatalf("recovery code: %d to %q, want 303 to the relying party", res.StatusCode, loc)
	}
	checkPageReads(t, counter, "POST /passkey/recover")
}

// readOf matches a SELECT of the columns of table's rows (not a write
// that names the table, nor a SELECT 1 that only locks).
func readOf(table string) *regexp.Regexp {
	return regexp.MustCompile(`SELECT [a-z_]+,[a-z_., ]+ FROM ` + table + ` WHERE`)
}

// checkPageReads checks what counter saw against loginPageReads[step].
func checkPageReads(t *testing.T, counter *pgtest.Counter, step string) {
	t.Helper()
	sent := counter.Counts().Sent
	requests, persons := 0, 0
	for _, s := range sent {
		requests += len(readOf("auth_requests").FindAllString(s, -1))
		persons += len(readOf("persons").FindAllString(s, -1))
	}
	t.Logf("%s: %d reads of the request, %d of the person", step, requests, persons)
	if want := loginPageReads[step]; requests > want.requests || persons > want.persons {
		t.Errorf("%s reads the login's request %d times and the person %d; want at most %d and %d:\n%s",
			step, requests, persons, want.requests, want.persons, strings.Join(sent, "\n"))
	}
}
