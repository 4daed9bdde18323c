package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/varde-eid/varde/internal/assurance"
	"github.com/varde-eid/varde/internal/providersim"
	"github.com/varde-eid/varde/internal/store"
)

// fedRP is a relying party at the demo node, with a client secret, and a
// person's browser: it follows redirects within localhost (Varde and the
// simulated eIDs) and stops at the relying party's callback.
type fedRP struct {
	t        *testing.T
	issuer   string
	conf     *oauth2.Config
	verifier *gooidc.IDTokenVerifier
	http     *http.Client
}

const fedCallback = "https://rp.example/cb"

func newFedRP(t *testing.T, d *demoNode, issuer string) *fedRP {
	t.Helper()
	return newFedRPFor(t, d, issuer, "rp", nil)
}

// newFedRPFor registers relying party id, accepting providers (all if
// nil), for claims (national_id if none).
func newFedRPFor(t *testing.T, d *demoNode, issuer, id string, providers []string, claims ...string) *fedRP {
	t.Helper()
	if claims == nil {
		claims = []string{"national_id"}
	}
	secret := rand.Text() + rand.Text()
	sum := sha256.Sum256([]byte(secret))
	err := d.app.Store.PutClient(context.Background(), &store.Client{ID: id, Name: "Test RP " + id, AuthMethod: store.AuthClientSecretBasic,
		SecretHash: sum[:], RedirectURIs: []string{fedCallback}, SectorID: "rp.example", Claims: claims, Providers: providers, CreatedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	p, err := gooidc.NewProvider(context.Background(), issuer)
	if err != nil {
		t.Fatal(err)
	}
	jar, _ := cookiejar.New(nil)
	return &fedRP{t: t, issuer: issuer,
		conf:     &oauth2.Config{ClientID: id, ClientSecret: secret, Endpoint: p.Endpoint(), RedirectURL: fedCallback, Scopes: []string{"openid"}},
		verifier: p.Verifier(&gooidc.Config{ClientID: id}),
		http: &http.Client{Jar: jar, Timeout: 10 * time.Second, CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if req.URL.Hostname() != "localhost" || len(via) > 20 {
				return http.ErrUseLastResponse
			}
			return nil
		}}}
}

func (f *fedRP) get(u string) (*http.Response, string) {
	f.t.Helper()
	res, err := f.http.Get(u)
	if err != nil {
		f.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

// start begins a login and returns the request ID at Varde's login page.
// It asks for prompt=login, so Varde's single sign-on session from an
// earlier login is not reused.
func (f *fedRP) start(state, nonce, verifier string) string {
	f.t.Helper()
	res, _ := f.get(f.conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), gooidc.Nonce(nonce), oauth2.SetAuthURLParam("prompt", "login")))
	if res.Request.URL.Path != "/login" {
		f.t.Fatalf("authorization ended at %s", res.Request.URL)
	}
	return res.Request.URL.Query().Get("req")
}

// viaSim picks provider at Varde's login page and the person with number
// at the simulated eID; it returns where the browser ended.
func (f *fedRP) viaSim(req, providerID, number string) *http.Response {
	f.t.Helper()
	res, _ := f.get(f.issuer + "/login/start?" + url.Values{"req": {req}, "provider": {providerID}}.Encode())
	if res.Request.URL.Path != "/sim/login" {
		return res // the eID did not show its login (it failed, and Varde took the browser back)
	}
	simLogin := res.Request.URL
	res, err := f.http.PostForm(simLogin.Scheme+"://"+simLogin.Host+"/sim/login", url.Values{"req": {simLogin.Query().Get("req")}, "number": {number}})
	if err != nil {
		f.t.Fatal(err)
	}
	res.Body.Close()
	return res
}

// finish exchanges the code at the callback and verifies the ID token.
func (f *fedRP) finish(res *http.Response, state, nonce, verifier string) map[string]any {
	f.t.Helper()
	loc, err := res.Location()
	if err != nil || !strings.HasPrefix(loc.String(), fedCallback) {
		f.t.Fatalf("login ended at %s (%d), not the callback", res.Request.URL, res.StatusCode)
	}
	q := loc.Query()
	if q.Get("state") != state || q.Get("iss") != f.issuer || q.Get("code") == "" {
		f.t.Fatalf("callback %v", q)
	}
	tok, err := f.conf.Exchange(context.Background(), q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		f.t.Fatal(err)
	}
	idt, err := f.verifier.Verify(context.Background(), tok.Extra("id_token").(string))
	if err != nil || idt.Nonce != nonce {
		f.t.Fatalf("id token: %v", err)
	}
	claims := map[string]any{}
	_ = idt.Claims(&claims)
	return claims
}

func (f *fedRP) login(providerID, number string) map[string]any {
	f.t.Helper()
	state, nonce, verifier := rand.Text(), rand.Text(), oauth2.GenerateVerifier()
	req := f.start(state, nonce, verifier)
	return f.finish(f.viaSim(req, providerID, number), state, nonce, verifier)
}

// startFederatedDemo builds the demo node (Varde plus the two simulated
// eIDs) and serves it on a free localhost port.
func startFederatedDemo(t *testing.T) (*demoNode, string) {
	return startTunedDemo(t, demoTuning{})
}

// startTunedDemo is startFederatedDemo with the node tuned.
func startTunedDemo(t *testing.T, tune demoTuning) (*demoNode, string) {
	t.Helper()
	return startDemoIn(t, t.TempDir(), tune)
}

// startDemoIn is startTunedDemo keeping its data (the store, the
// subject salt) in dir.
func startDemoIn(t *testing.T, dir string, tune demoTuning) (*demoNode, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer := fmt.Sprintf("http://localhost:%d", ln.Addr().(*net.TCPAddr).Port)
	ctx, cancel := context.WithCancel(context.Background())
	d, err := newDemo(ctx, dir, issuer, "error", io.Discard, tune)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.app.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
		d.Close()
	})
	return d, issuer
}

