package oidc

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"golang.org/x/oauth2"
)

// taxTokens logs in at the tax office in b asking for scope and redeems
// the code; it returns the token response.
func (h *harness) taxTokens(b *browser, scope string) map[string]any {
	h.t.Helper()
	return h.taxTokensWith(b, func(q url.Values) { q.Set("scope", scope) })
}

// taxTokensPrompt is taxTokens for openid with prompt.
func (h *harness) taxTokensPrompt(b *browser, prompt string) map[string]any {
	h.t.Helper()
	return h.taxTokensWith(b, func(q url.Values) { q.Set("prompt", prompt) })
}

// taxTokensWith is taxTokens with the authorization request changed by
// mod.
func (h *harness) taxTokensWith(b *browser, mod func(url.Values)) map[string]any {
	h.t.Helper()
	verifier := oauth2.GenerateVerifier()
	q := taxQuery(func(q url.Values) {
		mod(q)
		q.Set("code_challenge", oauth2.S256ChallengeFromVerifier(verifier))
	})
	resp, _ := b.get(h.issuer + PathAuthorize + "?" + q.Encode())
	code := h.callback(resp, taxCB).Get("code")
	status, _, body := h.postForm(PathToken, codeForm(code, verifier), taxID)
	if status != http.StatusOK {
		h.t.Fatalf("code exchange: %d %v", status, body)
	}
	return body
}

// setTaxRefreshTokens registers the tax office for refresh tokens, or
// not.
func (h *harness) setTaxRefreshTokens(on bool) {
	h.t.Helper()
	c, err := h.db.GetClient(context.Background(), taxID)
	if err != nil {
		h.t.Fatal(err)
	}
	c.RefreshTokens = on
	if err := h.db.PutClient(context.Background(), c); err != nil {
		h.t.Fatal(err)
	}
}

// refresh presents refresh token rt as the tax office.
func (h *harness) refresh(rt string) (int, map[string]any) {
	h.t.Helper()
	status, _, body := h.postForm(PathToken, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, taxID)
	return status, body
}

// logOut ends the session of browser b at Varde, as logging out does.
func (h *harness) logOut(b *browser) {
	h.t.Helper()
	s, err := h.sessions.End(httptest.NewRecorder(), sessionRequest(b, h.issuer))
	if err != nil || s == nil {
		h.t.Fatalf("end session: %v, %v", s, err)
	}
}

// TestRefreshTokensByRegistration: a client gets refresh tokens only if
// it is registered for them; offline_access is granted only to such a
// client (OIDC Core §11), scope values Varde does not know are ignored,
// and the token response's scope is exactly what was granted.
func TestRefreshTokensByRegistration(t *testing.T) {
	h := newHarness(t)
	h.setTaxRefreshTokens(false)
	body := h.taxTokens(h.browser(), "openid offline_access profile email")
	if _, ok := body["refresh_token"]; ok {
		t.Errorf("a client not registered for refresh tokens got one: %v", body)
	}
	if body["scope"] != "openid" {
		t.Errorf("scope = %q, want openid: offline_access not granted, profile and email unknown", body["scope"])
	}

	h.setTaxRefreshTokens(true)
	body = h.taxTokens(h.browser(), "email offline_access openid")
	if body["scope"] != "openid offline_access" || body2str(body, "refresh_token") == "" {
		t.Fatalf("registered for refresh tokens, asking offline_access: %v", body)
	}
	status, refreshed := h.refresh(body2str(body, "refresh_token"))
	if status != http.StatusOK || refreshed["scope"] != "openid offline_access" || body2str(refreshed, "refresh_token") == "" {
		t.Fatalf("refresh: %d %v", status, refreshed)
	}

	// The registration withdrawn: its refresh tokens no longer work.
	h.setTaxRefreshTokens(false)
	if got := h.introspect(t, taxID, body2str(refreshed, "refresh_token"), nil); got.Active {
		t.Errorf("introspection after the registration was withdrawn: %+v", got)
	}
	status, refused := h.refresh(body2str(refreshed, "refresh_token"))
	if status != http.StatusBadRequest || refused["error"] != "invalid_grant" {
		t.Fatalf("refresh after the registration was withdrawn: %d %v", status, refused)
	}
}

