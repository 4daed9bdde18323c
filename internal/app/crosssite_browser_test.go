package app_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
	"golang.org/x/oauth2"

	"github.com/varde-eid/varde/internal/broker"
	"github.com/varde-eid/varde/internal/browsertest"
	"github.com/varde-eid/varde/internal/store"
)

// shopClientAt registers "shop", a public client whose redirect URI is
// redirect, at n, and returns its x/oauth2 configuration.
func shopClientAt(t *testing.T, n *node, redirect string) *oauth2.Config {
	t.Helper()
	err := n.app.Store.PutClient(context.Background(), &store.Client{ID: "shop", Name: "Shop", AuthMethod: store.AuthNone,
		RedirectURIs: []string{redirect}, Source: "test", CreatedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	return &oauth2.Config{ClientID: "shop", RedirectURL: redirect, Scopes: []string{"openid"},
		Endpoint: oauth2.Endpoint{AuthURL: n.issuer + "/authorize", TokenURL: n.issuer + "/token", AuthStyle: oauth2.AuthStyleInParams}}
}

// enrolTestPerson are the steps, from the passkey login page of a
// node with synthetic enrolment, that make a new test person with a
// passkey (on the tab's virtual authenticator) and end the login.
func enrolTestPerson() []chromedp.Action[chromedp.Void] {
	return []chromedp.Action[chromedp.Void]{
		chromedp.Click(chromedp.Search(`//a[normalize-space()="Create a test person (demo)"]`)),
		chromedp.SendKeys(`#given_name`, "Kari"),
		chromedp.SendKeys(`#family_name`, "Nordmann"),
		chromedp.SetValue(`#birth_date`, "1990-05-17"),
		chromedp.Click(`form.passkey-ceremony [data-role=button]`),
		chromedp.WaitVisible(`code.codes`),
		chromedp.Click(`form[action="/passkey/enrolled/continue"] button`),
	}
}

// TestBrowserCrossSitePostAuthorize: in Chromium, a service on another
// site (http://127.0.0.1:…, Varde at http://localhost:…) that sends the
// person to Varde with a form POST (OIDC Core §3.1.2.1) does not end
// the logins in progress in that browser: the POST arrives without
// Varde's SameSite=Lax cookies, and Varde posts it again from its own
// origin rather than mark the browser afresh (ADR 58). A login in
// progress before it still has its login page, the browser keeps its
// mark, and the posted login itself is answered from the person's
// single sign-on session: the service gets a code that x/oauth2
// redeems.
func TestBrowserCrossSitePostAuthorize(t *testing.T) {
	ctx := browsertest.Start(t, browsertest.Options{Required: os.Getenv("CI") != ""})
	n := startNodeAtPath(t, "")
	codes := make(chan url.Values, 4)
	var post url.Values // the form the service's page posts
	rp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/post" {
			var b strings.Builder
			fmt.Fprintf(&b, `<!doctype html><title>Shop</title><form method="post" action="%s/authorize">`, html.EscapeString(n.issuer))
			for k, vs := range post {
				for _, v := range vs {
					fmt.Fprintf(&b, `<input type="hidden" name="%s" value="%s">`, html.EscapeString(k), html.EscapeString(v))
				}
			}
			b.WriteString(`<button id="go">Log in with Varde</button></form>`)
			_, _ = w.Write([]byte(b.String()))
			return
		}
		if r.URL.Path != "/callback" {
			http.NotFound(w, r)
			return
		}
		select {
		case codes <- r.URL.Query():
		default:
		}
		_, _ = w.Write([]byte("back at the service"))
	}))
	t.Cleanup(rp.Close)
	oc := shopClientAt(t, n, rp.URL+"/callback")
	code := func(state string) string {
		t.Helper()
		select {
		case q := <-codes:
			if q.Get("state") != state || q.Get("code") == "" {
				t.Fatalf("the service got %v, want a code for state %s", q, state)
			}
			return q.Get("code")
		case <-time.After(10 * time.Second):
			loc, _ := chromedp.Run(ctx, chromedp.Location())
			t.Errorf("the service got no code (browser at %s)", loc)
		}
		return ""
	}
	mark := func() string {
		t.Helper()
		var v string
		err := browsertest.Do(ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			res, err := cdp.Call(ctx, tg, network.GetCookies, network.GetCookiesParams{URLs: []string{n.issuer + "/"}})
			for _, c := range res.Cookies {
				if c.Name == broker.BrowserCookie {
					v = c.Value
				}
			}
			return err
		}))
		if err != nil || v == "" {
			t.Fatalf("the browser's mark: %q, %v", v, err)
		}
		return v
	}

	// The person logs in, with a new test person and passkey: a session.
	state, verifier := rand.Text(), oauth2.GenerateVerifier()
	err := browsertest.Do(ctx, append([]chromedp.Action[chromedp.Void]{
		browsertest.EnableWebAuthn(),
		browsertest.AddAuthenticator(new(webauthn.AuthenticatorID)),
		chromedp.Navigate(oc.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("nonce", rand.Text()))),
		chromedp.Click(`#provider-passkey`),
	}, enrolTestPerson()...)...)
	if err != nil {
		t.Fatalf("first login: %v", err)
	}
	if code(state) == "" {
		t.FailNow()
	}

	// A second login is in progress (prompt=login), on its login page.
	var inProgress string
	err = browsertest.Do(ctx,
		chromedp.Navigate(oc.AuthCodeURL(rand.Text(), oauth2.S256ChallengeOption(oauth2.GenerateVerifier()), oauth2.SetAuthURLParam("prompt", "login"))),
		chromedp.WaitVisible(`#provider-passkey`),
		into(&inProgress, chromedp.Location()),
	)
	if err != nil {
		t.Fatalf("a login in progress: %v", err)
	}
	before := mark()

	// The service's page posts a login for it from its own site.
	state, verifier = rand.Text(), oauth2.GenerateVerifier()
	post = url.Values{"response_type": {"code"}, "client_id": {"shop"}, "redirect_uri": {oc.RedirectURL}, "scope": {"openid"},
		"state": {state}, "nonce": {rand.Text()}, "login_hint": {"kari@example.no"},
		"code_challenge": {oauth2.S256ChallengeFromVerifier(verifier)}, "code_challenge_method": {"S256"}}
	err = browsertest.Do(ctx,
		chromedp.Navigate(rp.URL+"/post"),
		chromedp.Click(`#go`),
	)
	if err != nil {
		t.Fatalf("the service's form: %v", err)
	}
	if c := code(state); c != "" {
		tok, err := oc.Exchange(context.Background(), c, oauth2.VerifierOption(verifier))
		if err != nil || tok.Extra("id_token") == nil {
			t.Errorf("redeem the code of the posted login: %v", err)
		}
	}

	// The browser keeps its mark, and the login in progress its page.
	if after := mark(); after != before {
		t.Errorf("the cross-site POST replaced the browser's mark")
	}
	var h1 string
	err = browsertest.Do(ctx,
		chromedp.Navigate(inProgress),
		chromedp.WaitVisible(`main h1`),
		into(&h1, chromedp.Text(`main h1`)),
	)
	if err != nil {
		t.Fatalf("the login in progress, again: %v", err)
	}
	var buttons []*chromedp.Node
	if err := browsertest.Do(ctx, into(&buttons, chromedp.Nodes(`#provider-passkey`, chromedp.AtLeast(0)))); err != nil || len(buttons) != 1 {
		t.Errorf("the login in progress after the cross-site POST: %q, no way to log in (%v)", h1, err)
	}
}

