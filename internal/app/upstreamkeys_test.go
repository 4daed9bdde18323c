package app_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/varde-eid/varde/internal/app"
	"github.com/varde-eid/varde/internal/assurance"
	"github.com/varde-eid/varde/internal/config"
	"github.com/varde-eid/varde/internal/keytest"
	"github.com/varde-eid/varde/internal/provider/oidcup"
	"github.com/varde-eid/varde/internal/providersim"
	"github.com/varde-eid/varde/internal/store"
	"github.com/varde-eid/varde/internal/store/sqlstore"
)

// offsetClock runs with the wall clock, from an offset that a test
// moves on: time passing at the node and at the eID alike.
type offsetClock struct{ off atomic.Int64 }

func (c *offsetClock) Now() time.Time       { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *offsetClock) pass(d time.Duration) { c.off.Add(int64(d)) }

// eidKeysCache is how long the simulated eID keeps Varde's client keys
// fetched from the node, also for a kid it lacks.
const eidKeysCache = 6 * time.Hour

// rotatingNode is a node, restarted on one address and SQLite file with
// other client key files for the simulated eID "bankid", which fetches
// Varde's client keys from /upstream/bankid/jwks and keeps them for
// eidKeysCache.
type rotatingNode struct {
	t     *testing.T
	dir   string
	clock *offsetClock
	salt  []byte
	addr  string
	stop  func()
	sim   *providersim.Sim
	b     *brokered
}

// keyFile writes a new P-256 key to dir/name, as openssl ecparam
// -genkey does, and returns its path.
func (n *rotatingNode) keyFile(name string) string {
	n.t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		n.t.Fatal(err)
	}
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		n.t.Fatal(err)
	}
	path := filepath.Join(n.dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		n.t.Fatal(err)
	}
	return path
}

// start (re)starts the node with the upstream's client_key_file,
// client_next_key_file and client_previous_key_file ("" for none).
func (n *rotatingNode) start(current, next, previous string) {
	n.t.Helper()
	if n.stop != nil {
		n.stop()
	}
	opt := app.Options{SubjectSalt: n.salt, RSASigner: keytest.RSASigner(n.t), Now: n.clock.Now}
	node, stop := startNodeOpts(n.t, n.addr, "", map[string]string{config.EnvStoreDSN: filepath.Join(n.dir, "varde.db")}, opt,
		func(cfg *config.Config) {
			if n.sim == nil {
				n.startSim(cfg.Issuer)
			}
			cfg.Upstreams = append(cfg.Upstreams, config.Upstream{
				ID: "bankid", Name: map[string]string{"en": "Demo BankID", "nb": "Demo BankID", "da": "Demo BankID"}, Issuer: n.sim.Issuer(),
				ClientID: "varde", AuthMethod: store.AuthPrivateKeyJWT,
				ClientKeyFile: current, ClientNextKeyFile: next, ClientPreviousKeyFile: previous,
				MaxLevel: "high", ACRMap: map[string]string{assurance.High.ACR(): "high"},
				IdentifierClaim: "national_id", IdentifierSchemes: []string{"no:fnr", "no:dnr"},
			})
		})
	n.stop = stop
	n.addr = strings.TrimPrefix(node.origin, "http://localhost")
	n.addr = "127.0.0.1" + n.addr
	c := &store.Client{ID: "shop", Name: "Shop", AuthMethod: store.AuthNone, RedirectURIs: []string{shopRedirect},
		Claims: []string{"national_id"}, Source: "test", CreatedAt: n.clock.Now()}
	if err := node.app.Store.PutClient(context.Background(), c); err != nil {
		n.t.Fatal(err)
	}
	n.b = &brokered{node: node, bankid: n.sim, shop: &oauth2.Config{ClientID: "shop", RedirectURL: shopRedirect, Scopes: []string{"openid"},
		Endpoint: oauth2.Endpoint{AuthURL: node.issuer + "/authorize", TokenURL: node.issuer + "/token", AuthStyle: oauth2.AuthStyleInParams}}}
}