// TestRefreshTokenEndsWithSession: without offline_access a refresh
// token lasts as long as the person's session at Varde; with it, it
// outlives the session (OIDC Core §11).
func TestRefreshTokenEndsWithSession(t *testing.T) {
	h := newHarness(t)
	online, offline := h.browser(), h.browser()
	onlineTokens := h.taxTokens(online, "openid")
	offlineTokens := h.taxTokens(offline, "openid offline_access")
	if onlineTokens["scope"] != "openid" || offlineTokens["scope"] != "openid offline_access" {
		t.Fatalf("scopes %q and %q", onlineTokens["scope"], offlineTokens["scope"])
	}
	status, body := h.refresh(body2str(onlineTokens, "refresh_token"))
	if status != http.StatusOK {
		t.Fatalf("refresh while the session is live: %d %v", status, body)
	}
	onlineRT := body2str(body, "refresh_token")
	if !h.introspect(t, taxID, onlineRT, nil).Active {
		t.Fatal("introspection: a refresh token of a live session is inactive")
	}
	// Logging in again in the same browser (prompt=login) continues the
	// session under another ID: the person is still logged in, and the
	// refresh token still works.
	before := h.logins.Load()
	h.taxTokens(online, "openid")
	if h.logins.Load() != before {
		t.Fatal("single sign-on expected for the second login")
	}
	again := h.taxTokensPrompt(online, "login")
	if h.logins.Load() != before+1 || again["scope"] != "openid" {
		t.Fatalf("prompt=login: logins %d -> %d, %v", before, h.logins.Load(), again)
	}
	status, body = h.refresh(onlineRT)
	if status != http.StatusOK {
		t.Fatalf("refresh after the session was continued: %d %v", status, body)
	}
	onlineRT = body2str(body, "refresh_token")

	h.logOut(online)
	h.logOut(offline)
	// Introspection says what the token endpoint does (RFC 7662 §2.2).
	if got := h.introspect(t, taxID, onlineRT, nil); got.Active {
		t.Errorf("introspection after logout, without offline_access: %+v", got)
	}
	if got := h.introspect(t, taxID, body2str(offlineTokens, "refresh_token"), nil); !got.Active || got.Scope != "openid offline_access" {
		t.Errorf("introspection after logout, with offline_access: %+v", got)
	}
	status, body = h.refresh(onlineRT)
	if status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Fatalf("refresh without offline_access after logout: %d %v", status, body)
	}
	var audited bool
	for _, e := range h.auditEvents("token") {
		audited = audited || e.Reason == "session_ended" && e.Result == "failure" && e.ClientID == taxID
	}
	if !audited {
		t.Error("the refusal was not audited")
	}
	status, body = h.refresh(body2str(offlineTokens, "refresh_token"))
	if status != http.StatusOK || body["scope"] != "openid offline_access" {
		t.Fatalf("refresh with offline_access after logout: %d %v", status, body)
	}
}

// TestClaimsParameterIgnored: the claims request parameter (OIDC Core
// §5.5; claims_parameter_supported is false) neither breaks a request
// nor releases a claim the client is not registered for.
func TestClaimsParameterIgnored(t *testing.T) {
	h := newHarness(t)
	claims := `{"id_token":{"national_id":{"essential":true},"name":null},"userinfo":{"national_id":null}}`
	l := h.rp(taxID, taxCB).loginFront(h.browser(), oauth2.SetAuthURLParam("claims", claims))
	if l.claims.NationalID != nil || l.claims.Name != "" || l.claims.GivenName == "" {
		t.Errorf("ID token claims %+v: want only what the tax office is registered for", l.claims)
	}
	req, _ := http.NewRequest(http.MethodGet, h.issuer+PathUserinfo, nil)
	req.Header.Set("Authorization", "Bearer "+l.token.AccessToken)
	status, _, info := h.do(req)
	if status != http.StatusOK {
		t.Fatalf("userinfo: %d %v", status, info)
	}
	if _, ok := info["national_id"]; ok {
		t.Errorf("userinfo released national_id: %v", info)
	}
	if _, ok := info["name"]; ok {
		t.Errorf("userinfo released name: %v", info)
	}
}

