package oidc

import (
	"context"
	"slices"
	"testing"

	"golang.org/x/oauth2"
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
// RFC 9207), and the request cannot be resumed afterwards.
func TestCancelSendsAccessDenied(t *testing.T) {
	h := newHarness(t)
	b := h.browser()
	id := pendingLogin(t, h, b, "st-cancel")
	resp, _ := b.get(h.issuer + PathCancel + "?req=" + id)
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
	if resp, _ := b.get(h.issuer + PathCancel + "?req=" + id); resp.StatusCode != 400 {
		t.Errorf("second cancel: %d, want 400", resp.StatusCode)
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