func (n *rotatingNode) startSim(issuer string) {
	n.t.Helper()
	db, err := sqlstore.OpenSQLite(context.Background(), filepath.Join(n.t.TempDir(), "sim.db"))
	if err != nil {
		n.t.Fatal(err)
	}
	n.t.Cleanup(func() { db.Close() })
	n.sim, err = providersim.Start(context.Background(), providersim.Config{
		ID: "bankid", Name: "Demo BankID", Level: assurance.High, Store: db, Now: n.clock.Now, ClientKeysCache: eidKeysCache,
		Clients: []providersim.Client{{ID: "varde", Name: "Varde", JWKSURI: issuer + oidcup.JWKSPath("bankid"),
			RedirectURIs: []string{issuer + oidcup.CallbackPath("bankid")}}},
	})
	if err != nil {
		n.t.Fatal(err)
	}
	n.t.Cleanup(func() { n.sim.Close() })
}

// login runs a shop's login through the eID and reports whether the
// shop got a code that it redeemed for the person's ID token.
func (n *rotatingNode) login() bool {
	n.t.Helper()
	br := newWebBrowser(n.t)
	l := n.b.begin()
	u := br.simLogin(n.b.toUpstream(br, n.b.toLogin(br, l), "bankid"), number(0)).String()
	for range 12 {
		res, _ := br.get(u)
		loc, err := res.Location()
		if err != nil {
			return false // a page: the eID's login did not finish at Varde
		}
		if strings.HasPrefix(loc.String(), shopRedirect) {
			code := loc.Query().Get("code")
			if code == "" {
				return false
			}
			claims, err := n.b.redeem(n.t, l, code)
			if err != nil {
				n.t.Fatal(err)
			}
			id, _ := claims["national_id"].(map[string]any)
			return id["value"] == number(0)
		}
		u = loc.String()
	}
	n.t.Fatalf("too many redirects from %s", u)
	return false
}

// served is the kids the node serves at /upstream/bankid/jwks.
func (n *rotatingNode) served() []string {
	n.t.Helper()
	res, err := http.Get(n.b.issuer + oidcup.JWKSPath("bankid"))
	if err != nil {
		n.t.Fatal(err)
	}
	defer res.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(res.Body).Decode(&set); err != nil {
		n.t.Fatal(err)
	}
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.KeyID)
	}
	return kids
}

func newRotatingNode(t *testing.T) *rotatingNode {
	salt := make([]byte, 32)
	_, _ = rand.Read(salt)
	return &rotatingNode{t: t, dir: t.TempDir(), clock: &offsetClock{}, salt: salt, addr: "127.0.0.1:0"}
}

// TestBrokeredLoginsThroughAClientKeyRotation: a node whose client key
// towards an eID is replaced by the steps of ADR 56, from its key files
// and restarted at each step, keeps every brokered login through that
// eID working, though the eID keeps the keys it fetched from the node
// for six hours and does not fetch them again for a kid it lacks.
// Swapping the key file in without the publish step fails the logins
// until the eID's cache runs out.
func TestBrokeredLoginsThroughAClientKeyRotation(t *testing.T) {
	n := newRotatingNode(t)
	oldKey, newKey := n.keyFile("bankid.pem"), n.keyFile("bankid-next.pem")
	n.start(oldKey, "", "")
	if !n.login() {
		t.Fatal("a login before the rotation failed")
	}
	n.start(oldKey, newKey, "")
	if kids := n.served(); len(kids) != 2 {
		t.Fatalf("the node publishes %v, want the current and the next key", kids)
	}
	if !n.login() {
		t.Fatal("a login once the next key is published failed")
	}
	n.clock.pass(eidKeysCache + time.Minute)
	if !n.login() {
		t.Fatal("a login once the eID's cache ran out failed")
	}
	n.start(newKey, "", oldKey)
	if !n.login() {
		t.Fatal("a login once the next key signs failed")
	}
	n.clock.pass(eidKeysCache + time.Minute)
	n.start(newKey, "", "")
	if kids := n.served(); len(kids) != 1 {
		t.Fatalf("the node publishes %v, want the current key alone", kids)
	}
	if !n.login() {
		t.Fatal("a login once the previous key is dropped failed")
	}

	// The same swap without the publish step.
	n = newRotatingNode(t)
	oldKey, newKey = n.keyFile("bankid.pem"), n.keyFile("bankid-new.pem")
	n.start(oldKey, "", "")
	if !n.login() {
		t.Fatal("a login before the swap failed")
	}
	n.start(newKey, "", "")
	n.clock.pass(time.Hour)
	if n.login() {
		t.Error("a login after a key swap without the publish step worked: the eID did not hold the new key")
	}
	n.clock.pass(eidKeysCache)
	if !n.login() {
		t.Error("a login once the eID's cache ran out failed")
	}
}
