package app_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/varde-eid/varde/internal/assurance"
	"github.com/varde-eid/varde/internal/config"
	"github.com/varde-eid/varde/internal/provider/oidcup"
	"github.com/varde-eid/varde/internal/providersim"
	"github.com/varde-eid/varde/internal/store"
	"github.com/varde-eid/varde/internal/store/sqlstore"
)

// simUpstream starts a simulated eID (package providersim) with id,
// asserting level, once the node's issuer is known (add, a tune
// function), and adds it to the node's upstreams with a client key of
// its own. The sim is in *sim once the node is built; tune, if given,
// changes the sim's configuration before it starts.
func simUpstream(t *testing.T, id, name string, level assurance.Level, sim **providersim.Sim, tune ...func(*providersim.Config)) func(*config.Config) {
	t.Helper()
	return func(cfg *config.Config) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		keyFile := filepath.Join(t.TempDir(), "upstream-key.pem")
		if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		// The assertion's kid is the key's RFC 7638 thumbprint.
		pub := jose.JSONWebKey{Key: &key.PublicKey, Algorithm: "ES256", Use: "sig"}
		tp, err := pub.Thumbprint(crypto.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		pub.KeyID = base64.RawURLEncoding.EncodeToString(tp)
		jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{pub}})
		db, err := sqlstore.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "sim.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		sc := providersim.Config{
			ID: id, Name: name, Level: level, Store: db,
			Clients: []providersim.Client{{ID: "varde", Name: "Varde", JWKS: jwks,
				RedirectURIs: []string{cfg.Issuer + oidcup.CallbackPath(id)}}},
		}
		for _, f := range tune {
			f(&sc)
		}
		s, err := providersim.Start(context.Background(), sc)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		*sim = s
		cfg.Upstreams = append(cfg.Upstreams, config.Upstream{
			ID: id, Name: map[string]string{"en": name, "nb": name, "da": name}, Issuer: s.Issuer(),
			ClientID: "varde", AuthMethod: store.AuthPrivateKeyJWT, ClientKeyFile: keyFile,
			MaxLevel: level.String(), ACRMap: map[string]string{level.ACR(): level.String()},
			IdentifierClaim: "national_id", IdentifierSchemes: []string{"no:fnr", "no:dnr"},
		})
	}
}

// brokered is a node with two simulated eIDs, Demo BankID (high) and
// Demo MinID (substantial), and a public relying party, the shop, that
// sends its authorization requests through the browser.
type brokered struct {
	*node
	bankid, minid *providersim.Sim
	shop          *oauth2.Config
}

// shopRedirect is the shop's redirect URI. Nothing listens there: a
// browser's redirect to it is where a test reads the code.
const shopRedirect = "https://shop.example/callback"

func startBrokered(t *testing.T, client func(*store.Client), tune ...func(*config.Config)) *brokered {
	t.Helper()
	return startBrokeredAt(t, "", client, tune...)
}