// TestBrowserRepostSendsVardesOrigin: the form Varde's repost page
// sends again (ADR 58) names Varde's origin in its Origin header, not
// "null". Under Referrer-Policy: no-referrer, as Varde's pages said,
// a browser serializes the origin of a form POST as "null" (Fetch,
// "serializing a request origin"), even of a form posting to its own
// origin. A browser that sends no Sec-Fetch-Site (Safari before 16.4,
// and others) is judged by Origin alone, and "null" does not name
// Varde: its repost would be taken for a cross-site POST again, and
// posted again, without end. Chromium serializes Origin by the same
// rule, and the header it sends is what such a browser sends; a
// reverse proxy in front of the node, as in production, records it.
func TestBrowserRepostSendsVardesOrigin(t *testing.T) {
	ctx := browsertest.Start(t, browsertest.Options{Required: os.Getenv("CI") != ""})
	n := startNodeAtPath(t, "")
	varde, origins := recordPosts(t, n, "/authorize")
	oc := shopClientAt(t, n, "http://127.0.0.1:9/callback")
	post := url.Values{"response_type": {"code"}, "client_id": {"shop"}, "redirect_uri": {oc.RedirectURL}, "scope": {"openid"},
		"state": {rand.Text()}, "nonce": {rand.Text()},
		"code_challenge": {oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())}, "code_challenge_method": {"S256"}}
	rp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b strings.Builder
		fmt.Fprintf(&b, `<!doctype html><title>Shop</title><form method="post" action="%s/authorize">`, html.EscapeString(varde))
		for k, vs := range post {
			for _, v := range vs {
				fmt.Fprintf(&b, `<input type="hidden" name="%s" value="%s">`, html.EscapeString(k), html.EscapeString(v))
			}
		}
		b.WriteString(`<button id="go">Log in with Varde</button></form>`)
		_, _ = w.Write([]byte(b.String()))
	}))
	t.Cleanup(rp.Close)
	if err := browsertest.Do(ctx, chromedp.Navigate(rp.URL), chromedp.Click(`#go`), chromedp.WaitVisible(`#provider-passkey`)); err != nil {
		t.Fatalf("the service's form, posted again, to the login page: %v", err)
	}
	got := drain(origins)
	if len(got) != 2 || got[0][0] != "cross-site" || got[1][0] != "same-origin" {
		t.Fatalf("POSTs to /authorize (Sec-Fetch-Site, Origin): %q, want the service's, then Varde's repost", got)
	}
	if got[1][1] != varde {
		t.Errorf("the repost's Origin is %q, want %q: a browser without Sec-Fetch-Site would take it for another site's", got[1][1], varde)
	}
}

