package oidc

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"

	oa "github.com/varde-eid/varde/internal/oauth2"
	"github.com/varde-eid/varde/internal/store"
)

// revoke posts a revocation request (RFC 7009 §2.1) with optional Basic
// credentials and returns the status, headers and raw body.
func (h *harness) revoke(form url.Values, basicID string) (int, http.Header, string) {
	h.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, h.issuer+PathRevocation, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basicID != "" {
		req.SetBasicAuth(url.QueryEscape(basicID), url.QueryEscape(h.secrets[basicID]))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(body)
}

// grantOf returns the ID of the grant token value tok was issued under.
func (h *harness) grantOf(tok string) string {
	h.t.Helper()
	t, err := h.db.GetToken(context.Background(), hash(tok))
	if err != nil {
		h.t.Fatalf("token not stored: %v", err)
	}
	return t.GrantID
}

// revokeOK posts a revocation request and fails t unless the answer is
// RFC 7009 §2.2's: 200, an empty body, not to be cached.
func (h *harness) revokeOK(t *testing.T, form url.Values, basicID string) {
	t.Helper()
	status, hdr, body := h.revoke(form, basicID)
	if status != http.StatusOK || body != "" || hdr.Get("Cache-Control") != "no-store" {
		t.Fatalf("revocation: %d Cache-Control %q body %q, want 200, no-store, empty", status, hdr.Get("Cache-Control"), body)
	}
}

// TestRevokeRevokesTheGrant: RFC 7009 §2.1 — a client revokes a token
// issued to it, authenticated as at the token endpoint (Basic,
// private_key_jwt, or a public client's client_id), and the whole grant
// goes with it: revoking the refresh token stops the access token
// (SHOULD), revoking the access token stops the refresh token (MAY,
// which Varde does). The hint is only a hint. Each revocation is
// audited, without a token value.
func TestRevokeRevokesTheGrant(t *testing.T) {
	h := newHarness(t)
	tax, bank, kiosk := h.rp(taxID, taxCB), h.rp(bankID, bankCB), h.rp(publicID, kioskCB)
	// RFC 8414 §2: the relying party finds the endpoint in the metadata.
	var meta struct {
		Endpoint string `json:"revocation_endpoint"`
	}
	if err := tax.provider.Claims(&meta); err != nil || meta.Endpoint != h.issuer+PathRevocation {
		t.Fatalf("revocation_endpoint = %q (%v), want %s", meta.Endpoint, err, h.issuer+PathRevocation)
	}
	taxLogin := func() *login { return tax.loginFront(h.browser()) }
	bankLogin := func() *login { return h.loginBank(bank, h.browser()) }
	kioskLogin := func() *login { return kiosk.loginFront(h.browser()) }
	noAuth := func(f url.Values) url.Values { return f }
	publicAuth := func(f url.Values) url.Values { f.Set("client_id", publicID); return f }
	access := func(l *login) string { return l.token.AccessToken }
	refresh := func(l *login) string { return l.token.RefreshToken }
	tests := []struct {
		name   string
		login  func() *login
		client string                      // Basic client, or ""
		auth   func(url.Values) url.Values // adds the form's client authentication
		token  func(*login) string
		hint   []string
		kind   string // what the audit event says was revoked
	}{
		{"refresh token", taxLogin, taxID, noAuth, refresh, []string{"refresh_token"}, "refresh_token"},
		{"access token", taxLogin, taxID, noAuth, access, []string{"access_token"}, "access_token"},
		{"access token without hint", taxLogin, taxID, noAuth, access, nil, "access_token"},
		{"refresh token hinted as access token", taxLogin, taxID, noAuth, refresh, []string{"access_token"}, "refresh_token"},
		{"private_key_jwt client", bankLogin, "", h.bankAuth, refresh, []string{"refresh_token"}, "refresh_token"},
		{"public client, refresh token", kioskLogin, "", publicAuth, refresh, []string{"refresh_token"}, "refresh_token"},
		{"public client, access token", kioskLogin, "", publicAuth, access, nil, "access_token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := tt.login()
			clientID := l.claims.AZP
			grant := h.grantOf(l.token.AccessToken)
			if h.userinfoStatus(l.token.AccessToken) != http.StatusOK {
				t.Fatal("access token does not work before revocation")
			}
			h.revokeOK(t, tt.auth(url.Values{"token": {tt.token(l)}, "token_type_hint": tt.hint}), tt.client)

			if status := h.userinfoStatus(l.token.AccessToken); status != http.StatusUnauthorized {
				t.Errorf("userinfo after revocation: %d, want 401", status)
			}
			status, _, body := h.postForm(PathToken, tt.auth(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {l.token.RefreshToken}}), tt.client)
			if status != http.StatusBadRequest || body["error"] != "invalid_grant" {
				t.Errorf("refresh after revocation: %d %v, want invalid_grant", status, body)
			}
			var events []*store.AuditEvent
			for _, e := range h.auditEvents("token") {
				if e.Details["grant"] == grant && e.Details["revoked"] != "" {
					events = append(events, e)
				}
			}
			if len(events) != 1 || events[0].Result != store.ResultSuccess || events[0].Details["revoked"] != tt.kind ||
				events[0].ClientID != clientID || events[0].PersonID != h.person.ID {
				t.Fatalf("revocation events of grant %s: %+v", grant, events)
			}

			// Revoking again, or the token's sibling, changes nothing and
			// is answered the same way.
			h.revokeOK(t, tt.auth(url.Values{"token": {l.token.AccessToken}}), tt.client)
			h.revokeOK(t, tt.auth(url.Values{"token": {l.token.RefreshToken}}), tt.client)
			n := 0
			for _, e := range h.auditEvents("token") {
				if e.Details["grant"] == grant && e.Details["revoked"] != "" {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("%d revocation events after revoking again, want 1", n)
			}
			raw, err := json.Marshal(h.auditEvents("token"))
			if err != nil {
				t.Fatal(err)
			}
			for _, secret := range []string{l.token.AccessToken, l.token.RefreshToken} {
				if strings.Contains(string(raw), secret) {
					t.Fatal("a token value is in the audit log")
				}
			}
		})
	}
	if v := h.counter("varde_token_revocations_total", map[string]string{"result": "revoked"}); v != float64(len(tests)) {
		t.Errorf("revoked metric = %v, want %d", v, len(tests))
	}
	if v := h.counter("varde_token_revocations_total", map[string]string{"result": "already_revoked"}); v != float64(2*len(tests)) {
		t.Errorf("already_revoked metric = %v, want %d", v, 2*len(tests))
	}
}

