package a11ytest_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/go-jose/go-jose/v4"

	"github.com/varde-eid/varde/internal/app"
	"github.com/varde-eid/varde/internal/assurance"
	"github.com/varde-eid/varde/internal/demorp"
	"github.com/varde-eid/varde/internal/store"
)

// TestDemoBankWCAG walks the demo as a newcomer does, in every language:
// Demo Bank's home page, its page for a login that did not start there,
// then "Log in with Varde", a new test person with a passkey, Demo
// Bank's account page, and logging out back to its home page. Each Demo
// Bank page is checked as TestPagesWCAG checks Varde's: axe-core's WCAG
// 2.2 A/AA rules, the document's language and reflow at 320 CSS pixels;
// the home and account pages' skip link too.
func TestDemoBankWCAG(t *testing.T) {
	requireBrowserTests(t)
	axeSrc := axeSource(t)
	b := newBrowser(t, chromiumPath(t), axeSrc)
	bankKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	n := startNodeMounting(t, func(issuer string) func(*http.ServeMux) {
		bank := &demorp.RP{
			Name: "Demo Bank", ClientID: "demo-bank", Issuer: issuer, BaseURL: issuer + "/demo-bank",
			Key: bankKey, KeyID: "demo-bank-1",
			ACRValues:  []string{assurance.ACRSubstantial, assurance.ACRHigh},
			HTTPClient: &http.Client{Timeout: 10 * time.Second},
			Now:        time.Now,
		}
		h, err := bank.Handler()
		if err != nil {
			t.Fatal(err)
		}
		return func(mux *http.ServeMux) { mux.Handle("/demo-bank/", h) }
	})
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &bankKey.PublicKey, KeyID: "demo-bank-1", Algorithm: "ES256", Use: "sig"}}})
	if err != nil {
		t.Fatal(err)
	}
	err = n.app.Store.PutClient(context.Background(), &store.Client{
		ID: "demo-bank", Name: "Demo Bank", AuthMethod: store.AuthPrivateKeyJWT, JWKS: jwks,
		RedirectURIs:           []string{n.issuer + "/demo-bank/callback"},
		PostLogoutRedirectURIs: []string{n.issuer + "/demo-bank/"},
		RequirePAR:             true, SectorID: "demo-bank.example",
		Claims: []string{"name", "given_name", "family_name", "birthdate"},
		Source: "test", CreatedAt: time.Now(),
	})
	if err != nil {
		t.Fatal(err)
	}
	bank := n.issuer + "/demo-bank/"
	ceremony := `.passkey-ceremony[data-ceremony=enrol] [data-role=button]`
	for _, l := range app.Languages {
		lang := l.Tag
		t.Run(lang+"/home", func(t *testing.T) {
			b.visit(t, bank+"?lang="+lang, 200)
			b.audit(t, lang, "#login")
			b.targets(t)
			b.skipLink(t)
		})
		t.Run(lang+"/login not started here", func(t *testing.T) {
			b.visit(t, bank+"callback?state=unknown&code=unknown", 400)
			b.audit(t, lang, "#error")
		})
		t.Run(lang+"/login and account", func(t *testing.T) {
			b.visit(t, bank+"?lang="+lang, 200)
			b.do(t, "log in with Varde", chromedp.Click(`#login`))
			b.until(t, `location.pathname === "/login" && document.querySelector("#provider-passkey") !== null`)
			b.do(t, "choose passkey", chromedp.Click(`#provider-passkey`))
			b.until(t, `location.pathname === "/passkey/login" && document.querySelector('a[href*="/passkey/enrol"]') !== null`)
			b.do(t, "create a test person", chromedp.Click(`a[href*="/passkey/enrol"]`))
			b.do(t, "enrol",
				chromedp.WaitVisible(ceremony),
				chromedp.SendKeys(`#given_name`, "Kari"),
				chromedp.SendKeys(`#family_name`, "Nordmann"),
				chromedp.Click(ceremony),
			)
			b.until(t, `location.pathname === "/passkey/enrolled" && document.querySelector("code.codes") !== null`)
			b.do(t, "continue", chromedp.Click(`form[action="/passkey/enrolled/continue"] button`))
			b.until(t, `location.pathname === "/demo-bank/account" && document.querySelector("#welcome") !== null`)
			t.Run("account", func(t *testing.T) {
				b.audit(t, lang, "#welcome")
				b.skipLink(t)
			})

			b.do(t, "log out", chromedp.Click(`#logout`))
			b.until(t, `location.pathname === "/demo-bank/" && document.querySelector("#login") !== null`)
			t.Run("logged out", func(t *testing.T) { b.audit(t, lang, "#login") })
		})
	}
}

