package oidc

import (
	"context"
	"html"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/varde-eid/varde/internal/store"
)

// pendingLogin starts a front-channel login that waits at the login page
// and returns its request ID.
func pendingLogin(t *testing.T, h *harness, b *browser, state string, extra ...oauth2.AuthCodeOption) string {
	t.Helper()
	h.setLogin(false, "substantial", h.person.ID)
	tax := h.rp(taxID, taxCB)
	resp, _ := b.get(tax.authorizeURL(state, "n", oauth2.GenerateVerifier(), extra...))
	id := resp.Request.URL.Query().Get("req")
	if resp.Request.URL.Path != "/login" || id == "" {
		t.Fatalf("login not pending: ended at %s", resp.Request.URL)
	}
	return id
}

// TestCancelSendsAccessDenied: a person who cancels is sent back to the
// client with error=access_denied, state and iss (OIDC Core §3.1.2.6,
// RFC 9207), and the request cannot be resumed afterwards. The posts
// carry neither Origin nor Sec-Fetch-Site, as a program's do, and are
// let through.
func TestCancelSendsAccessDenied(t *testing.T) {
	h := newHarness(t)
	b := h.browser()
	id := pendingLogin(t, h, b, "st-cancel")
	resp, _ := b.post(h.issuer+PathCancel+"?req="+id, nil)
	q := h.callback(resp, taxCB)
	if q.Get("error") != "access_denied" || q.Get("state") != "st-cancel" || q.Get("code") != "" {
		t.Errorf("callback = %v", q)
	}
	if ev := h.auditEvents("authentication"); len(ev) != 1 || ev[0].Reason != "cancelled" || ev[0].ClientID != taxID {
		t.Errorf("audit = %+v", ev)
	}
	if resp, _ := b.get(h.issuer + PathResume + "?req=" + id); resp.StatusCode != 400 {
		t.Errorf("resume after cancel: %d, want 400", resp.StatusCode)
	}
	if resp, _ := b.post(h.issuer+PathCancel+"?req="+id, nil); resp.StatusCode != 400 {
		t.Errorf("second cancel: %d, want 400", resp.StatusCode)
	}
}

// TestCancelOnlyByPostFromVarde: opening the cancel URL (a link in a
// mail, a prefetch) shows a page asking, with a form that posts, and
// ends nothing; a post another site made the browser send is refused.
// Only the post from Varde's own page ends the login.
func TestCancelOnlyByPostFromVarde(t *testing.T) {
	h := newHarness(t)
	b := h.browser()
	id := pendingLogin(t, h, b, "st-cancel")
	u := h.issuer + PathCancel + "?req=" + url.QueryEscape(id)
	stillWaiting := func(what string) {
		t.Helper()
		if _, err := h.db.GetAuthRequest(context.Background(), id, h.clock.Now()); err != nil {
			t.Fatalf("%s ended the login: %v", what, err)
		}
		if ev := h.auditEvents("authentication"); len(ev) != 0 {
			t.Fatalf("%s: audit = %+v", what, ev)
		}
	}
	if resp, _ := b.get(u); resp.StatusCode != http.StatusOK || resp.Header.Get("Location") != "" {
		t.Errorf("GET cancel: %d, Location %q; want the page asking", resp.StatusCode, resp.Header.Get("Location"))
	}
	stillWaiting("GET")
	r, err := http.NewRequest(http.MethodPost, u, strings.NewReader(""))
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Sec-Fetch-Site", "cross-site")
	r.Header.Set("Origin", "https://attacker.example")
	resp, err := b.c.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site POST cancel: %d, want 403", resp.StatusCode)
	}
	stillWaiting("a cross-site POST")
	r.Header.Set("Sec-Fetch-Site", "same-origin")
	r.Header.Set("Origin", h.issuer)
	r.Body = io.NopCloser(strings.NewReader(""))
	resp, err = b.c.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if q := h.callback(resp, taxCB); q.Get("error") != "access_denied" {
		t.Errorf("same-origin POST cancel: %v", q)
	}
}

// TestCancelPageLeadsBackToTheLogin: the page asking whether to stop a
// login links back to that login's page, so a person who changes their
// mind need not find the browser's back button.
func TestCancelPageLeadsBackToTheLogin(t *testing.T) {
	h := newHarness(t)
	b := h.browser()
	id := pendingLogin(t, h, b, "st-cancel")
	resp, page := b.get(h.issuer + PathCancel + "?req=" + url.QueryEscape(id))
	link := `<a id="continue" href="` + html.EscapeString(h.p.LoginURL(id)) + `">`
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, link) {
		t.Errorf("cancel page: %d, want a link %s back to the login:\n%s", resp.StatusCode, link, page)
	}
}

