package providersim

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/assurance"
	"github.com/varde-eid/varde/internal/provider"
	"github.com/varde-eid/varde/internal/provider/oidcup"
	"github.com/varde-eid/varde/internal/store"
	"github.com/varde-eid/varde/internal/store/sqlstore"
)

// finisher records what the upstream provider reports, as the broker
// would receive it.
type finisher struct {
	mu      sync.Mutex
	results []provider.Result
	fails   []string
}

func (f *finisher) Finish(w http.ResponseWriter, r *http.Request, attemptID string, res provider.Result) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.results = append(f.results, res)
	return "/finished", nil
}

func (f *finisher) Fail(w http.ResponseWriter, r *http.Request, attemptID, providerID, reason string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fails = append(f.fails, reason)
	return "/failed"
}

func (f *finisher) Pending(context.Context, string) (bool, error) { return true, nil }

func (f *finisher) Accepts(*http.Request, string, string, assurance.Level) (bool, error) {
	return true, nil
}

// link is a sim wired to Varde's own upstream client (package oidcup)
// exactly as the demo wires them: Varde's client key served at
// oidcup.JWKSPath and registered at the sim as a jwks_uri, Varde's
// callback as the redirect URI, national_id as the identifier claim and
// the eIDAS acr values. change, if not nil, changes the client's
// configuration.
type link struct {
	varde *httptest.Server
	mux   *http.ServeMux
	sim   *Sim
	up    *oidcup.Provider
	fin   *finisher
}

