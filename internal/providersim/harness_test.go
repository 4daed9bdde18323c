package providersim

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"

	"github.com/varde-eid/varde/internal/assurance"
	"github.com/varde-eid/varde/internal/store/sqlstore"
)

// Test clients registered at every test sim.
const (
	secretClient = "varde-basic" // client_secret_basic
	jwtClient    = "varde-jwt"   // private_key_jwt with a jwks_uri
	callback     = "http://127.0.0.1:1/upstream/sim/callback"
)

type harness struct {
	t      *testing.T
	sim    *Sim
	db     *sqlstore.DB
	secret string
	key    *ecdsa.PrivateKey
}

// newSim starts a sim on 127.0.0.1 over SQLite in a temporary directory,
// with a secret client and a private_key_jwt client whose keys are served
// from a jwks_uri.
func newSim(t *testing.T, id string, level assurance.Level, mutate func(*Config)) *harness {
	t.Helper()
	ctx := context.Background()
	db, err := sqlstore.OpenSQLite(ctx, filepath.Join(t.TempDir(), "sim.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "varde-1", Algorithm: "ES256", Use: "sig"}}})
	keySrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(jwks)
	}))
	t.Cleanup(keySrv.Close)
	h := &harness{t: t, db: db, secret: rand.Text() + rand.Text(), key: key}
	cfg := Config{
		ID: id, Name: "Demo " + id, Level: level,
		Addr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0", Store: db,
		Clients: []Client{
			{ID: secretClient, Name: "Varde", RedirectURIs: []string{callback}, Secret: h.secret},
			{ID: jwtClient, RedirectURIs: []string{callback}, JWKSURI: keySrv.URL},
		},
	}
	if mutate != nil {
		mutate(&cfg)
	}
	h.sim, err = Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.sim.Close() })
	return h
}

// browser keeps cookies and follows redirects within the sim, stopping
// at the first response that leaves it (the redirect to the client).
func (h *harness) browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	host := strings.TrimPrefix(h.sim.Issuer(), "http://")
	return &http.Client{
		Jar: jar, Timeout: 20 * time.Second,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if req.URL.Host != host || len(via) > 10 {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}
}

// rp is a relying party of the sim built on go-oidc and x/oauth2.
type rp struct {
	h        *harness
	provider *gooidc.Provider
	conf     *oauth2.Config
	clientID string
}

func (h *harness) rp(clientID string) *rp {
	h.t.Helper()
	p, err := gooidc.NewProvider(context.Background(), h.sim.Issuer())
	if err != nil {
		h.t.Fatal(err)
	}
	ep := p.Endpoint()
	conf := &oauth2.Config{ClientID: clientID, Endpoint: ep, RedirectURL: callback, Scopes: []string{gooidc.ScopeOpenID}}
	if clientID == secretClient {
		conf.ClientSecret = h.secret
		conf.Endpoint.AuthStyle = oauth2.AuthStyleInHeader
	} else {
		conf.Endpoint.AuthStyle = oauth2.AuthStyleInParams
	}
	return &rp{h: h, provider: p, conf: conf, clientID: clientID}
}

// flow is one authorization request in progress.
type flow struct {
	state, nonce, verifier string
}

// start sends the browser to the authorization endpoint and returns
// the final response within the sim (normally the login page).
func (c *rp) start(b *http.Client, acr string) (*flow, *http.Response, string) {
	c.h.t.Helper()
	f := &flow{state: rand.Text(), nonce: rand.Text(), verifier: oauth2.GenerateVerifier()}
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(f.verifier), gooidc.Nonce(f.nonce)}
	if acr != "" {
		opts = append(opts, oauth2.SetAuthURLParam("acr_values", acr))
	}
	resp, body := get(c.h.t, b, c.conf.AuthCodeURL(f.state, opts...))
	return f, resp, body
}

// loginAs posts the login form for the request the login page is for.
func (h *harness) loginAs(b *http.Client, page *http.Response, form url.Values) (*http.Response, string) {
	h.t.Helper()
	req := page.Request.URL.Query().Get("req")
	if req == "" {
		h.t.Fatalf("not at the login page: %s", page.Request.URL)
	}
	form.Set("req", req)
	return post(h.t, b, h.sim.Issuer()+PathLogin, form)
}

// code checks a redirect to the client and returns its code.
func (c *rp) code(resp *http.Response, f *flow) string {
	c.h.t.Helper()
	q := c.callback(resp, f)
	if q.Get("error") != "" || q.Get("code") == "" {
		c.h.t.Fatalf("callback %v", q)
	}
	return q.Get("code")
}

func (c *rp) callback(resp *http.Response, f *flow) url.Values {
	c.h.t.Helper()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, callback+"?") {
		c.h.t.Fatalf("want a redirect to the client, got %d %q", resp.StatusCode, loc)
	}
	u, _ := url.Parse(loc)
	q := u.Query()
	if q.Get("iss") != c.h.sim.Issuer() || q.Get("state") != f.state {
		c.h.t.Fatalf("callback iss %q state %q", q.Get("iss"), q.Get("state"))
	}
	return q
}

// exchange redeems code and verifies the ID token with go-oidc.
func (c *rp) exchange(code string, f *flow) (*gooidc.IDToken, map[string]any, error) {
	c.h.t.Helper()
	ctx := context.Background()
	opts := []oauth2.AuthCodeOption{oauth2.VerifierOption(f.verifier)}
	if c.clientID == jwtClient {
		opts = append(opts,
			oauth2.SetAuthURLParam("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
			oauth2.SetAuthURLParam("client_assertion", c.assertion()))
	}
	tok, err := c.conf.Exchange(ctx, code, opts...)
	if err != nil {
		return nil, nil, err
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := c.provider.Verifier(&gooidc.Config{ClientID: c.clientID}).Verify(ctx, raw)
	if err != nil {
		c.h.t.Fatalf("verify ID token: %v", err)
	}
	if idt.Nonce != f.nonce {
		c.h.t.Fatalf("nonce %q, want %q", idt.Nonce, f.nonce)
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		c.h.t.Fatal(err)
	}
	return idt, claims, nil
}

// assertion is a private_key_jwt client assertion (RFC 7523 §3).
func (c *rp) assertion() string {
	c.h.t.Helper()
	now := time.Now()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: c.h.key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "varde-1"))
	if err != nil {
		c.h.t.Fatal(err)
	}
	tok, err := jwt.Signed(s).Claims(jwt.Claims{
		Issuer: jwtClient, Subject: jwtClient, Audience: jwt.Audience{c.h.sim.Issuer()}, ID: rand.Text(),
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Minute)),
	}).Serialize()
	if err != nil {
		c.h.t.Fatal(err)
	}
	return tok
}

func get(t *testing.T, c *http.Client, u string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func post(t *testing.T, c *http.Client, u string, form url.Values) (*http.Response, string) {
	t.Helper()
	resp, err := c.PostForm(u, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}
