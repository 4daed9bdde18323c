package providersim

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/assurance"
	"github.com/varde-eid/varde/internal/provider"
	"github.com/varde-eid/varde/internal/provider/oidcup"
	"github.com/varde-eid/varde/internal/store/sqlstore"
)

// offsetClock runs with the wall clock, from an offset that a test
// moves on: time passing at the eID and at Varde's nodes alike.
type offsetClock struct{ off atomic.Int64 }

func (c *offsetClock) Now() time.Time       { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *offsetClock) pass(d time.Duration) { c.off.Add(int64(d)) }

// simKeysCache is how long the sim of a fleet keeps Varde's client keys
// fetched from the jwks_uri, as an eID that caches them for hours, and
// does not fetch them again for a kid it lacks.
const simKeysCache = 6 * time.Hour

// fleet is two Varde nodes behind one address, with one store for login
// state, as nodes over one PostgreSQL database are, each with its own
// upstream client (package oidcup) for a sim that authenticates Varde
// with private_key_jwt. The address sends every request to the node
// the test names, the sim's fetches of Varde's client keys included,
// and a node is restarted with other key files by building it again.
type fleet struct {
	t     *testing.T
	clock *offsetClock
	addr  *httptest.Server
	db    *sqlstore.DB
	sim   *Sim
	simDB *sqlstore.DB
	fin   *finisher
	// fetched: the sim fetches Varde's keys from the jwks_uri; otherwise
	// it holds them in its registration of Varde, which the operator
	// updates.
	fetched bool
	nodes   [2]atomic.Pointer[fleetNode]
	to      atomic.Int32 // the node the address sends requests to
	logins  atomic.Int32
}

type fleetNode struct {
	mux *http.ServeMux
	up  *oidcup.Provider
}

// newFleet starts the sim and both nodes with key, which the sim knows.
func newFleet(t *testing.T, fetched bool, key crypto.Signer) *fleet {
	t.Helper()
	ctx := context.Background()
	f := &fleet{t: t, clock: &offsetClock{}, fin: &finisher{}, fetched: fetched}
	f.addr = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.nodes[f.to.Load()].Load().mux.ServeHTTP(w, r)
	}))
	t.Cleanup(f.addr.Close)
	var err error
	for _, db := range []**sqlstore.DB{&f.db, &f.simDB} {
		if *db, err = sqlstore.OpenSQLite(ctx, filepath.Join(t.TempDir(), "store.db")); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { (*db).Close() })
	}
	client := Client{ID: "varde", RedirectURIs: []string{f.addr.URL + oidcup.CallbackPath("bankid")}}
	if fetched {
		client.JWKSURI = f.addr.URL + oidcup.JWKSPath("bankid")
	} else {
		client.JWKS = f.jwks(key)
	}
	f.sim, err = Start(ctx, Config{
		ID: "bankid", Name: "Demo BankID", Level: assurance.High, Store: f.simDB,
		Addr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0", Clients: []Client{client},
		ClientKeysCache: simKeysCache, Now: f.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.sim.Close() })
	f.restart(0, key, nil, nil)
	f.restart(1, key, nil, nil)
	return f
}

// jwks is the public key set of key alone, as varde upstream jwks
// prints it.
func (f *fleet) jwks(key crypto.Signer) json.RawMessage {
	f.t.Helper()
	cfg := bankIDConfig("https://bankid.example", f.addr.URL, key)
	set, err := cfg.ClientJWKS()
	if err != nil {
		f.t.Fatal(err)
	}
	raw, _ := json.Marshal(set)
	return raw
}