// TestLoginPreferencesReachTheBroker: ui_locales and login_hint
// (OIDC Core §3.1.2.1) are kept with the request for the login pages.
func TestLoginPreferencesReachTheBroker(t *testing.T) {
	h := newHarness(t)
	b := h.browser()
	id := pendingLogin(t, h, b, "st", oauth2.SetAuthURLParam("ui_locales", "en-GB nb"), oauth2.SetAuthURLParam("login_hint", "kari@example.no"))
	req, err := h.db.GetAuthRequest(context.Background(), id, h.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(req.UILocales, []string{"en-GB", "nb"}) || req.LoginHint != "kari@example.no" {
		t.Errorf("ui_locales = %q, login_hint = %q", req.UILocales, req.LoginHint)
	}
}

// TestProviderHintParameter: Varde's provider_hint is kept with the
// request for the broker; a malformed one is an invalid_request at the
// client's redirect URI.
func TestProviderHintParameter(t *testing.T) {
	h := newHarness(t)
	b := h.browser()
	id := pendingLogin(t, h, b, "st", oauth2.SetAuthURLParam("provider_hint", "bankid"))
	req, err := h.db.GetAuthRequest(context.Background(), id, h.clock.Now())
	if err != nil || req.ProviderHint != "bankid" {
		t.Fatalf("provider_hint = %v (%v)", req, err)
	}
	tax := h.rp(taxID, taxCB)
	resp, _ := b.get(tax.authorizeURL("st", "n", oauth2.GenerateVerifier(), oauth2.SetAuthURLParam("provider_hint", "Bank ID!")))
	if q := h.callback(resp, taxCB); q.Get("error") != "invalid_request" || q.Get("state") != "st" {
		t.Errorf("malformed provider_hint: %v", q)
	}
}

// TestGoingBackWithNoWayInSaysWhy: a person who goes back to the client
// from a page that offered no way to log in did not cancel. The client
// gets temporarily_unavailable when every way it accepts is down, and
// unmet_authentication_requirements when none can reach the level it
// asked for, each with state and iss and a description that says what
// to do; access_denied only when a way was on offer. The audit event
// and varde_oidc_errors_total say the same: an operator counting the
// people an outage kept out does not see them as people who chose not
// to log in.
func TestGoingBackWithNoWayInSaysWhy(t *testing.T) {
	for _, tc := range []struct {
		ways               WaysIn
		code, want, reason string
	}{
		{WaysOffered, "access_denied", "the person cancelled the login", "cancelled"},
		{WaysDown, "temporarily_unavailable", "try again later", "no_provider_available"},
		{WaysNone, "unmet_authentication_requirements", "ask for a lower level in acr_values", "insufficient_level"},
	} {
		t.Run(tc.code, func(t *testing.T) {
			h := newHarness(t)
			var asked *store.AuthRequest
			h.p.WaysIn = func(req *store.AuthRequest, c *store.Client) WaysIn {
				if c.ID != taxID {
					t.Errorf("WaysIn asked for client %s, want %s", c.ID, taxID)
				}
				asked = req
				return tc.ways
			}
			b := h.browser()
			id := pendingLogin(t, h, b, "st-back")
			resp, _ := b.post(h.issuer+PathCancel+"?req="+id, nil)
			q := h.callback(resp, taxCB)
			if q.Get("error") != tc.code || !strings.Contains(q.Get("error_description"), tc.want) ||
				q.Get("state") != "st-back" || q.Get("iss") != h.issuer || q.Get("code") != "" {
				t.Errorf("callback = %v, want error %s with %q", q, tc.code, tc.want)
			}
			if asked == nil || asked.ID != id {
				t.Errorf("WaysIn was asked about %+v, want request %s", asked, id)
			}
			if ev := h.auditEvents("authentication"); len(ev) != 1 || ev[0].Reason != tc.reason ||
				ev[0].Result != store.ResultFailure || ev[0].ClientID != taxID {
				t.Errorf("audit = %+v, want one failure with reason %s", ev, tc.reason)
			}
			for _, code := range []string{"access_denied", "temporarily_unavailable", "unmet_authentication_requirements"} {
				want := 0.0
				if code == tc.code {
					want = 1
				}
				if got := h.counter("varde_oidc_errors_total", map[string]string{"endpoint": "cancel", "error": code}); got != want {
					t.Errorf("varde_oidc_errors_total{endpoint=cancel,error=%s} = %v, want %v", code, got, want)
				}
			}
		})
	}
}

// TestBlockedPersonGoingBackIsACancel: a person whose Varde identity is
// blocked, going back from the login page their browser is sent to, is
// a cancel like any other: access_denied, an event with reason
// cancelled that names nobody, and nothing that tells the service of
// the block.
func TestBlockedPersonGoingBackIsACancel(t *testing.T) {
	h := newHarness(t)
	h.p.WaysIn = func(*store.AuthRequest, *store.Client) WaysIn { return WaysOffered }
	b := h.browser()
	h.code(b, oauth2.GenerateVerifier())
	if _, err := h.db.BlockPerson(context.Background(), h.person.ID, "stolen phone", h.clock.Now(), nil); err != nil {
		t.Fatal(err)
	}
	before := len(h.auditEvents("authentication"))
	id := pendingLogin(t, h, b, "st-blocked")
	resp, _ := b.post(h.issuer+PathCancel+"?req="+id, nil)
	q := h.callback(resp, taxCB)
	if q.Get("error") != "access_denied" || q.Get("error_description") != "the person cancelled the login" || q.Get("state") != "st-blocked" {
		t.Errorf("callback = %v, want a plain cancel", q)
	}
	ev := h.auditEvents("authentication")[before:]
	if len(ev) != 1 || ev[0].Reason != "cancelled" || ev[0].PersonID != "" {
		t.Errorf("audit = %+v, want one cancel that names nobody", ev)
	}
}