// TestRevokeExpiredToken: an access token past its expiry is invalid,
// so its revocation is answered 200 (RFC 7009 §2.2); it still names its
// grant, and the relying party that sends it is ending the login, so
// the grant is revoked and its refresh token stops working.
func TestRevokeExpiredToken(t *testing.T) {
	h := newHarness(t)
	l := h.rp(taxID, taxCB).loginFront(h.browser())
	h.clock.Add(DefaultAccessTokenLifetime + time.Second)
	h.revokeOK(t, url.Values{"token": {l.token.AccessToken}, "token_type_hint": {"access_token"}}, taxID)
	status, _, body := h.postForm(PathToken, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {l.token.RefreshToken}}, taxID)
	if status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Fatalf("refresh after revoking the expired access token: %d %v", status, body)
	}
}

// TestRevokeOnlyTheClientsOwnTokens: RFC 7009 §2.1 — a token issued to
// another client is not revoked and the request is refused, while §2.2
// — an unknown token, or one that is not Varde's to revoke (an ID
// token), gets the empty 200.
func TestRevokeOnlyTheClientsOwnTokens(t *testing.T) {
	h := newHarness(t)
	l := h.rp(taxID, taxCB).loginFront(h.browser())
	idToken, _ := l.token.Extra("id_token").(string)
	tests := []struct {
		name   string
		client string // Basic client, or ""
		form   url.Values
		// refused: §2.1, another client's token is refused with
		// unauthorized_client; otherwise §2.2's empty 200.
		refused bool
	}{
		{"another client's refresh token", mobileID, url.Values{"token": {l.token.RefreshToken}, "token_type_hint": {"refresh_token"}}, true},
		{"another client's access token", mobileID, url.Values{"token": {l.token.AccessToken}}, true},
		{"another client's token, by a public client", "", url.Values{"token": {l.token.RefreshToken}, "client_id": {publicID}}, true},
		{"another client's token, by private_key_jwt", "", h.bankAuth(url.Values{"token": {l.token.AccessToken}}), true},
		{"unknown token", taxID, url.Values{"token": {rand.Text()}}, false},
		{"unknown token with a hint", taxID, url.Values{"token": {rand.Text()}, "token_type_hint": {"refresh_token"}}, false},
		{"an ID token", taxID, url.Values{"token": {idToken}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.refused {
				status, _, body := h.revoke(tt.form, tt.client)
				if status != http.StatusBadRequest || !strings.Contains(body, `"error":"unauthorized_client"`) {
					t.Fatalf("revocation: %d %s, want 400 unauthorized_client", status, body)
				}
			} else {
				h.revokeOK(t, tt.form, tt.client)
			}
			if status := h.userinfoStatus(l.token.AccessToken); status != http.StatusOK {
				t.Fatalf("the token stopped working: userinfo %d", status)
			}
		})
	}
	// The rightful client can still refresh: the grant was not revoked.
	status, _, body := h.postForm(PathToken, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {l.token.RefreshToken}}, taxID)
	if status != http.StatusOK {
		t.Fatalf("refresh by its own client: %d %v", status, body)
	}
	wrong := 0
	for _, e := range h.auditEvents("token") {
		if e.Reason == "wrong_client" && e.Details["endpoint"] == "revocation" && e.Result == store.ResultFailure {
			wrong++
		}
		if e.Details["revoked"] != "" {
			t.Errorf("a revocation was audited: %+v", e)
		}
	}
	if wrong != 4 {
		t.Errorf("%d wrong_client events, want 4", wrong)
	}
	if v := h.counter("varde_token_revocations_total", map[string]string{"result": "other_client"}); v != 4 {
		t.Errorf("other_client metric = %v, want 4", v)
	}
}