// startBrokeredAt is startBrokered with an issuer with the path base
// ("/eid"; "" for none).
func startBrokeredAt(t *testing.T, base string, client func(*store.Client), tune ...func(*config.Config)) *brokered {
	t.Helper()
	b := &brokered{}
	tune = append([]func(*config.Config){
		simUpstream(t, "bankid", "Demo BankID", assurance.High, &b.bankid),
		simUpstream(t, "minid", "Demo MinID", assurance.Substantial, &b.minid),
	}, tune...)
	b.node = startNodeAtPath(t, base, tune...)
	c := &store.Client{ID: "shop", Name: "Shop", AuthMethod: store.AuthNone, RedirectURIs: []string{shopRedirect},
		Claims: []string{"national_id"}, Source: "test", CreatedAt: time.Now()}
	if client != nil {
		client(c)
	}
	if err := b.app.Store.PutClient(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	b.shop = &oauth2.Config{ClientID: "shop", RedirectURL: shopRedirect, Scopes: []string{"openid"},
		Endpoint: oauth2.Endpoint{AuthURL: b.issuer + "/authorize", TokenURL: b.issuer + "/token", AuthStyle: oauth2.AuthStyleInParams}}
	return b
}

// number is the synthetic national identity number of the sims'
// default person i.
func number(i int) string { return providersim.DefaultPersons()[i].Identifier.Value }

// webBrowser is a person's browser: it keeps cookies and lets a test
// follow each redirect itself.
type webBrowser struct {
	t  *testing.T
	hc *http.Client
}

func newWebBrowser(t *testing.T) *webBrowser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &webBrowser{t: t, hc: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// get fetches u and returns the response, its body read.
func (b *webBrowser) get(u string) (*http.Response, string) {
	b.t.Helper()
	res, err := b.hc.Get(u)
	if err != nil {
		b.t.Fatal(err)
	}
	return res, readAll(res)
}

// follow fetches u and follows redirects until one leaves for a URL for
// which stop is true, and returns that URL; the response of a page that
// does not redirect fails the test.
func (b *webBrowser) follow(u string, stop func(*url.URL) bool) *url.URL {
	b.t.Helper()
	for range 12 {
		res, body := b.get(u)
		loc, err := res.Location()
		if err != nil {
			b.t.Fatalf("GET %s: %d, no redirect: %.300s", u, res.StatusCode, body)
		}
		if stop(loc) {
			return loc
		}
		u = loc.String()
	}
	b.t.Fatalf("too many redirects from %s", u)
	return nil
}

// simLogin logs in as number at the sim login page login (where the
// upstream's authorization endpoint sent the browser) and returns the
// callback to Varde that the sim sends the browser to, not yet followed.
func (b *webBrowser) simLogin(login *url.URL, number string) *url.URL {
	b.t.Helper()
	u := login.Scheme + "://" + login.Host + providersim.PathLogin
	res, err := b.hc.PostForm(u, url.Values{"req": {login.Query().Get("req")}, "number": {number}})
	if err != nil {
		b.t.Fatal(err)
	}
	body := readAll(res)
	loc, err := res.Location()
	if err != nil {
		b.t.Fatalf("sim login: %d: %.300s", res.StatusCode, body)
	}
	return b.follow(loc.String(), func(u *url.URL) bool { return strings.Contains(u.Path, "/upstream/") })
}

// shopLogin is one login the shop began: its state, PKCE verifier and
// nonce, and the authorization URL the browser opens.
type shopLogin struct {
	state, verifier, nonce string
	url                    string
}

func (b *brokered) begin(params ...string) *shopLogin {
	l := &shopLogin{state: rand.Text(), verifier: oauth2.GenerateVerifier(), nonce: rand.Text()}
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(l.verifier), oauth2.SetAuthURLParam("nonce", l.nonce)}
	for i := 0; i+1 < len(params); i += 2 {
		opts = append(opts, oauth2.SetAuthURLParam(params[i], params[i+1]))
	}
	l.url = b.shop.AuthCodeURL(l.state, opts...)
	return l
}

// toLogin opens the shop's authorization URL and returns the login
// attempt's ID from the login page it redirects to.
func (b *brokered) toLogin(br *webBrowser, l *shopLogin) string {
	br.t.Helper()
	res, body := br.get(l.url)
	loc, err := res.Location()
	if err != nil || !strings.HasSuffix(loc.Path, "/login") {
		br.t.Fatalf("authorize: %d %v: %.300s", res.StatusCode, loc, body)
	}
	return loc.Query().Get("req")
}

// toUpstream starts attempt req at provider (as a person picking it on
// the login page) and returns the sim's login page.
func (b *brokered) toUpstream(br *webBrowser, req, provider string) *url.URL {
	br.t.Helper()
	return br.follow(b.issuer+"/login/start?"+url.Values{"req": {req}, "provider": {provider}}.Encode(),
		func(u *url.URL) bool { return u.Path == providersim.PathLogin })
}

// code follows a callback to Varde until the browser leaves for the
// shop, and returns the code there ("" and the URL if it did not get
// one).
func (b *brokered) code(br *webBrowser, callback string) (string, *url.URL) {
	br.t.Helper()
	u := br.follow(callback, func(u *url.URL) bool { return strings.HasPrefix(u.String(), shopRedirect) })
	return u.Query().Get("code"), u
}

// redeem exchanges a code for the shop and returns the ID token's
// claims.
func (b *brokered) redeem(t *testing.T, l *shopLogin, code string) (map[string]any, error) {
	t.Helper()
	tok, err := b.shop.Exchange(context.Background(), code, oauth2.VerifierOption(l.verifier))
	if err != nil {
		return nil, err
	}
	raw, _ := tok.Extra("id_token").(string)
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("id_token %q", raw)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	claims := map[string]any{}
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	return claims, nil
}

// push pushes l's request for the shop (RFC 9126; the shop is a public
// client, so it names itself) and returns l with the authorization URL
// that carries the request_uri.
func (b *brokered) push(t *testing.T, l *shopLogin) *shopLogin {
	t.Helper()
	u, err := url.Parse(l.url)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.PostForm(b.issuer+"/par", u.Query())
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(res)
	var par struct {
		RequestURI string `json:"request_uri"`
	}
	if res.StatusCode != http.StatusCreated || json.Unmarshal([]byte(body), &par) != nil {
		t.Fatalf("par: %d %s", res.StatusCode, body)
	}
	l.url = b.issuer + "/authorize?" + url.Values{"client_id": {"shop"}, "request_uri": {par.RequestURI}}.Encode()
	return l
}

// beganIn begins a login for the shop in br, its request pushed first
// if pushed, and returns it and the ID its login page is for.
func (b *brokered) beganIn(t *testing.T, br *webBrowser, pushed bool) (*shopLogin, string) {
	t.Helper()
	l := b.begin()
	if pushed {
		l = b.push(t, l)
	}
	return l, b.toLogin(br, l)
}

// TestLoginFinishesOnlyInTheBrowserThatBeganIt: the ID of a login
// attempt (in /login?req=…, and the request_uri of a pushed request)
// is no key to the login. Whoever learns it from another person's
// browser (its history, an extension, a shared link) and finishes the
// login in a browser of their own, through an eID or with a session
// they hold, gets no code for the other person's request: that code,
// brought to the other person's browser, would log them in to the
// service as whoever finished it (session swapping). The person's own
// browser finishes the login as before.
func TestLoginFinishesOnlyInTheBrowserThatBeganIt(t *testing.T) {
	b := startBrokered(t, nil)
	// Someone with a session at Varde of their own.
	other := newWebBrowser(t)
	theirs := b.begin()
	if code, _ := b.code(other, other.simLogin(b.toUpstream(other, b.toLogin(other, theirs), "bankid"), number(2)).String()); code == "" {
		t.Fatal("no code for their own login")
	}
	for _, pushed := range []bool{false, true} {
		person := newWebBrowser(t)
		l, req := b.beganIn(t, person, pushed)

		// Their session, at the endpoint that issues a code for it.
		res, body := other.get(b.issuer + "/authorize/resume?req=" + url.QueryEscape(req))
		if loc, err := res.Location(); err == nil && loc.Query().Get("code") != "" {
			t.Errorf("pushed %v: resume in another browser with a session issued a code for the person's request", pushed)
		} else if res.StatusCode != http.StatusBadRequest {
			t.Errorf("pushed %v: resume in another browser: %d %.200s", pushed, res.StatusCode, body)
		}
		// An eID login of theirs, in a browser with no session.
		fresh := newWebBrowser(t)
		res, body = fresh.get(b.issuer + "/login/start?" + url.Values{"req": {req}, "provider": {"minid"}}.Encode())
		if loc, err := res.Location(); err == nil {
			if loc.Path == providersim.PathLogin {
				cb := fresh.simLogin(loc, number(3))
				res, body = fresh.get(cb.String())
				loc, err = res.Location()
			}
			if err == nil && strings.HasPrefix(loc.String(), shopRedirect) {
				t.Errorf("pushed %v: a login finished in another browser got the person's request its code", pushed)
			}
		}
		if res.StatusCode != http.StatusBadRequest {
			t.Errorf("pushed %v: login in another browser: %d %.200s", pushed, res.StatusCode, body)
		}

		// The person's own browser still finishes the login, as them.
		code, _ := b.code(person, person.simLogin(b.toUpstream(person, req, "bankid"), number(0)).String())
		claims, err := b.redeem(t, l, code)
		if err != nil {
			t.Fatalf("pushed %v: %v", pushed, err)
		}
		if id, _ := claims["national_id"].(map[string]any); id["value"] != number(0) {
			t.Errorf("pushed %v: the person's login reached %v, want their own number", pushed, claims["national_id"])
		}
	}
}

// TestUpstreamClockOffByLessThanTheLeeway: an eID whose clock is a few
// seconds behind or ahead of Varde's, within the leeway Varde allows
// it, reports an auth_time a few seconds before Varde sent the person
// there, or after Varde's now. Varde takes such a login, and reports it
// in its own time: a relying party that asked for a new login
// (prompt=login), or one within a max_age shorter than the skew, gets
// its code, rather than the person being sent round to log in again and
// again, and no auth_time is in the future.
func TestUpstreamClockOffByLessThanTheLeeway(t *testing.T) {
	for _, tc := range []struct {
		off    time.Duration
		params []string
	}{
		{-5 * time.Second, []string{"prompt", "login"}},
		// A max_age shorter than the skew, with room for a slow machine
		// between the eID's answer and the code.
		{-5 * time.Second, []string{"max_age", "3"}},
		{5 * time.Second, []string{"prompt", "login"}},
		{5 * time.Second, nil},
	} {
		t.Run(fmt.Sprint(tc.off, tc.params), func(t *testing.T) {
			var sim *providersim.Sim
			b := startBrokered(t, nil, simUpstream(t, "offid", "Off ID", assurance.High, &sim, func(c *providersim.Config) {
				c.Now = func() time.Time { return time.Now().Add(tc.off) }
			}))
			br := newWebBrowser(t)
			l := b.begin(tc.params...)
			before := time.Now().Truncate(time.Second)
			code, u := b.code(br, br.simLogin(b.toUpstream(br, b.toLogin(br, l), "offid"), number(0)).String())
			if code == "" {
				t.Fatalf("no code after a new login at the eID: %s", u)
			}
			claims, err := b.redeem(t, l, code)
			if err != nil {
				t.Fatal(err)
			}
			at, _ := claims["auth_time"].(float64)
			if got := time.Unix(int64(at), 0); got.Before(before) || got.After(time.Now()) {
				t.Errorf("auth_time %v, want between the request (%v) and now", got, before)
			}
		})
	}
}

// TestPasskeyPagesOnlyInTheBrowserThatBeganIt: the passkey login page
// and the recovery code page of a service's login answer another
// browser as the login page does (ADR 47): the page that says to start
// again from the service (400), not a passkey form only the person's
// browser could use, nor "a recovery code is not enough for this
// service". The person's own browser gets both pages.
func TestPasskeyPagesOnlyInTheBrowserThatBeganIt(t *testing.T) {
	b := startBrokered(t, nil)
	for _, pushed := range []bool{false, true} {
		person := newWebBrowser(t)
		_, req := b.beganIn(t, person, pushed)
		other := newWebBrowser(t)
		// error.badrequest.title in nb: the login page's answer to
		// another browser, which tells the person to go back to the
		// service and start again.
		const startAgain = "Vi forsto ikke forespørselen"
		for _, path := range []string{"/login?req=", "/passkey/login?attempt=", "/passkey/recover?attempt="} {
			res, body := other.get(b.issuer + path + url.QueryEscape(req))
			if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, startAgain) {
				t.Errorf("pushed %v: %s in another browser: %d %.300s", pushed, path, res.StatusCode, body)
			}
			res, body = person.get(b.issuer + path + url.QueryEscape(req))
			if res.StatusCode != http.StatusOK || strings.Contains(body, startAgain) {
				t.Errorf("pushed %v: %s in the person's browser: %d %.300s", pushed, path, res.StatusCode, body)
			}
		}
	}
}