// restart starts node i again with the client key current, and next and
// previous keys (nil for none).
func (f *fleet) restart(i int, current, next, previous crypto.Signer) {
	f.t.Helper()
	cfg := bankIDConfig(f.sim.Issuer(), f.addr.URL, current)
	cfg.NextClientKey, cfg.PreviousClientKey = next, previous
	up, err := oidcup.New(cfg, oidcup.Deps{Challenges: f.db, SharedChallenges: true, Finisher: f.fin, Now: f.clock.Now})
	if err != nil {
		f.t.Fatal(err)
	}
	mux := http.NewServeMux()
	up.Register(mux)
	mux.HandleFunc("GET /start", func(w http.ResponseWriter, r *http.Request) {
		up.Start(w, r, provider.Attempt{ID: r.URL.Query().Get("attempt"), Locale: "en", MinLevel: assurance.Substantial})
	})
	mux.HandleFunc("GET /finished", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("GET /failed", func(w http.ResponseWriter, r *http.Request) {})
	f.nodes[i].Store(&fleetNode{mux: mux, up: up})
}

// learn is the eID coming to know node i's client keys: for one that
// fetches them, its cache running out, so that its next login through
// node i fetches them from there; for one that holds them in its
// registration, the operator registering what node i publishes.
func (f *fleet) learn(i int) {
	f.t.Helper()
	if f.fetched {
		f.clock.pass(simKeysCache + time.Minute)
		f.loginVia(i)
		return
	}
	c, err := f.simDB.GetClient(context.Background(), "varde")
	if err != nil {
		f.t.Fatal(err)
	}
	c.JWKS, _ = json.Marshal(f.nodes[i].Load().up.ClientJWKS())
	if err := f.simDB.PutClient(context.Background(), c); err != nil {
		f.t.Fatal(err)
	}
}

// loginVia runs a whole login through node i and returns where it
// ended: "/finished", or "/failed" with the reason Varde gave.
func (f *fleet) loginVia(i int) string {
	f.t.Helper()
	f.to.Store(int32(i))
	jar, _ := cookiejar.New(nil)
	b := &http.Client{Jar: jar, Timeout: 20 * time.Second}
	page, _ := get(f.t, b, f.addr.URL+"/start?attempt="+fmt.Sprint(f.logins.Add(1)))
	if page.Request.URL.Path != PathLogin {
		return page.Request.URL.Path
	}
	form := url.Values{"req": {page.Request.URL.Query().Get("req")}, "person": {DefaultPersons()[0].ID}}
	resp, _ := post(f.t, b, f.sim.Issuer()+PathLogin, form)
	end := resp.Request.URL.Path
	if end == "/failed" {
		f.fin.mu.Lock()
		end += " " + f.fin.fails[len(f.fin.fails)-1]
		f.fin.mu.Unlock()
	}
	return end
}

// allLogIn wants a login through each node to work.
func (f *fleet) allLogIn(step string) {
	f.t.Helper()
	for i := range f.nodes {
		if end := f.loginVia(i); end != "/finished" {
			f.t.Fatalf("%s: a login through node %d ended at %s", step, i, end)
		}
	}
}

// registrations names the two ways an eID knows Varde's client keys.
var registrations = map[string]bool{"jwks_uri": true, "jwks": false}

// TestClientKeyRotation: the client key of two nodes towards an eID is
// replaced by the steps of ADR 56, and every login through either node
// works at every step, whether the eID fetches the keys from the
// jwks_uri (and caches them for hours, not fetching them again for a kid
// it lacks) or holds them in its registration of Varde: the next key
// published on each node in turn, the eID coming to know it, the nodes
// restarted in turn with it as the current key and the old one as the
// previous key (the eID fetching the keys from a restarted node while
// the other still signs with the old key), and the previous key dropped.
func TestClientKeyRotation(t *testing.T) {
	for name, fetched := range registrations {
		t.Run(name, func(t *testing.T) {
			oldKey, newKey := ecKey(t), ecKey(t)
			f := newFleet(t, fetched, oldKey)
			f.allLogIn("before")

			f.restart(0, oldKey, newKey, nil)
			f.allLogIn("node 0 publishes the next key")
			f.restart(1, oldKey, newKey, nil)
			f.allLogIn("both publish the next key")
			f.learn(0)
			f.allLogIn("the eID knows the next key")

			f.restart(0, newKey, nil, oldKey)
			f.allLogIn("node 0 signs with the new key")
			f.learn(0)
			f.allLogIn("the eID took the keys from node 0 while node 1 signs with the old key")
			f.restart(1, newKey, nil, oldKey)
			f.allLogIn("both sign with the new key")

			f.restart(0, newKey, nil, nil)
			f.restart(1, newKey, nil, nil)
			f.learn(1)
			f.allLogIn("the previous key dropped")
		})
	}
}

// TestClientKeyRotationStepsMatter: the steps are needed. A key file
// swapped in with no publish step fails every login until the eID
// comes to know the new key (hours, for one that caches the keys);
// and a node restarted with the new key but without the old one as its
// previous key, whose key set the eID then takes, fails the logins of
// the nodes not yet restarted.
func TestClientKeyRotationStepsMatter(t *testing.T) {
	for name, fetched := range registrations {
		t.Run(name, func(t *testing.T) {
			oldKey, newKey := ecKey(t), ecKey(t)
			f := newFleet(t, fetched, oldKey)
			f.allLogIn("before")
			f.restart(0, newKey, nil, nil)
			f.clock.pass(time.Hour)
			if end := f.loginVia(0); end == "/finished" {
				t.Error("a login through a node whose key was swapped without the publish step worked")
			}
			f.learn(0)
			if end := f.loginVia(0); end != "/finished" {
				t.Fatalf("once the eID knows the new key, a login through node 0 ended at %s", end)
			}

			// The rolling swap without the previous key.
			f = newFleet(t, fetched, oldKey)
			f.restart(0, oldKey, newKey, nil)
			f.restart(1, oldKey, newKey, nil)
			f.learn(0)
			f.allLogIn("the eID knows the next key")
			f.restart(0, newKey, nil, nil)
			f.learn(0)
			if end := f.loginVia(1); end == "/finished" {
				t.Error("a node not yet restarted logged in with the old key after the eID took a key set without it")
			}
		})
	}
}

func ecKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