// TestRevocationErrors: the request is a form-encoded POST with a token
// (RFC 7009 §2.1), a known hint (§2.2.1) and client authentication as
// at the token endpoint (§2.1, invalid_client per RFC 6749 §5.2). A
// refused request revokes nothing.
func TestRevocationErrors(t *testing.T) {
	h := newHarness(t)
	l := h.rp(taxID, taxCB).loginFront(h.browser())
	tok := l.token.RefreshToken
	form := "application/x-www-form-urlencoded"
	basic := func(id, secret string) func(*http.Request) {
		return func(r *http.Request) { r.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret)) }
	}
	taxAuth := basic(taxID, h.secrets[taxID])
	noAuth := func(*http.Request) {}
	tests := []struct {
		name   string
		ctype  string
		body   string
		auth   func(*http.Request)
		status int
		code   string
	}{
		{"no token", form, url.Values{"token_type_hint": {"refresh_token"}}.Encode(), taxAuth, 400, "invalid_request"},
		{"empty token", form, url.Values{"token": {""}}.Encode(), taxAuth, 400, "invalid_request"},
		{"repeated token", form, url.Values{"token": {tok, "x"}}.Encode(), taxAuth, 400, "invalid_request"},
		{"token not UTF-8", form, url.Values{"token": {tok + "\xff"}}.Encode(), taxAuth, 400, "invalid_request"},
		{"id_token hint", form, url.Values{"token": {tok}, "token_type_hint": {"id_token"}}.Encode(), taxAuth, 400, "unsupported_token_type"},
		{"unknown hint", form, url.Values{"token": {tok}, "token_type_hint": {"urn:example:other"}}.Encode(), taxAuth, 400, "unsupported_token_type"},
		{"JSON body", "application/json", `{"token":"` + tok + `"}`, taxAuth, 400, "invalid_request"},
		{"oversize", form, "token=" + strings.Repeat("a", MaxBodySize), taxAuth, 413, "invalid_request"},
		{"no client auth", form, url.Values{"token": {tok}}.Encode(), noAuth, 401, "invalid_client"},
		{"wrong secret", form, url.Values{"token": {tok}}.Encode(), basic(taxID, "wrong"), 401, "invalid_client"},
		{"confidential client as public", form, url.Values{"token": {tok}, "client_id": {taxID}}.Encode(), noAuth, 401, "invalid_client"},
		{"unknown client", form, url.Values{"token": {tok}, "client_id": {"nobody"}}.Encode(), noAuth, 401, "invalid_client"},
		{"forged assertion", form, url.Values{"token": {tok}, "client_assertion_type": {oa.AssertionType}, "client_assertion": {forgedAssertion(h)}}.Encode(), noAuth, 401, "invalid_client"},
		{"assertion for another server", form, url.Values{"token": {tok}, "client_assertion_type": {oa.AssertionType},
			"client_assertion": {h.assertion(func(c *jwt.Claims) { c.Audience = jwt.Audience{"https://other.example"} })}}.Encode(), noAuth, 401, "invalid_client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, h.issuer+PathRevocation, strings.NewReader(tt.body))
			req.Header.Set("Content-Type", tt.ctype)
			tt.auth(req)
			status, hdr, body := h.do(req)
			if status != tt.status || body["error"] != tt.code {
				t.Fatalf("%d %v, want %d %s", status, body, tt.status, tt.code)
			}
			if hdr.Get("Cache-Control") != "no-store" {
				t.Fatal("no Cache-Control: no-store")
			}
			if challenge := hdr.Get("WWW-Authenticate"); (tt.status == 401) != strings.HasPrefix(challenge, "Basic") {
				t.Fatalf("WWW-Authenticate = %q", challenge)
			}
		})
	}
	// GET is not a revocation request.
	resp, err := http.Get(h.issuer + PathRevocation + "?" + url.Values{"token": {tok}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET %s: %d", PathRevocation, resp.StatusCode)
	}
	// Nothing above revoked the token.
	if status := h.userinfoStatus(l.token.AccessToken); status != http.StatusOK {
		t.Fatalf("a refused revocation revoked the grant: userinfo %d", status)
	}
	refused := 0
	for _, e := range h.auditEvents("token") {
		if e.Reason == "client_auth" && e.Details["endpoint"] == "revocation" {
			refused++
		}
	}
	if refused != 6 {
		t.Errorf("%d client_auth events at the revocation endpoint, want 6", refused)
	}
	if v := h.counter("varde_oidc_errors_total", map[string]string{"endpoint": "revocation", "error": "invalid_client"}); v != 6 {
		t.Errorf("invalid_client metric = %v, want 6", v)
	}
}