// TestOneIdentityAcrossProviders: a person logging in through either
// simulated eID is one person at Varde, so the relying party gets the
// same sub; acr is the level each eID actually reached, and the provider
// claim says which was used.
func TestOneIdentityAcrossProviders(t *testing.T) {
	d, issuer := startFederatedDemo(t)
	rp := newFedRP(t, d, issuer)
	number := providersim.DefaultPersons()[0].Identifier.Value

	bank := rp.login("bankid", number)
	min := rp.login("minid", number)
	if bank["sub"] != min["sub"] {
		t.Errorf("sub differs between providers: %v vs %v", bank["sub"], min["sub"])
	}
	if bank["acr"] != assurance.ACRHigh || min["acr"] != assurance.ACRSubstantial {
		t.Errorf("acr: bankid %v, minid %v", bank["acr"], min["acr"])
	}
	if bank["provider"] != "bankid" || min["provider"] != "minid" {
		t.Errorf("provider: %v, %v", bank["provider"], min["provider"])
	}
	if nid, _ := bank["national_id"].(map[string]any); nid["value"] != number {
		t.Errorf("national_id = %v", bank["national_id"])
	}
	other := rp.login("minid", providersim.DefaultPersons()[1].Identifier.Value)
	if other["sub"] == bank["sub"] {
		t.Error("two persons share a sub")
	}
}

// TestNameFromEID: a person who first comes through an eID is created
// with the name and date of birth the eID gave, and a relying party
// allowed those claims receives them.
func TestNameFromEID(t *testing.T) {
	d, issuer := startFederatedDemo(t)
	rp := newFedRPFor(t, d, issuer, "rp-named", nil, "name", "given_name", "birthdate", "national_id")
	p := providersim.DefaultPersons()[0]

	c := rp.login("bankid", p.Identifier.Value)
	if c["name"] != p.Name() || c["given_name"] != p.GivenName || c["birthdate"] != p.BirthDate {
		t.Errorf("claims name %v, given_name %v, birthdate %v; want %q, %q, %q",
			c["name"], c["given_name"], c["birthdate"], p.Name(), p.GivenName, p.BirthDate)
	}
	stored, err := d.app.Store.GetPersonByIdentifier(context.Background(), p.Identifier.Scheme, p.Identifier.Value)
	if err != nil {
		t.Fatal(err)
	}
	if stored.GivenName != p.GivenName || stored.FamilyName != p.FamilyName || stored.BirthDate != p.BirthDate {
		t.Errorf("person %q %q born %q, want %q %q born %q",
			stored.GivenName, stored.FamilyName, stored.BirthDate, p.GivenName, p.FamilyName, p.BirthDate)
	}
}

// TestFailoverMidFlow: when the chosen eID fails in the middle of a
// login, the person is back at Varde's choice — the relying party's
// request still alive — and finishes through the other eID. Once enough
// logins have failed there, the eID is shown unavailable.
func TestFailoverMidFlow(t *testing.T) {
	d, issuer := startFederatedDemo(t)
	rp := newFedRP(t, d, issuer)
	number := providersim.DefaultPersons()[0].Identifier.Value
	var minid *providersim.Sim
	for _, s := range d.sims {
		if s.ID() == "minid" {
			minid = s
		}
	}
	if _, err := minid.SetFault(providersim.Fault{Mode: providersim.ModeFailing}); err != nil {
		t.Fatal(err)
	}
	state, nonce, verifier := rand.Text(), rand.Text(), oauth2.GenerateVerifier()
	req := rp.start(state, nonce, verifier)
	res := rp.viaSim(req, "minid", number)
	if res.Request.URL.Path != "/login" || res.Request.URL.Query().Get("err") != "failed" {
		t.Fatalf("after the failure the browser is at %s", res.Request.URL)
	}
	claims := rp.finish(rp.viaSim(req, "bankid", number), state, nonce, verifier)
	if claims["provider"] != "bankid" {
		t.Errorf("provider = %v", claims["provider"])
	}
	// Nothing about the failover is silent.
	events, err := d.app.Store.ListAudit(context.Background(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	// The failure and the success are one attempt: the status page
	// counts the person once, as affected and then through.
	attempts := map[string]string{}
	for _, e := range events {
		if e.Type == "authentication" && (e.Provider == "minid" && e.Result == store.ResultFailure || e.Provider == "bankid" && e.Result == store.ResultSuccess) {
			attempts[e.Provider] = e.Details["attempt"]
		}
	}
	if attempts["minid"] == "" {
		t.Error("the failed attempt through minid is not in the audit log")
	}
	if attempts["minid"] != attempts["bankid"] {
		t.Errorf("the failure and the success have attempt handles %q and %q, want one", attempts["minid"], attempts["bankid"])
	}
	for range d.app.Health.Config().MinLogins {
		rp.viaSim(rp.start(rand.Text(), rand.Text(), oauth2.GenerateVerifier()), "minid", number)
	}
	next := rp.start(rand.Text(), rand.Text(), oauth2.GenerateVerifier())
	_, body := rp.get(issuer + "/login?" + url.Values{"req": {next}}.Encode())
	if !strings.Contains(body, `id="provider-minid"`) || strings.Contains(body, `id="provider-minid" href=`) {
		t.Errorf("after its logins failed, minid is not shown unavailable:\n%s", body)
	}
}
