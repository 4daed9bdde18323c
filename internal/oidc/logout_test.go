package oidc

import (
	"bytes"
	"context"
	"html"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"

	"github.com/varde-eid/varde/internal/keys"
)

func TestLogoutWithHint(t *testing.T) {
	h := newHarness(t)
	bank := h.rp(bankID, bankCB)
	b := h.browser()
	l := h.loginBank(bank, b)
	hint, _ := l.token.Extra("id_token").(string)

	q := url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {bankBye}, "state": {"bye-state"}}
	resp, _ := b.get(h.issuer + PathLogout + "?" + q.Encode())
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != bankBye+"?state=bye-state" {
		t.Fatalf("logout: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	// The session is gone: prompt=none now fails.
	f := bankForm("s", "n", oauth2.GenerateVerifier())
	f.Set("prompt", "none")
	authURL, _, _ := h.pushBank(f)
	resp, _ = b.get(authURL)
	if q := h.callback(resp, bankCB); q.Get("error") != "login_required" {
		t.Fatalf("after logout: %v", q)
	}
	// Tokens already issued are not revoked by logout.
	if h.userinfoStatus(l.token.AccessToken) != 200 {
		t.Fatal("logout revoked an access token")
	}
	if len(h.auditEvents("logout")) != 1 {
		t.Fatal("logout not audited")
	}
	// An expired hint still identifies the client (RP-Initiated Logout §2).
	h.clock.Add(DefaultIDTokenLifetime * 3)
	resp, body := b.get(h.issuer + PathLogout + "?" + q.Encode())
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("expired hint: %d %s", resp.StatusCode, body)
	}
}