// recordPosts puts a reverse proxy in front of n, as in production,
// that records the Sec-Fetch-Site and Origin headers of each POST to
// path, and returns its URL, at localhost (the site Varde is on in these
// tests; a service's page at 127.0.0.1 is another), and the records.
func recordPosts(t *testing.T, n *node, path string) (string, chan [2]string) {
	t.Helper()
	target, err := url.Parse(n.origin)
	if err != nil {
		t.Fatal(err)
	}
	posts := make(chan [2]string, 8)
	proxy := httptest.NewServer(&httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(target)
		r.Out.Host = r.In.Host
		if r.In.Method == http.MethodPost && r.In.URL.Path == path {
			select {
			case posts <- [2]string{r.In.Header.Get("Sec-Fetch-Site"), r.In.Header.Get("Origin")}:
			default:
			}
		}
	}})
	t.Cleanup(proxy.Close)
	return strings.Replace(proxy.URL, "127.0.0.1", "localhost", 1), posts
}

// drain returns what c holds now.
func drain(c chan [2]string) [][2]string {
	var out [][2]string
	for len(c) > 0 {
		out = append(out, <-c)
	}
	return out
}

// TestBrowserCancelSendsVardesOrigin: the form on Varde's login page
// that cancels the login names Varde's origin in its Origin header, not
// "null". The cancel refuses a POST whose Origin names another site
// when a browser sends no Sec-Fetch-Site (Safari before 16.4, among
// others), and under Referrer-Policy: no-referrer such a browser sends
// "Origin: null" even with Varde's own form: the person could not
// cancel. Chromium serializes Origin by the same rule (Fetch,
// "serializing a request origin").
func TestBrowserCancelSendsVardesOrigin(t *testing.T) {
	ctx := browsertest.Start(t, browsertest.Options{Required: os.Getenv("CI") != ""})
	n := startNodeAtPath(t, "")
	varde, posts := recordPosts(t, n, "/authorize/cancel")
	callback := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("back at the service"))
	}))
	t.Cleanup(callback.Close)
	oc := shopClientAt(t, n, callback.URL+"/callback")
	oc.Endpoint.AuthURL = varde + "/authorize"
	u := oc.AuthCodeURL(rand.Text(), oauth2.S256ChallengeOption(oauth2.GenerateVerifier()), oauth2.SetAuthURLParam("nonce", rand.Text()))
	var body string
	err := browsertest.Do(ctx,
		chromedp.Navigate(u),
		chromedp.Click(`#cancel`),
		chromedp.WaitVisible(`body`),
		into(&body, chromedp.Text(`body`)),
	)
	if err != nil {
		t.Fatalf("cancel from the login page: %v", err)
	}
	got := drain(posts)
	if len(got) != 1 || got[0][0] != "same-origin" {
		t.Fatalf("POSTs to /authorize/cancel (Sec-Fetch-Site, Origin): %q, want one from Varde's login page", got)
	}
	if got[0][1] != varde {
		t.Errorf("the cancel's Origin is %q, want %q: a browser without Sec-Fetch-Site would have it refused", got[0][1], varde)
	}
	if !strings.Contains(body, "back at the service") {
		t.Errorf("after cancel the browser shows %.200q, want the service's page", body)
	}
}