// TestDemoBankKeepsLevel: when Demo Bank cannot start a login (here:
// Varde does not answer), its page with the error still has the level
// the person chose checked, not the first again (WCAG 3.3.7).
func TestDemoBankKeepsLevel(t *testing.T) {
	requireBrowserTests(t)
	b := newBrowser(t, chromiumPath(t), axeSource(t))
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	bank := &demorp.RP{
		Name: "Demo Bank", ClientID: "demo-bank", Issuer: gone.URL, BaseURL: srv.URL + "/demo-bank",
		Key: key, KeyID: "demo-bank-1",
		ACRValues:  []string{assurance.ACRSubstantial, assurance.ACRHigh},
		HTTPClient: &http.Client{Timeout: 2 * time.Second},
		Now:        time.Now, Log: slog.New(slog.DiscardHandler),
	}
	bankHandler, err := bank.Handler()
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("/demo-bank/", bankHandler)
	b.visit(t, srv.URL+"/demo-bank/?lang=en", 200)
	b.do(t, "choose high and log in",
		chromedp.Click(`input[name=acr][value="`+assurance.ACRHigh+`"]`),
		chromedp.Click(`#login`),
	)
	b.until(t, `document.querySelector("#error") !== null`)
	got, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.querySelector("input[name=acr]:checked").value`))
	if err != nil || got != assurance.ACRHigh {
		t.Errorf("level checked on the error page = %q (%v), want %q, the one chosen", got, err, assurance.ACRHigh)
	}
}

// TestDemoBankLevelDescribed: the fieldset of levels on Demo Bank's home
// page is described by the hint under its legend, and, when the level
// sent is one the bank does not offer, by the error too (WCAG 1.3.1,
// 3.3.1): a screen reader entering the group hears both. The page passes
// axe-core.
func TestDemoBankLevelDescribed(t *testing.T) {
	requireBrowserTests(t)
	b := newBrowser(t, chromiumPath(t), axeSource(t))
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	bank := &demorp.RP{
		Name: "Demo Bank", ClientID: "demo-bank", Issuer: srv.URL, BaseURL: srv.URL + "/demo-bank",
		Key: key, KeyID: "demo-bank-1",
		ACRValues:  []string{assurance.ACRSubstantial, assurance.ACRHigh},
		HTTPClient: &http.Client{Timeout: 2 * time.Second},
		Now:        time.Now, Log: slog.New(slog.DiscardHandler),
	}
	bankHandler, err := bank.Handler()
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("/demo-bank/", bankHandler)
	// description is the text of the elements the fieldset's
	// aria-describedby names, in order, or why there is none.
	const description = `(() => {
		const ids = (document.querySelector("fieldset").getAttribute("aria-describedby") || "").split(/\s+/).filter(Boolean);
		if (ids.length === 0) return "no aria-describedby";
		return ids.map(id => { const e = document.getElementById(id); return e ? e.textContent.trim() : "missing #" + id; }).join(" | ");
	})()`
	want := func(t *testing.T, parts ...string) {
		t.Helper()
		got, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](description))
		if err != nil {
			t.Fatal(err)
		}
		if joined := strings.Join(parts, " | "); got != joined {
			t.Errorf("fieldset described by %q, want %q", got, joined)
		}
	}
	const hint = "A bank would choose this itself; here you can try both."
	t.Run("home", func(t *testing.T) {
		b.visit(t, srv.URL+"/demo-bank/?lang=en", 200)
		want(t, hint)
	})
	t.Run("level not offered", func(t *testing.T) {
		b.visit(t, srv.URL+"/demo-bank/?lang=en", 200)
		b.do(t, "send a level not offered",
			chromedp.Evaluate[chromedp.Void](`document.querySelector("input[name=acr]:checked").value = "urn:example:low"`),
			chromedp.Click(`#login`),
		)
		b.until(t, `document.querySelector("#error") !== null`)
		want(t, "Choose one of the levels on this page.", hint)
		b.audit(t, "en", "#error")
	})
}

// TestDemoBankLogoutVardeUnreachable: the page Demo Bank shows when
// Varde cannot be asked to end its session says so, with the link that
// asks again, and passes axe-core in every language.
func TestDemoBankLogoutVardeUnreachable(t *testing.T) {
	requireBrowserTests(t)
	b := newBrowser(t, chromiumPath(t), axeSource(t))
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	bank := &demorp.RP{
		Name: "Demo Bank", ClientID: "demo-bank", Issuer: gone.URL, BaseURL: srv.URL + "/demo-bank",
		ACRValues:  []string{assurance.ACRSubstantial, assurance.ACRHigh},
		HTTPClient: &http.Client{Timeout: 2 * time.Second},
		Now:        time.Now, Log: slog.New(slog.DiscardHandler),
	}
	bankHandler, err := bank.Handler()
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("/demo-bank/", bankHandler)
	for _, lang := range []string{"nb", "en", "da"} {
		t.Run(lang, func(t *testing.T) {
			b.visit(t, srv.URL+"/demo-bank/logout/varde?lang="+lang, http.StatusBadGateway)
			b.audit(t, lang, "#retry")
		})
	}
}