func TestLogoutNeedsConfirmationWithoutHint(t *testing.T) {
	h := newHarness(t)
	h.p.AccountURL = "/account"
	tax := h.rp(taxID, taxCB)
	b := h.browser()
	tax.loginFront(b)
	resp, page := b.get(h.issuer + PathLogout + "?client_id=" + bankID + "&post_logout_redirect_uri=" + url.QueryEscape(bankBye) + "&state=x")
	if resp.StatusCode != 200 || !strings.Contains(page, `name="confirm" value="yes"`) || !strings.Contains(page, `name="state" value="x"`) {
		t.Fatalf("no confirmation page: %d\n%s", resp.StatusCode, page)
	}
	// A person who does not want to log out has a way back.
	if !strings.Contains(page, `<a href="/account">`) {
		t.Errorf("confirmation page has no link back to the account:\n%s", page)
	}
	// The session survives an unconfirmed request.
	if _, err := h.sessions.Current(sessionRequest(b, h.issuer)); err != nil {
		t.Fatal("session ended without confirmation")
	}
	resp, _ = b.confirmLogout(url.Values{"client_id": {bankID}, "post_logout_redirect_uri": {bankBye}, "state": {"x"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != bankBye+"?state=x" {
		t.Fatalf("confirmed logout: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if _, err := h.sessions.Current(sessionRequest(b, h.issuer)); err == nil {
		t.Fatal("session survived logout")
	}
}

// TestLoggedOutPageLeadsOn: the page that says a person is logged out,
// when no service asked to have them back, is not a dead end: it leads
// to logging in to their account again. Without an account page it
// shows no link.
func TestLoggedOutPageLeadsOn(t *testing.T) {
	for _, account := range []string{"/account", ""} {
		h := newHarness(t)
		h.p.AccountURL = account
		tax := h.rp(taxID, taxCB)
		b := h.browser()
		tax.loginFront(b)
		resp, page := b.confirmLogout(url.Values{})
		if resp.StatusCode != http.StatusOK || strings.Contains(page, `name="confirm"`) {
			t.Fatalf("logged out page: %d\n%s", resp.StatusCode, page)
		}
		link := `<a id="login-again" href="/account">`
		if got := strings.Contains(page, link); got != (account != "") {
			t.Errorf("account URL %q: logged out page has %s: %v, want %v\n%s", account, link, got, account != "", page)
		}
	}
}

// hiddenField matches a hidden field of a page.
var hiddenField = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)

// confirmLogout asks to log out with params, as a relying party's link
// would, and submits the confirmation page b is shown, as the person
// would.
func (b *browser) confirmLogout(params url.Values) (*http.Response, string) {
	b.h.t.Helper()
	resp, page := b.get(b.h.issuer + PathLogout + "?" + params.Encode())
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `name="confirm"`) {
		b.h.t.Fatalf("no confirmation page: %d\n%s", resp.StatusCode, page)
	}
	form := url.Values{}
	for _, m := range hiddenField.FindAllStringSubmatch(page, -1) {
		form.Add(html.UnescapeString(m[1]), html.UnescapeString(m[2]))
	}
	return b.post(b.h.issuer+PathLogout, form)
}

// TestLogoutConfirmationNeedsItsToken: a confirmation posted without the
// token of the page shown to this session, as a form on another site (a
// sibling subdomain's, whose post carries the SameSite=Lax cookie) would
// post it, or with the token of an earlier session, ends nothing and says
// so; the page's own form logs out.
func TestLogoutConfirmationNeedsItsToken(t *testing.T) {
	h := newHarness(t)
	tax := h.rp(taxID, taxCB)
	b := h.browser()
	tax.loginFront(b)
	_, page := b.get(h.issuer + PathLogout)
	m := regexp.MustCompile(`name="confirm_token" value="([^"]+)"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("confirmation page without a token:\n%s", page)
	}
	// A new login: the old page's token is no longer good.
	tax.loginFront(b, oauth2.SetAuthURLParam("prompt", "login"))
	for name, form := range map[string]url.Values{
		"no token":        {"confirm": {"yes"}},
		"wrong token":     {"confirm": {"yes"}, "confirm_token": {"x" + m[1][1:]}},
		"earlier session": {"confirm": {"yes"}, "confirm_token": {m[1]}},
	} {
		resp, page := b.post(h.issuer+PathLogout, form)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "Du er fortsatt logget inn") {
			t.Errorf("%s: %d\n%s", name, resp.StatusCode, page)
		}
		if _, err := h.sessions.Current(sessionRequest(b, h.issuer)); err != nil {
			t.Fatalf("%s: session ended", name)
		}
	}
	if resp, page := b.confirmLogout(nil); resp.StatusCode != http.StatusOK || !strings.Contains(page, "Du er logget ut") {
		t.Fatalf("confirmed logout: %d\n%s", resp.StatusCode, page)
	}
	if _, err := h.sessions.Current(sessionRequest(b, h.issuer)); err == nil {
		t.Fatal("session survived logout")
	}
}

func TestLogoutRedirectRules(t *testing.T) {
	h := newHarness(t)
	bank := h.rp(bankID, bankCB)
	tests := []struct {
		name   string
		params func(hint string) url.Values
		fresh  bool // use a browser without a session
		status int
		loc    string
		page   string
	}{
		{"unregistered uri", func(hint string) url.Values {
			return url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {"https://evil.example/"}}
		}, false, 200, "", "Du er logget ut"},
		{"uri of no client", func(string) url.Values {
			return url.Values{"post_logout_redirect_uri": {bankBye}}
		}, true, 200, "", "Du er logget ut"},
		{"no hint, session: confirm first", func(string) url.Values {
			return url.Values{"client_id": {bankID}, "post_logout_redirect_uri": {bankBye}}
		}, false, 200, "", `name="confirm"`},
		{"hint for another client_id", func(hint string) url.Values {
			return url.Values{"id_token_hint": {hint}, "client_id": {taxID}}
		}, false, 400, "", "Vi kunne ikke logge deg ut"},
		{"forged hint", func(hint string) url.Values {
			return url.Values{"id_token_hint": {hint[:len(hint)-4] + "AAAA"}}
		}, false, 400, "", "Vi kunne ikke logge deg ut"},
		{"hint repeated", func(hint string) url.Values {
			return url.Values{"id_token_hint": {hint, hint}}
		}, false, 400, "", "Vi kunne ikke logge deg ut"},
		{"no session, valid redirect", func(hint string) url.Values {
			return url.Values{"client_id": {bankID}, "post_logout_redirect_uri": {bankBye}}
		}, true, 303, bankBye, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := h.browser()
			l := h.loginBank(bank, b)
			hint, _ := l.token.Extra("id_token").(string)
			if tt.fresh {
				b = h.browser()
			}
			resp, page := b.get(h.issuer + PathLogout + "?" + tt.params(hint).Encode())
			if resp.StatusCode != tt.status || resp.Header.Get("Location") != tt.loc || !strings.Contains(page, tt.page) {
				t.Fatalf("%d %q\n%s", resp.StatusCode, resp.Header.Get("Location"), page)
			}
			// A refused logout is no login: the person is not told to
			// start one again.
			if strings.Contains(page, "innloggingen") {
				t.Errorf("the page speaks of a login:\n%s", page)
			}
		})
	}
}

// TestLogoutHintMustBeAnIDToken: RP-Initiated Logout 1.0 §2 — the
// id_token_hint is an ID token this OP issued. A logout token or a
// status Security Event Token, signed with the same key and naming the
// client as its audience, is not one: typed otherwise (RFC 8725 §3.11),
// it is refused and identifies no client to redirect to.
func TestLogoutHintMustBeAnIDToken(t *testing.T) {
	h := newHarness(t)
	l := h.loginBank(h.rp(bankID, bankCB), h.browser())
	raw, _ := l.token.Extra("id_token").(string)
	claims := idTokenClaims(t, raw)
	tests := []struct {
		typ    string
		status int
		loc    string
	}{
		{"JWT", http.StatusSeeOther, bankBye},
		{LogoutTokenTyp, http.StatusBadRequest, ""},
		{"secevent+jwt", http.StatusBadRequest, ""},
	}
	for _, tt := range tests {
		t.Run(tt.typ, func(t *testing.T) {
			hint, err := h.p.Signer.SignTyped(claims, tt.typ)
			if err != nil {
				t.Fatal(err)
			}
			q := url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {bankBye}}
			resp, page := h.browser().get(h.issuer + PathLogout + "?" + q.Encode())
			if resp.StatusCode != tt.status || resp.Header.Get("Location") != tt.loc {
				t.Fatalf("%d %q\n%s", resp.StatusCode, resp.Header.Get("Location"), page)
			}
		})
	}
}

// TestLogoutStoreFails: a session the store could not end is not
// reported as logged out, and the person is sent nowhere.
func TestLogoutStoreFails(t *testing.T) {
	h := newHarness(t)
	bank := h.rp(bankID, bankCB)
	b := h.browser()
	l := h.loginBank(bank, b)
	hint, _ := l.token.Extra("id_token").(string)
	if _, err := h.db.Pools()["write"].Exec(`CREATE TRIGGER no_delete BEFORE DELETE ON sessions BEGIN SELECT RAISE(ABORT, 'disk says no'); END`); err != nil {
		t.Fatal(err)
	}
	q := url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {bankBye}, "state": {"bye-state"}}
	resp, body := b.get(h.issuer + PathLogout + "?" + q.Encode())
	if resp.StatusCode != http.StatusInternalServerError || resp.Header.Get("Location") != "" {
		t.Fatalf("logout with a failing store: %d %q\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	if len(h.auditEvents("logout")) != 0 {
		t.Fatal("a logout that did not happen was audited")
	}
}

// TestPagesRefuseOversizeBody: a form posted to the authorization or
// logout endpoint that is larger than MaxBodySize is refused as too
// large (413), not as malformed.
func TestPagesRefuseOversizeBody(t *testing.T) {
	h := newHarness(t)
	for _, path := range []string{PathAuthorize, PathLogout} {
		t.Run(path, func(t *testing.T) {
			body := "state=" + strings.Repeat("a", MaxBodySize)
			resp, err := http.Post(h.issuer+path, "application/x-www-form-urlencoded", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestEntityTooLarge {
				t.Fatalf("POST %s with %d bytes: %d, want 413", path, len(body), resp.StatusCode)
			}
		})
	}
}

// TestLogoutIgnoredRedirectIsLogged: a post_logout_redirect_uri that is
// not used leaves the person on Varde's page with nothing for the
// service, so the node's log says why, for the developer who wonders:
// no client identified (neither id_token_hint nor client_id), or a URI
// the client did not register. The URI itself is not logged: it is the
// service's, and may carry what it should not have put there.
func TestLogoutIgnoredRedirectIsLogged(t *testing.T) {
	h := newHarness(t)
	var logs bytes.Buffer
	h.p.Log = slog.New(slog.NewTextHandler(&logs, nil))
	for _, tt := range []struct {
		name   string
		params url.Values
		want   string
	}{
		{"no client", url.Values{"post_logout_redirect_uri": {bankBye + "?secret=s3cret"}}, "no client identified: send id_token_hint or client_id"},
		{"unregistered", url.Values{"client_id": {bankID}, "post_logout_redirect_uri": {"https://bank.example/elsewhere?secret=s3cret"}},
			"not one the client registered"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			logs.Reset()
			resp, page := h.browser().get(h.issuer + PathLogout + "?" + tt.params.Encode())
			if resp.StatusCode != http.StatusOK || !strings.Contains(page, "Du er logget ut") {
				t.Fatalf("%d\n%s", resp.StatusCode, page)
			}
			got := logs.String()
			if !strings.Contains(got, "post_logout_redirect_uri") || !strings.Contains(got, tt.want) || strings.Contains(got, "s3cret") {
				t.Errorf("log %q, want why post_logout_redirect_uri was not used (%q), without the URI", got, tt.want)
			}
		})
	}
}

// TestLogoutHintOfARetiredKeyAsksFirst: an ID token the node signed with
// a key since retired (ADR 18) is no longer one the node can tell it
// issued, but it is the relying party's hint all the same, sent with the
// person it logs out: the logout goes on as one without a hint does,
// asking the person to confirm, and never ends on an error page.
func TestLogoutHintOfARetiredKeyAsksFirst(t *testing.T) {
	h := newHarness(t)
	b := h.browser()
	l := h.loginBank(h.rp(bankID, bankCB), b)
	hint, _ := l.token.Extra("id_token").(string)
	if _, err := h.db.RetirePublicKey(context.Background(), h.p.Signer.KID(), h.clock.Now(), nil); err != nil {
		t.Fatal(err)
	}
	h.clock.Add(time.Hour)
	resp, _ := b.confirmLogout(url.Values{"id_token_hint": {hint}, "client_id": {bankID}, "post_logout_redirect_uri": {bankBye}, "state": {"x"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != bankBye+"?state=x" {
		t.Fatalf("confirmed logout: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if _, err := h.sessions.Current(sessionRequest(b, h.issuer)); err == nil {
		t.Fatal("session survived logout")
	}
}

// idTokenClaims are the claims of raw, an ID token the node issued, to
// be signed again as another token.
func idTokenClaims(t *testing.T, raw string) map[string]any {
	t.Helper()
	idt, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{keys.Algorithm})
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := idt.UnsafeClaimsWithoutVerification(&claims); err != nil {
		t.Fatal(err)
	}
	return claims
}