// TestUserinfoNeedsOpenIDScope: the UserInfo endpoint answers for an
// access token granted the openid scope (OIDC Core §5.3, §3.1.2.1). One
// refreshed down to offline_access alone was not: it is refused with
// 403 insufficient_scope naming the scope it needs (RFC 6750 §3.1), in
// the challenge of the scheme it came with (RFC 9449 §7.1), and
// releases no claim.
func TestUserinfoNeedsOpenIDScope(t *testing.T) {
	h := newHarness(t)
	k := h.dpopHolder()
	tests := []struct {
		name, scheme string
		// proof is the DPoP proof for method at path naming access, or
		// "" for none.
		proof     func(method, path, access string) string
		challenge string
	}{
		{"bearer", "Bearer", func(string, string, string) string { return "" },
			`Bearer error="insufficient_scope", error_description="the access token was not granted the openid scope", scope="openid"`},
		{"dpop", "DPoP", k.proof,
			`DPoP algs="ES256 ES384 EdDSA PS256 RS256", error="insufficient_scope", error_description="the access token was not granted the openid scope", scope="openid"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := h.taxTokens(h.browser(), "openid offline_access")
			form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {body2str(body, "refresh_token")}, "scope": {"offline_access"}}
			status, _, narrowed := h.postFormProof(PathToken, form, taxID, tt.proof(http.MethodPost, PathToken, ""))
			if status != http.StatusOK || narrowed["scope"] != "offline_access" || narrowed["token_type"] != tt.scheme {
				t.Fatalf("refresh to offline_access: %d %v", status, narrowed)
			}
			access := body2str(narrowed, "access_token")
			status, hdr, got := h.userinfoWith(tt.scheme, access, tt.proof(http.MethodGet, PathUserinfo, access))
			if status != http.StatusForbidden || got["error"] != "insufficient_scope" || got["sub"] != nil ||
				len(hdr.Values("WWW-Authenticate")) != 1 || hdr.Get("WWW-Authenticate") != tt.challenge {
				t.Fatalf("userinfo with an access token for offline_access alone: %d %q %v", status, hdr.Values("WWW-Authenticate"), got)
			}
			if h.userinfoStatus(body2str(body, "access_token")) != http.StatusOK {
				t.Fatal("an access token for openid was refused")
			}
		})
	}
}

// TestRefreshWithoutOpenIDHasNoIDToken: a refresh narrowed to a scope
// without openid (RFC 6749 §6) is answered without an ID token, an
// OpenID Connect artefact of the openid scope (OIDC Core §12.2: the
// response might not contain one); the next refresh, at the grant's
// scope again, has one.
func TestRefreshWithoutOpenIDHasNoIDToken(t *testing.T) {
	h := newHarness(t)
	body := h.taxTokens(h.browser(), "openid offline_access")
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {body2str(body, "refresh_token")}, "scope": {"offline_access"}}
	status, _, narrowed := h.postForm(PathToken, form, taxID)
	if status != http.StatusOK || narrowed["scope"] != "offline_access" || body2str(narrowed, "refresh_token") == "" {
		t.Fatalf("refresh to offline_access: %d %v", status, narrowed)
	}
	if _, ok := narrowed["id_token"]; ok {
		t.Errorf("a refresh to offline_access alone has an ID token: %v", narrowed)
	}
	status, again := h.refresh(body2str(narrowed, "refresh_token"))
	if status != http.StatusOK || again["scope"] != "openid offline_access" || body2str(again, "id_token") == "" {
		t.Fatalf("refresh at the grant's scope: %d %v", status, again)
	}
}