// TestRevokeDPoPBoundTokens: a token bound to a DPoP key (RFC 9449, ADR
// 14) is revoked by its client with client authentication alone, no
// proof: a public client's bound refresh token by its client_id, and a
// confidential client registered to send proofs with every token
// request revokes without one.
func TestRevokeDPoPBoundTokens(t *testing.T) {
	h := newHarness(t)
	k := h.dpopHolder()

	kiosk := h.rp(publicID, kioskCB)
	verifier, state, nonce := oauth2.GenerateVerifier(), rand.Text(), rand.Text()
	resp, _ := h.browser().get(kiosk.authorizeURL(state, nonce, verifier))
	tok, err := kiosk.conf.Exchange(k.context(), h.callback(resp, kioskCB).Get("code"), oauth2.VerifierOption(verifier))
	if err != nil || tok.TokenType != "DPoP" {
		t.Fatalf("exchange: %v %v", tok, err)
	}
	h.revokeOK(t, url.Values{"token": {tok.RefreshToken}, "client_id": {publicID}}, "")
	status, _, body := h.postFormProof(PathToken, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}, "client_id": {publicID}}, "",
		k.proof(http.MethodPost, PathToken, ""))
	if status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Fatalf("bound refresh token with its key after revocation: %d %v", status, body)
	}
	at := tok.AccessToken
	if status, _, body := h.userinfoWith("DPoP", at, k.proof(http.MethodGet, PathUserinfo, at)); status != http.StatusUnauthorized || body["error"] != "invalid_token" {
		t.Fatalf("bound access token with its key after revocation: %d %v", status, body)
	}

	c, err := h.db.GetClient(context.Background(), taxID)
	if err != nil {
		t.Fatal(err)
	}
	c.DPoPBoundAccessTokens = true
	if err := h.db.PutClient(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	tax := h.rp(taxID, taxCB)
	verifier, state, nonce = oauth2.GenerateVerifier(), rand.Text(), rand.Text()
	resp, _ = h.browser().get(tax.authorizeURL(state, nonce, verifier))
	tok, err = tax.conf.Exchange(k.context(), h.callback(resp, taxCB).Get("code"), oauth2.VerifierOption(verifier))
	if err != nil || tok.TokenType != "DPoP" {
		t.Fatalf("exchange: %v %v", tok, err)
	}
	at = tok.AccessToken
	h.revokeOK(t, url.Values{"token": {at}, "token_type_hint": {"access_token"}}, taxID)
	if status, _, body := h.userinfoWith("DPoP", at, k.proof(http.MethodGet, PathUserinfo, at)); status != http.StatusUnauthorized || body["error"] != "invalid_token" {
		t.Fatalf("bound access token with its key after revocation: %d %v", status, body)
	}
}