func newLink(t *testing.T, change func(*oidcup.Config)) *link {
	t.Helper()
	ctx := context.Background()
	db, err := sqlstore.OpenSQLite(ctx, filepath.Join(t.TempDir(), "varde.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	mux := http.NewServeMux()
	varde := httptest.NewServer(mux)
	t.Cleanup(varde.Close)

	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	simDB, err := sqlstore.OpenSQLite(ctx, filepath.Join(t.TempDir(), "sim.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { simDB.Close() })
	sim, err := Start(ctx, Config{
		ID: "bankid", Name: "Demo BankID", Level: assurance.High, Store: simDB,
		Addr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0",
		Clients: []Client{{ID: "varde", JWKSURI: varde.URL + oidcup.JWKSPath("bankid"), RedirectURIs: []string{varde.URL + oidcup.CallbackPath("bankid")}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })

	fin := &finisher{}
	cfg := bankIDConfig(sim.Issuer(), varde.URL, key)
	if change != nil {
		change(&cfg)
	}
	up, err := oidcup.New(cfg, oidcup.Deps{Challenges: db, Finisher: fin})
	if err != nil {
		t.Fatal(err)
	}
	up.Register(mux)
	// /start?attempt=&hint= plays the broker's part.
	mux.HandleFunc("GET /start", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		up.Start(w, r, provider.Attempt{ID: q.Get("attempt"), Locale: "en", MinLevel: assurance.Substantial, LoginHint: q.Get("hint")})
	})
	mux.HandleFunc("GET /finished", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("GET /failed", func(w http.ResponseWriter, r *http.Request) {})
	return &link{varde: varde, mux: mux, sim: sim, up: up, fin: fin}
}

// bankIDConfig is Varde's configuration, at the address varde, for the
// sim "bankid" at issuer, as the demo's: private_key_jwt with key.
func bankIDConfig(issuer, varde string, key crypto.Signer) oidcup.Config {
	return oidcup.Config{
		ID: "bankid", Name: map[string]string{"en": "Demo BankID"}, Issuer: issuer, ClientID: "varde",
		AuthMethod: oidcup.AuthPrivateKeyJWT, ClientKey: key,
		RedirectURI: varde + oidcup.CallbackPath("bankid"), PromptLogin: true,
		MaxLevel: assurance.High,
		ACRMap: map[string]assurance.Level{
			assurance.ACRLow: assurance.Low, assurance.ACRSubstantial: assurance.Substantial, assurance.ACRHigh: assurance.High,
		},
		IdentifierClaim: "national_id", IdentifierSchemes: []string{"no:fnr", "no:dnr"},
		Timeouts: oidcup.Timeouts{Refetch: time.Millisecond},
	}
}

// TestWithVardeUpstreamClient wires a sim to Varde's own upstream client
// (package oidcup) exactly as the demo does: Varde's client key served
// at oidcup.JWKSPath and registered at the sim as a jwks_uri, Varde's
// callback as the redirect URI, national_id as the identifier claim and
// the eIDAS acr values. A login reports the person's identifier at the
// sim's level; a failing sim makes the login fail at Varde, which the
// broker turns into another provider.
func TestWithVardeUpstreamClient(t *testing.T) {
	ctx := context.Background()
	l := newLink(t, nil)
	sim, up, fin, varde := l.sim, l.up, l.fin, l.varde

	jar, _ := cookiejar.New(nil)
	b := &http.Client{Jar: jar, Timeout: 20 * time.Second}
	person := DefaultPersons()[5]
	login := func(attempt string) string {
		t.Helper()
		page, _ := get(t, b, varde.URL+"/start?attempt="+attempt)
		if page.Request.URL.Path != PathLogin {
			return page.Request.URL.Path
		}
		form := url.Values{"req": {page.Request.URL.Query().Get("req")}, "person": {person.ID}}
		resp, _ := post(t, b, sim.Issuer()+PathLogin, form)
		return resp.Request.URL.Path
	}

	if end := login("a1"); end != "/finished" {
		t.Fatalf("login ended at %s; fails %v", end, fin.fails)
	}
	res := fin.results[0]
	want := []store.Identifier{person.Identifier}
	if res.Provider != "bankid" || res.Level != assurance.High || len(res.Identifiers) != 1 || res.Identifiers[0] != want[0] {
		t.Errorf("result %+v, want %v at high", res, want)
	}

	if err := up.Probe(ctx); err != nil {
		t.Errorf("probe of a working sim: %v", err)
	}

	// Failing: the authorization endpoint sends the browser back with
	// server_error, and Varde reports a failure it can route around.
	if _, err := sim.SetFault(Fault{Mode: ModeFailing}); err != nil {
		t.Fatal(err)
	}
	if end := login("a2"); end != "/failed" || len(fin.fails) != 1 {
		t.Errorf("failing sim: login ended at %s, fails %v", end, fin.fails)
	}
	if err := up.Probe(ctx); err != nil {
		t.Errorf("probe of a failing sim (discovery and keys up): %v", err)
	}
	// Down: the probe fails.
	if _, err := sim.SetFault(Fault{Mode: ModeDown}); err != nil {
		t.Fatal(err)
	}
	if err := up.Probe(ctx); err == nil {
		t.Error("probe of a sim that is down succeeded")
	}
	if _, err := sim.SetFault(Fault{Mode: ModeOK}); err != nil {
		t.Fatal(err)
	}
	if end := login("a3"); end != "/finished" {
		t.Errorf("after ok: login ended at %s", end)
	}
}

// TestLoginHintAtSim: a relying party's login_hint, here a national
// identity number, reaches the sim, which fills in its number field
// with it, only when Varde's upstream client is configured to forward
// hints (forward_login_hint); by default the sim never sees it. (The
// sim's page lists its persons' numbers either way.)
func TestLoginHintAtSim(t *testing.T) {
	number := DefaultPersons()[5].Identifier.Value
	for _, forward := range []bool{false, true} {
		l := newLink(t, func(c *oidcup.Config) { c.ForwardLoginHint = forward })
		jar, _ := cookiejar.New(nil)
		b := &http.Client{Jar: jar, Timeout: 20 * time.Second}
		page, body := get(t, b, l.varde.URL+"/start?"+url.Values{"attempt": {"a"}, "hint": {number}}.Encode())
		if page.Request.URL.Path != PathLogin {
			t.Fatalf("forward %v: the browser reached %s", forward, page.Request.URL)
		}
		if got := strings.Contains(body, `name="number" `) && strings.Contains(body, `value="`+number+`"`); got != forward {
			t.Errorf("forward %v: the sim's login page shows the number: %v", forward, got)
		}
	}
}
