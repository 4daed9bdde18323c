package oidc

import (
	"crypto/rand"
	"html"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"
)

// TestCrossSitePostIsPostedAgain: an authorization request a relying
// party's page posts from its own site reaches Varde without Varde's
// cookies (SameSite=Lax), so it is answered with a page that posts the
// same form again from Varde's origin (ADR 58): nothing is marked or
// stored on that hop, the parameters stay out of every URL, and the
// request posted again, with the browser's cookies, is answered from
// the person's single sign-on session. A browser that sends no
// Sec-Fetch-Site is judged by Origin; a POST with neither (not a
// browser's cross-site one) is served as it came.
func TestCrossSitePostIsPostedAgain(t *testing.T) {
	h := newHarness(t)
	tax := h.rp(taxID, taxCB)
	b := h.browser()
	tax.loginFront(b)
	verifier, state, nonce := oauth2.GenerateVerifier(), rand.Text(), rand.Text()
	u, err := url.Parse(tax.authorizeURL(state, nonce, verifier, oauth2.SetAuthURLParam("login_hint", "kari@example.no")))
	if err != nil {
		t.Fatal(err)
	}
	form := u.Query()
	post := func(c *http.Client, header http.Header) (*http.Response, string) {
		t.Helper()
		return postForm(t, c, h.issuer+PathAuthorize, form, header)
	}
	bare := bareClient()
	for name, header := range map[string]http.Header{
		"Sec-Fetch-Site":           {"Sec-Fetch-Site": {"cross-site"}, "Origin": {"https://tax.example"}},
		"Origin without Sec-Fetch": {"Origin": {"https://tax.example"}},
	} {
		res, body := post(bare, header)
		if res.StatusCode != http.StatusOK || res.Header.Get("Location") != "" || len(res.Cookies()) != 0 ||
			res.Header.Get("Cache-Control") != "no-store" || !strings.Contains(body, `action="`+PathAuthorize+`"`) {
			t.Fatalf("%s: %d Location %q cookies %v Cache-Control %q\n%.400s", name, res.StatusCode,
				res.Header.Get("Location"), res.Cookies(), res.Header.Get("Cache-Control"), body)
		}
		if got := postedFields(body); got.Encode() != form.Encode() {
			t.Errorf("%s: the page posts %v, want %v", name, got, form)
		}
	}
	if n := h.logins.Load(); n != 1 {
		t.Fatalf("logins = %d after the cross-site posts, want 1", n)
	}
	// Posted again from Varde's page: the browser's cookies come along,
	// and the session answers it.
	res, _ := post(b.c, http.Header{"Sec-Fetch-Site": {"same-origin"}, "Origin": {h.issuer}})
	q := h.callback(res, taxCB)
	if q.Get("state") != state || q.Get("code") == "" || h.logins.Load() != 1 {
		t.Fatalf("posted again: callback %v, logins %d", q, h.logins.Load())
	}
	tax.finish(q.Get("code"), verifier, nonce)
	// A POST no browser made cross-site is served as it came.
	form.Set("state", rand.Text())
	res, _ = post(bare, nil)
	if loc := res.Header.Get("Location"); res.StatusCode != http.StatusSeeOther || strings.HasPrefix(loc, taxCB) {
		t.Errorf("a POST without Sec-Fetch-Site or Origin: %d Location %q, want the way to log in", res.StatusCode, loc)
	}
}

// TestCrossSiteLogoutIsPostedAgain: a logout a relying party's page
// posts from its own site (RP-Initiated Logout 1.0 §2) reaches Varde
// without the session cookie, so on its own it would end nothing while
// sending the person back as if logged out. It is answered with the
// page that posts the same form again from Varde's origin: the session
// lives on through that hop, and the form posted again, with the
// browser's cookies, ends it.
func TestCrossSiteLogoutIsPostedAgain(t *testing.T) {
	h := newHarness(t)
	bank := h.rp(bankID, bankCB)
	b := h.browser()
	l := h.loginBank(bank, b)
	hint, _ := l.token.Extra("id_token").(string)
	form := url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {bankBye}, "state": {"bye-state"}}
	post := func(c *http.Client, header http.Header) (*http.Response, string) {
		t.Helper()
		return postForm(t, c, h.issuer+PathLogout, form, header)
	}
	bare := bareClient()
	res, body := post(bare, http.Header{"Sec-Fetch-Site": {"cross-site"}, "Origin": {"https://bank.example"}})
	if res.StatusCode != http.StatusOK || res.Header.Get("Location") != "" || len(res.Cookies()) != 0 ||
		res.Header.Get("Cache-Control") != "no-store" || !strings.Contains(body, `action="`+PathLogout+`"`) ||
		!strings.Contains(body, "Fortsett utloggingen") {
		t.Fatalf("cross-site logout: %d Location %q cookies %v\n%.600s", res.StatusCode, res.Header.Get("Location"), res.Cookies(), body)
	}
	if got := postedFields(body); got.Encode() != form.Encode() {
		t.Errorf("the page posts %v, want %v", got, form)
	}
	if n := len(h.auditEvents("logout")); n != 0 {
		t.Fatalf("%d logouts audited on the cross-site hop, want none", n)
	}
	// Still logged in: prompt=none is answered with a code.
	still := func() bool {
		f := bankForm(rand.Text(), rand.Text(), oauth2.GenerateVerifier())
		f.Set("prompt", "none")
		authURL, _, _ := h.pushBank(f)
		resp, _ := b.get(authURL)
		return h.callback(resp, bankCB).Get("code") != ""
	}
	if !still() {
		t.Fatal("the session ended on the cross-site hop")
	}
	// Posted again from Varde's page, with the browser's cookies: the
	// session ends and the person goes back to the service.
	res, _ = post(b.c, http.Header{"Sec-Fetch-Site": {"same-origin"}, "Origin": {h.issuer}})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != bankBye+"?state=bye-state" {
		t.Fatalf("posted again: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	if still() || len(h.auditEvents("logout")) != 1 {
		t.Fatalf("after the logout posted again: still logged in %v, %d logouts audited", still(), len(h.auditEvents("logout")))
	}
}

// postForm posts form to u with client c and the extra header, and
// returns the answer and its body.
func postForm(t *testing.T, c *http.Client, u string, form url.Values, header http.Header) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range header {
		req.Header[k] = v
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res, string(body)
}

// bareClient is a browser without a cookie jar, as a cross-site POST
// carries none of Varde's cookies, that does not follow redirects.
func bareClient() *http.Client {
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// postedFields are the hidden fields of the repost page body: what it
// posts again.
func postedFields(body string) url.Values {
	got := url.Values{}
	for _, m := range hiddenField.FindAllStringSubmatch(body, -1) {
		got.Add(html.UnescapeString(m[1]), html.UnescapeString(m[2]))
	}
	return got
}