// failingGrants is a grant store whose RevokeGrant fails while down is
// set, as a database that is briefly unavailable would.
type failingGrants struct {
	store.Grants
	down atomic.Bool
}

func (g *failingGrants) RevokeGrant(ctx context.Context, id string, now time.Time) error {
	if g.down.Load() {
		return errors.New("database is locked")
	}
	return g.Grants.RevokeGrant(ctx, id, now)
}

// TestFailedRevocationIsNotAnswered200: a revocation the store could not
// make is server_error, never the 200 that tells the relying party the
// token is gone; its retry revokes.
func TestFailedRevocationIsNotAnswered200(t *testing.T) {
	h := newHarness(t)
	grants := &failingGrants{Grants: h.p.Grants}
	h.p.Grants = grants // before the first request, so before any handler runs
	l := h.rp(taxID, taxCB).loginFront(h.browser())
	form := url.Values{"token": {l.token.RefreshToken}}

	grants.down.Store(true)
	status, hdr, body := h.postForm(PathRevocation, form, taxID)
	if status != http.StatusInternalServerError || body["error"] != "server_error" || hdr.Get("Cache-Control") != "no-store" {
		t.Fatalf("revocation while the store fails: %d %v", status, body)
	}
	if status := h.userinfoStatus(l.token.AccessToken); status != http.StatusOK {
		t.Fatalf("userinfo after a failed revocation: %d", status)
	}
	for _, e := range h.auditEvents("token") {
		if e.Details["revoked"] != "" {
			t.Fatalf("a failed revocation was audited as done: %+v", e)
		}
	}

	grants.down.Store(false)
	h.revokeOK(t, form, taxID)
	if status := h.userinfoStatus(l.token.AccessToken); status != http.StatusUnauthorized {
		t.Fatalf("userinfo after the retry: %d", status)
	}
}
