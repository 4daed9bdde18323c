package oidc

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/varde-eid/varde/internal/assurance"
	oa "github.com/varde-eid/varde/internal/oauth2"
	"github.com/varde-eid/varde/internal/store"
)

func taxQuery(mod func(url.Values)) url.Values {
	q := url.Values{
		"response_type": {"code"}, "client_id": {taxID}, "redirect_uri": {taxCB}, "scope": {"openid"},
		"state": {"st"}, "nonce": {"n"}, "code_challenge": {oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())},
		"code_challenge_method": {"S256"},
	}
	if mod != nil {
		mod(q)
	}
	return q
}

// Errors before the client and redirect URI are verified are shown to
// the person; they never redirect (RFC 6749 §4.1.2.1).
func TestAuthorizeErrorPages(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		name string
		mod  func(url.Values)
		want string // text on the page
	}{
		{"unknown client", func(q url.Values) { q.Set("client_id", "nobody") }, "Vi forsto ikke"},
		{"missing client", func(q url.Values) { q.Del("client_id") }, "Vi forsto ikke"},
		{"repeated client", func(q url.Values) { q.Add("client_id", bankID) }, "Vi forsto ikke"},
		{"unregistered redirect", func(q url.Values) { q.Set("redirect_uri", "https://evil.example/cb") }, "tilbake til tjenesten"},
		{"redirect prefix", func(q url.Values) { q.Set("redirect_uri", taxCB+"/more") }, "tilbake til tjenesten"},
		{"redirect with query", func(q url.Values) { q.Set("redirect_uri", taxCB+"?x=1") }, "tilbake til tjenesten"},
		{"missing redirect, several registered", func(q url.Values) { q.Del("redirect_uri") }, "tilbake til tjenesten"},
		// OIDC Core §3.1.2.1: REQUIRED, even with one registered.
		{"missing redirect, one registered", func(q url.Values) { q.Set("client_id", publicID); q.Del("redirect_uri") }, "tilbake til tjenesten"},
		{"repeated redirect", func(q url.Values) { q.Add("redirect_uri", taxCB2) }, "tilbake til tjenesten"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := h.browser().get(h.issuer + PathAuthorize + "?" + taxQuery(tt.mod).Encode())
			if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
				t.Fatalf("status %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
			}
			if !strings.Contains(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(body, tt.want) {
				t.Fatalf("page lacks %q:\n%s", tt.want, body)
			}
		})
	}
	// The page speaks English when asked.
	req, _ := http.NewRequest(http.MethodGet, h.issuer+PathAuthorize+"?"+taxQuery(func(q url.Values) { q.Set("client_id", "x") }).Encode(), nil)
	req.Header.Set("Accept-Language", "en")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Content-Language") != "en" {
		t.Fatalf("Content-Language = %q", resp.Header.Get("Content-Language"))
	}
}

// Errors after the redirect URI is verified go back to the client with
// state and iss.
func TestAuthorizeErrorRedirects(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		name   string
		client string
		mod    func(url.Values)
		code   string
	}{
		{"no PKCE", taxID, func(q url.Values) { q.Del("code_challenge"); q.Del("code_challenge_method") }, "invalid_request"},
		{"PKCE plain", taxID, func(q url.Values) { q.Set("code_challenge_method", "plain") }, "invalid_request"},
		{"PKCE method missing", taxID, func(q url.Values) { q.Del("code_challenge_method") }, "invalid_request"},
		{"malformed challenge", taxID, func(q url.Values) { q.Set("code_challenge", "short") }, "invalid_request"},
		{"implicit flow", taxID, func(q url.Values) { q.Set("response_type", "id_token token") }, "unsupported_response_type"},
		{"no response_type", taxID, func(q url.Values) { q.Del("response_type") }, "invalid_request"},
		{"fragment mode", taxID, func(q url.Values) { q.Set("response_mode", "fragment") }, "invalid_request"},
		{"no openid", taxID, func(q url.Values) { q.Set("scope", "profile") }, "invalid_scope"},
		{"level not allowed", taxID, func(q url.Values) { q.Set("acr_values", assurance.ACRLow) }, "invalid_request"},
		{"unknown acr", taxID, func(q url.Values) { q.Set("acr_values", "urn:unknown") }, "invalid_request"},
		{"prompt none+login", taxID, func(q url.Values) { q.Set("prompt", "none login") }, "invalid_request"},
		{"unknown prompt", taxID, func(q url.Values) { q.Set("prompt", "create") }, "invalid_request"},
		{"prompt consent", taxID, func(q url.Values) { q.Set("prompt", "consent") }, "consent_required"},
		{"prompt login consent", taxID, func(q url.Values) { q.Set("prompt", "login consent") }, "consent_required"},
		{"negative max_age", taxID, func(q url.Values) { q.Set("max_age", "-1") }, "invalid_request"},
		{"bad max_age", taxID, func(q url.Values) { q.Set("max_age", "1h") }, "invalid_request"},
		{"signed max_age", taxID, func(q url.Values) { q.Set("max_age", "+300") }, "invalid_request"},
		{"request object", taxID, func(q url.Values) { q.Set("request", "eyJ.eyJ.") }, "request_not_supported"},
		{"registration", taxID, func(q url.Values) { q.Set("registration", `{"logo_uri":"https://tax.example/logo.png"}`) }, "registration_not_supported"},
		{"repeated scope", taxID, func(q url.Values) { q.Add("scope", "openid") }, "invalid_request"},
		{"huge state", taxID, func(q url.Values) { q.Set("state", strings.Repeat("s", 2000)) }, "invalid_request"},
		{"nonce not UTF-8", taxID, func(q url.Values) { q.Set("nonce", "n\xff") }, "invalid_request"},
		{"NUL in login_hint", taxID, func(q url.Values) { q.Set("login_hint", "a\x00b") }, "invalid_request"},
		{"PAR required", bankID, func(q url.Values) { q.Set("client_id", bankID); q.Set("redirect_uri", bankCB) }, "invalid_request"},
		{"prompt none without session", taxID, func(q url.Values) { q.Set("prompt", "none") }, "login_required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := h.logins.Load()
			resp, _ := h.browser().get(h.issuer + PathAuthorize + "?" + taxQuery(tt.mod).Encode())
			cb := taxCB
			if tt.client == bankID {
				cb = bankCB
			}
			q := h.callback(resp, cb)
			wantState := "st"
			if len(wantState) > 0 && tt.name == "huge state" {
				wantState = strings.Repeat("s", 2000)
			}
			if q.Get("error") != tt.code || q.Get("state") != wantState || q.Get("code") != "" {
				t.Fatalf("callback = %v, want error %s", q, tt.code)
			}
			// RFC 6749 §4.1.2.1: error_description holds %x20-21 /
			// %x23-5B / %x5D-7E only.
			for _, r := range q.Get("error_description") {
				if r < 0x20 || r > 0x7e || r == '"' || r == '\\' {
					t.Errorf("error_description %q holds %q", q.Get("error_description"), r)
				}
			}
			if h.logins.Load() != before {
				t.Fatal("the login page was shown")
			}
		})
	}
}

func TestAuthorizeByPOST(t *testing.T) {
	h := newHarness(t)
	b := h.browser()
	verifier := oauth2.GenerateVerifier()
	q := taxQuery(func(q url.Values) { q.Set("code_challenge", oauth2.S256ChallengeFromVerifier(verifier)) })
	resp, _ := b.post(h.issuer+PathAuthorize, q)
	cb := h.callback(resp, taxCB)
	status, _, body := h.postForm(PathToken, url.Values{"grant_type": {"authorization_code"}, "code": {cb.Get("code")},
		"redirect_uri": {taxCB}, "code_verifier": {verifier}}, taxID)
	if status != 200 || body["id_token"] == nil {
		t.Fatalf("token: %d %v", status, body)
	}
}

// TestRedirectURIRequired: OIDC Core §3.1.2.1 makes redirect_uri
// REQUIRED, so a request without one is refused even from a client with
// one registered: at /authorize on a page, since there is no verified URI
// to send an error to (RFC 6749 §4.1.2.1), and at /par as JSON. A request
// stored without one by a node of an earlier release still ends at the
// client's one redirect URI, its token request omitting it too (RFC 6749
// §4.1.3).
func TestRedirectURIRequired(t *testing.T) {
	h := newHarness(t)
	b := h.browser()
	verifier := oauth2.GenerateVerifier()
	q := url.Values{"response_type": {"code"}, "client_id": {publicID}, "scope": {"openid"}, "state": {"st"},
		"code_challenge": {oauth2.S256ChallengeFromVerifier(verifier)}, "code_challenge_method": {"S256"}}
	resp, body := b.get(h.issuer + PathAuthorize + "?" + q.Encode())
	if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" || !strings.Contains(body, "<html") {
		t.Fatalf("/authorize without redirect_uri: %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if h.logins.Load() != 0 {
		t.Fatal("/authorize without redirect_uri showed the login page")
	}
	status, _, answer := h.postForm(PathPAR, h.bankAuth(url.Values{"response_type": {"code"}, "client_id": {bankID}, "scope": {"openid"},
		"code_challenge": {oauth2.S256ChallengeFromVerifier(verifier)}, "code_challenge_method": {"S256"}}), "")
	if status != http.StatusBadRequest || answer["error"] != "invalid_request" || answer["error_description"] != "redirect_uri is required" {
		t.Fatalf("/par without redirect_uri: %d %v", status, answer)
	}

	// A request an earlier release stored without redirect_uri.
	h.rp(publicID, kioskCB).loginFront(b)
	now := h.clock.Now()
	old := &store.AuthRequest{ID: "stored-without-redirect", ClientID: publicID, ResponseMode: "query", Scope: []string{"openid"},
		State: "st", MaxAge: -1, CodeChallenge: q.Get("code_challenge"), CodeChallengeMethod: "S256", CreatedAt: now, ExpiresAt: now.Add(time.Minute)}
	if err := h.db.CreateAuthRequest(t.Context(), old); err != nil {
		t.Fatal(err)
	}
	resp, _ = b.get(h.issuer + PathResume + "?req=" + old.ID)
	cb := h.callback(resp, kioskCB)
	form := url.Values{"grant_type": {"authorization_code"}, "client_id": {publicID}, "code": {cb.Get("code")}, "code_verifier": {verifier}}
	if status, _, body := h.postForm(PathToken, form, ""); status != http.StatusOK {
		t.Fatalf("token without redirect_uri for a request stored without one: %d %v", status, body)
	}
}

func TestPromptNoneWithSession(t *testing.T) {
	h := newHarness(t)
	tax := h.rp(taxID, taxCB)
	b := h.browser()
	tax.loginFront(b)
	// A session exists and meets the request: prompt=none gets a code.
	tax.loginFront(b, oauth2.SetAuthURLParam("prompt", "none"))
	// A session that does not meet the level: login_required, no UI.
	before := h.logins.Load()
	resp, _ := b.get(tax.authorizeURL("s", "n", oauth2.GenerateVerifier(), oauth2.SetAuthURLParam("prompt", "none"),
		oauth2.SetAuthURLParam("acr_values", assurance.ACRHigh)))
	if q := h.callback(resp, taxCB); q.Get("error") != "login_required" {
		t.Fatalf("callback = %v", q)
	}
	if h.logins.Load() != before {
		t.Fatal("prompt=none showed the login page")
	}
}

// TestACRValuesPreferenceList: acr_values is a list in order of
// preference (OIDC Core §3.1.2.1); a value Varde does not know beside
// ones it does is passed over, and the known ones still set the level.
func TestACRValuesPreferenceList(t *testing.T) {
	h := newHarness(t)
	tax := h.rp(taxID, taxCB)
	b := h.browser()
	h.setLogin(true, "high", h.person.ID)
	l := tax.loginFront(b, oauth2.SetAuthURLParam("acr_values", "urn:other:idp:high "+assurance.ACRHigh))
	if l.claims.ACR != assurance.ACRHigh {
		t.Fatalf("acr = %s", l.claims.ACR)
	}
	// The session is high; a list whose only known value is high is
	// met by it without a new login, and an unknown value lowers nothing.
	before := h.logins.Load()
	h.setLogin(true, "substantial", h.person.ID)
	l = tax.loginFront(b, oauth2.SetAuthURLParam("acr_values", assurance.ACRHigh+" urn:other:idp:low"))
	if h.logins.Load() != before || l.claims.ACR != assurance.ACRHigh {
		t.Fatalf("logins %d -> %d, acr = %s", before, h.logins.Load(), l.claims.ACR)
	}
}

// TestACRValuesSkipsLevelsNotAllowed: a level the client may not ask
// for, listed beside one it may, is passed over like an unknown value;
// the request is refused only when no allowed level remains (the "level
// not allowed" case of TestAuthorizeErrorRedirects).
func TestACRValuesSkipsLevelsNotAllowed(t *testing.T) {
	h := newHarness(t)
	tax := h.rp(taxID, taxCB)
	b := h.browser()
	h.setLogin(true, "high", h.person.ID)
	l := tax.loginFront(b, oauth2.SetAuthURLParam("acr_values", assurance.ACRLow+" "+assurance.ACRHigh))
	if l.claims.ACR != assurance.ACRHigh {
		t.Fatalf("acr = %s, want %s", l.claims.ACR, assurance.ACRHigh)
	}
}

func TestMaxAgeAndPromptLoginForceLogin(t *testing.T) {
	h := newHarness(t)
	tax := h.rp(taxID, taxCB)
	b := h.browser()
	first := tax.loginFront(b)
	if h.logins.Load() != 1 {
		t.Fatal("first login")
	}
	h.clock.Add(10 * time.Minute)
	// SSO without constraints: no login.
	tax.loginFront(b)
	if h.logins.Load() != 1 {
		t.Fatalf("logins = %d", h.logins.Load())
	}
	// max_age shorter than the session's age: the person logs in again,
	// and auth_time moves.
	again := tax.loginFront(b, oauth2.SetAuthURLParam("max_age", "300"))
	if h.logins.Load() != 2 {
		t.Fatalf("max_age did not force a login: logins = %d", h.logins.Load())
	}
	if again.claims.AuthTime != h.clock.Now().Unix() || again.claims.AuthTime == first.claims.AuthTime {
		t.Fatalf("auth_time = %d", again.claims.AuthTime)
	}
	// max_age the session meets: no login.
	tax.loginFront(b, oauth2.SetAuthURLParam("max_age", "300"))
	if h.logins.Load() != 2 {
		t.Fatalf("logins = %d", h.logins.Load())
	}
	// max_age=0 and prompt=login force a login even with a fresh session.
	tax.loginFront(b, oauth2.SetAuthURLParam("max_age", "0"))
	tax.loginFront(b, oauth2.SetAuthURLParam("prompt", "login"))
	if h.logins.Load() != 4 {
		t.Fatalf("logins = %d, want 4", h.logins.Load())
	}
	// A max_age longer than a time.Duration holds is met by any session,
	// even without a way to log in (prompt=none), and so is one longer
	// than an int64 holds: it is a non-negative integer all the same.
	for _, ma := range []string{"9223372036", "9999999999", "9223372036854775807", "9223372036854775808", "18446744073709551616000"} {
		tax.loginFront(b, oauth2.SetAuthURLParam("max_age", ma), oauth2.SetAuthURLParam("prompt", "none"))
	}
	if h.logins.Load() != 4 {
		t.Fatalf("logins = %d, want 4", h.logins.Load())
	}
}

// TestMaxAgeHoldsAtResume: a login made for a request with max_age is
// enough at /authorize/resume only while it is at most max_age old
// (OIDC Core §3.1.2.1: the OP MUST actively re-authenticate when the
// last authentication is older), however recently the request was
// made: a login kept waiting (ADR 50) gets a code at max_age seconds
// after its auth_time and one second later is asked to log in again.
func TestMaxAgeHoldsAtResume(t *testing.T) {
	for _, tc := range []struct {
		name  string
		wait  time.Duration
		fresh bool
	}{
		{"at max_age", 300 * time.Second, true},
		{"past max_age", 301 * time.Second, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.loginViaResume = true
			tax := h.rp(taxID, taxCB)
			b := h.browser()
			// The browser stops at the resume the login sends it to, and
			// comes back to it after tc.wait.
			follow := b.c.CheckRedirect
			b.c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
				if req.URL.Path == PathResume {
					return http.ErrUseLastResponse
				}
				return follow(req, via)
			}
			verifier, state, nonce := oauth2.GenerateVerifier(), rand.Text(), rand.Text()
			resp, _ := b.get(tax.authorizeURL(state, nonce, verifier, oauth2.SetAuthURLParam("max_age", "300")))
			resume := resp.Header.Get("Location")
			if h.logins.Load() != 1 || !strings.HasPrefix(resume, PathResume+"?") {
				t.Fatalf("logins = %d, then %d Location %q, want a redirect to %s", h.logins.Load(), resp.StatusCode, resume, PathResume)
			}
			loggedIn := h.clock.Now()
			h.clock.Add(tc.wait)
			resp, _ = b.get(h.issuer + resume)
			if !tc.fresh {
				if loc := resp.Header.Get("Location"); h.logins.Load() != 2 || !strings.HasPrefix(loc, PathResume+"?") {
					t.Fatalf("a login %s old for max_age=300: logins = %d, then %d Location %q, want a second login", tc.wait, h.logins.Load(), resp.StatusCode, loc)
				}
				return
			}
			q := h.callback(resp, taxCB)
			if q.Get("state") != state || q.Get("code") == "" {
				t.Fatalf("callback = %v", q)
			}
			l := tax.finish(q.Get("code"), verifier, nonce)
			if h.logins.Load() != 1 || l.claims.AuthTime != loggedIn.Unix() {
				t.Fatalf("logins = %d, auth_time = %d, want 1 and %d", h.logins.Load(), l.claims.AuthTime, loggedIn.Unix())
			}
		})
	}
}

func TestStepUpLevel(t *testing.T) {
	h := newHarness(t)
	tax := h.rp(taxID, taxCB)
	b := h.browser()
	tax.loginFront(b)
	// The session is substantial; high needs a new login.
	h.setLogin(true, "high", h.person.ID)
	l := tax.loginFront(b, oauth2.SetAuthURLParam("acr_values", assurance.ACRHigh))
	if h.logins.Load() != 2 || l.claims.ACR != assurance.ACRHigh {
		t.Fatalf("logins = %d, acr = %s", h.logins.Load(), l.claims.ACR)
	}
}

// TestSSOOnlyFromAcceptedProviders: a client that accepts logins from
// some providers only (store.Client.Providers) gets no code for a
// session made through another, at the authorization endpoint, at the
// resume step or when the broker ends a login with Continue: the person
// logs in again through one it accepts, as for a level that is too low.
func TestSSOOnlyFromAcceptedProviders(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	const bankidOnly, bankidCB = "bankid-only", "https://bankid-only.example/cb"
	const passkeyOnly, passkeyCB = "passkey-only", "https://passkey-only.example/cb"
	for _, c := range []*store.Client{
		{ID: bankidOnly, AuthMethod: store.AuthNone, RedirectURIs: []string{bankidCB}, Providers: []string{"bankid"}},
		{ID: passkeyOnly, AuthMethod: store.AuthNone, RedirectURIs: []string{passkeyCB}, Providers: []string{"passkey", "bankid"}},
	} {
		if err := h.db.AddClient(ctx, c, nil); err != nil {
			t.Fatal(err)
		}
	}
	b := h.browser()
	h.rp(publicID, kioskCB).loginFront(b) // a session through passkey

	// A client that accepts passkey gets its code without a login.
	l := h.rp(passkeyOnly, passkeyCB).loginFront(b)
	if h.logins.Load() != 1 || l.claims.Provider != "passkey" {
		t.Fatalf("single sign-on for a client accepting passkey: logins = %d, provider = %q", h.logins.Load(), l.claims.Provider)
	}

	// One that accepts only bankid gets no code for it: prompt=none says
	// login_required, without showing the login page.
	bankid := h.rp(bankidOnly, bankidCB)
	resp, _ := b.get(bankid.authorizeURL("s", "n", oauth2.GenerateVerifier(), oauth2.SetAuthURLParam("prompt", "none")))
	if q := h.callback(resp, bankidCB); q.Get("error") != "login_required" || q.Get("code") != "" {
		t.Fatalf("prompt=none with a passkey session for a bankid-only client: %v", q)
	}
	if h.logins.Load() != 1 {
		t.Fatal("prompt=none showed the login page")
	}

	// Without prompt=none the person is sent to log in.
	h.setLogin(false, "substantial", h.person.ID)
	resp, _ = b.get(bankid.authorizeURL("s", "n", oauth2.GenerateVerifier()))
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/login" {
		t.Fatalf("a passkey session satisfied a bankid-only client: %d at %s, Location %q",
			resp.StatusCode, resp.Request.URL, resp.Header.Get("Location"))
	}
	// Coming back from the login page with the passkey session still does
	// not do: resume sends the person back to log in.
	id := resp.Request.URL.Query().Get("req")
	resp, _ = b.get(h.issuer + PathResume + "?req=" + url.QueryEscape(id))
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/login" {
		t.Fatalf("resume with a passkey session for a bankid-only client: %d at %s, Location %q",
			resp.StatusCode, resp.Request.URL, resp.Header.Get("Location"))
	}
	// Nor does a login the broker ends with Continue through passkey.
	req, c := h.waiting(id)
	sess := &store.Session{ID: "s-passkey", PersonID: h.person.ID, Provider: "passkey", Level: "substantial",
		AuthTime: h.clock.Now(), CreatedAt: h.clock.Now(), ExpiresAt: h.clock.Now().Add(time.Hour)}
	next, err := h.p.Continue(ctx, c, req, sess, func(events ...*store.AuditEvent) error { return h.db.CreateSession(ctx, sess, events...) })
	if want := PathResume + "?req=" + url.QueryEscape(id); err != nil || next != want {
		t.Fatalf("Continue with a passkey session for a bankid-only client = %q, %v; want %q", next, err, want)
	}

	// A login through bankid gets the code.
	h.mu.Lock()
	h.autoLogin, h.loginProvider = true, "bankid"
	h.mu.Unlock()
	l = bankid.loginFront(b)
	if l.claims.Provider != "bankid" {
		t.Fatalf("provider = %q, want bankid", l.claims.Provider)
	}
}

func TestAllowedLevelsDefault(t *testing.T) {
	h := newHarness(t)
	tax := h.rp(taxID, taxCB)
	// The tax office may only ask for substantial or high: with no
	// acr_values it gets substantial at least, so a low login is not enough.
	h.setLogin(true, "low", h.person.ID)
	b := h.browser()
	resp, _ := b.get(tax.authorizeURL("s", "n", oauth2.GenerateVerifier()))
	if resp.StatusCode == http.StatusSeeOther && strings.HasPrefix(resp.Header.Get("Location"), taxCB) {
		t.Fatalf("a low login satisfied a client allowed only substantial and high: %s", resp.Header.Get("Location"))
	}
}

func TestResumeErrors(t *testing.T) {
	h := newHarness(t)
	b := h.browser()
	resp, body := b.get(h.issuer + PathResume + "?req=unknown")
	if resp.StatusCode != 400 || !strings.Contains(body, "Denne innloggingen kan ikke brukes lenger") {
		t.Fatalf("unknown request: %d\n%s", resp.StatusCode, body)
	}
	// A request that waited too long for the login is gone.
	h.setLogin(false, "substantial", h.person.ID)
	tax := h.rp(taxID, taxCB)
	resp, _ = b.get(tax.authorizeURL("s", "n", oauth2.GenerateVerifier()))
	if resp.StatusCode != 200 {
		t.Fatalf("login page: %d", resp.StatusCode)
	}
	loc := resp.Request.URL.Query().Get("req")
	if loc == "" {
		t.Fatal("no req in login URL")
	}
	// Without a session, resume sends the person back to log in.
	resp, _ = b.get(h.issuer + PathResume + "?req=" + loc)
	if resp.Request.URL.Path != "/login" {
		t.Fatalf("resume without session ended at %s", resp.Request.URL)
	}
	h.clock.Add(DefaultAuthRequestLifetime + time.Second)
	resp, body = b.get(h.issuer + PathResume + "?req=" + loc)
	if resp.StatusCode != 400 || !strings.Contains(body, "Denne innloggingen kan ikke brukes lenger") {
		t.Fatalf("expired request: %d", resp.StatusCode)
	}
}

func TestPAR(t *testing.T) {
	h := newHarness(t)
	b := h.browser()
	verifier := oauth2.GenerateVerifier()
	form := func() url.Values { return bankForm("st", "n", verifier) }

	// Errors at the PAR endpoint come back as JSON.
	tests := []struct {
		name   string
		mod    func(url.Values)
		status int
		code   string
	}{
		{"request_uri pushed", func(f url.Values) { f.Set("request_uri", RequestURIPrefix+"x") }, 400, "invalid_request"},
		{"unregistered redirect", func(f url.Values) { f.Set("redirect_uri", "https://evil.example/") }, 400, "invalid_request"},
		{"no redirect_uri", func(f url.Values) { f.Del("redirect_uri") }, 400, "invalid_request"},
		{"no PKCE", func(f url.Values) { f.Del("code_challenge") }, 400, "invalid_request"},
		{"bad response_type", func(f url.Values) { f.Set("response_type", "token") }, 400, "unsupported_response_type"},
		{"no openid", func(f url.Values) { f.Set("scope", "email") }, 400, "invalid_scope"},
		{"request object", func(f url.Values) { f.Set("request", "eyJ.eyJ.") }, 400, "request_not_supported"},
		{"registration", func(f url.Values) { f.Set("registration", `{"jwks_uri":"https://bank.example/other-keys"}`) }, 400, "registration_not_supported"},
		{"forged assertion", func(f url.Values) { f.Set("client_assertion", forgedAssertion(h)) }, 401, "invalid_client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := h.bankAuth(form())
			tt.mod(f)
			status, hdr, body := h.postForm(PathPAR, f, "")
			if status != tt.status || body["error"] != tt.code {
				t.Fatalf("%d %v", status, body)
			}
			if hdr.Get("Cache-Control") != "no-store" {
				t.Fatal("no Cache-Control: no-store")
			}
		})
	}

	// A request_uri is single-use and bound to its client.
	authURL, status, body := h.pushBank(form())
	if status != 201 {
		t.Fatalf("PAR: %d %v", status, body)
	}
	resp, _ := b.get(authURL)
	h.callback(resp, bankCB)
	resp, page := b.get(authURL)
	if resp.StatusCode != 400 || resp.Header.Get("Location") != "" || !strings.Contains(page, "<html") {
		t.Fatalf("reused request_uri: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}

	authURL, _, _ = h.pushBank(form())
	resp, _ = b.get(strings.Replace(authURL, "client_id="+bankID, "client_id="+taxID, 1))
	if resp.StatusCode != 400 || resp.Header.Get("Location") != "" {
		t.Fatalf("other client's request_uri: %d", resp.StatusCode)
	}
	// Parameters beside request_uri are ignored (RFC 9126 §4): the pushed
	// redirect_uri and state win.
	resp, _ = b.get(authURL + "&redirect_uri=" + url.QueryEscape("https://evil.example/") + "&state=evil")
	if q := h.callback(resp, bankCB); q.Get("state") != "st" {
		t.Fatalf("state = %q", q.Get("state"))
	}

	// Pushed requests expire after 90 s.
	authURL, _, _ = h.pushBank(form())
	h.clock.Add(91 * time.Second)
	resp, page = b.get(authURL)
	if resp.StatusCode != 400 || !strings.Contains(page, "Denne innloggingen kan ikke brukes lenger") {
		t.Fatalf("expired request_uri: %d", resp.StatusCode)
	}
	resp, _ = b.get(h.issuer + PathAuthorize + "?client_id=" + bankID + "&request_uri=urn:other:x")
	if resp.StatusCode != 400 {
		t.Fatalf("foreign request_uri: %d", resp.StatusCode)
	}
}

// TestPARBodyMustBeAForm: RFC 9126 §2.1 — a pushed request is a
// form-encoded POST, as at the token endpoint. A body of another kind is
// invalid_request, however the client authenticates, never taken for a
// request without client credentials.
func TestPARBodyMustBeAForm(t *testing.T) {
	h := newHarness(t)
	form := func() string { return h.bankAuth(bankForm("st", "n", oauth2.GenerateVerifier())).Encode() }
	tests := []struct {
		name  string
		ctype string
		body  func() string
	}{
		{"JSON body", "application/json", func() string {
			b, _ := json.Marshal(map[string]string{"client_assertion_type": oa.AssertionType, "client_assertion": h.assertion(nil)})
			return string(b)
		}},
		{"form as text", "text/plain", form},
		{"form without a content type", "", form},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, h.issuer+PathPAR, strings.NewReader(tt.body()))
			if tt.ctype != "" {
				req.Header.Set("Content-Type", tt.ctype)
			}
			status, _, body := h.do(req)
			if status != http.StatusBadRequest || body["error"] != "invalid_request" {
				t.Fatalf("%d %v, want 400 invalid_request", status, body)
			}
		})
	}
}

func forgedAssertion(h *harness) string {
	other, _ := newHarnessKey()
	return h.assertionWith(other, "ES256", "bank-1", nil)
}

func TestPARPromptNoneLoginRequired(t *testing.T) {
	h := newHarness(t)
	f := bankForm("st", "n", oauth2.GenerateVerifier())
	f.Set("prompt", "none")
	authURL, status, _ := h.pushBank(f)
	if status != 201 {
		t.Fatal(status)
	}
	resp, _ := h.browser().get(authURL)
	if q := h.callback(resp, bankCB); q.Get("error") != "login_required" || q.Get("state") != "st" {
		t.Fatalf("callback = %v", q)
	}
}

// TestContinue: a login the broker finishes goes straight back to the
// client with the code; what cannot end there goes to /authorize/resume,
// which explains, and no code is issued.
func TestContinue(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	tax := h.rp(taxID, taxCB)

	// The same login ended both ways gives the same kind of answer.
	for _, viaResume := range []bool{false, true} {
		h.mu.Lock()
		h.loginViaResume = viaResume
		h.mu.Unlock()
		l := tax.loginFront(h.browser())
		if l.claims.ACR != assurance.ACRSubstantial {
			t.Errorf("via resume %v: acr = %s", viaResume, l.claims.ACR)
		}
	}
	h.mu.Lock()
	h.loginViaResume = false
	h.mu.Unlock()

	// A request waiting at the login page, and a session for it.
	h.setLogin(false, "substantial", h.person.ID)
	pending := func() (*store.AuthRequest, *store.Client) {
		t.Helper()
		resp, _ := h.browser().get(tax.authorizeURL("st", "n", oauth2.GenerateVerifier()))
		return h.waiting(resp.Request.URL.Query().Get("req"))
	}
	// A new session, as the broker has it before Continue: Continue
	// stores it through save, once, with the consent event when the code
	// goes out at once, and with none when no code does.
	sessions := 0
	newSession := func(level string) *store.Session {
		sessions++
		return &store.Session{ID: fmt.Sprintf("s-continue-%d", sessions), PersonID: h.person.ID, Provider: "passkey", Level: level,
			AuthTime: h.clock.Now(), CreatedAt: h.clock.Now(), ExpiresAt: h.clock.Now().Add(time.Hour)}
	}
	var saved [][]*store.AuditEvent
	continueLogin := func(c *store.Client, req *store.AuthRequest, sess *store.Session) string {
		t.Helper()
		saved = nil
		next, err := h.p.Continue(ctx, c, req, sess, func(events ...*store.AuditEvent) error {
			saved = append(saved, events)
			return h.db.CreateSession(ctx, sess, events...)
		})
		if err != nil {
			t.Fatalf("Continue: %v", err)
		}
		if len(saved) != 1 {
			t.Fatalf("Continue called save %d times, want once", len(saved))
		}
		return next
	}
	resume := func(req *store.AuthRequest) string { return PathResume + "?req=" + url.QueryEscape(req.ID) }
	noEvents := func(what string) {
		t.Helper()
		if len(saved) == 1 && len(saved[0]) != 0 {
			t.Errorf("%s: the session was saved with %d events, want none (no code went out)", what, len(saved[0]))
		}
	}

	req, c := pending()
	consentsBefore := len(h.auditEvents("consent"))
	sess := newSession("substantial")
	next := continueLogin(c, req, sess)
	u, err := url.Parse(next)
	if err != nil || !strings.HasPrefix(next, taxCB+"?") || u.Query().Get("code") == "" ||
		u.Query().Get("state") != "st" || u.Query().Get("iss") != h.issuer {
		t.Fatalf("Continue = %q, want the client's redirect URI with code, state and iss", next)
	}
	if got, _ := h.db.GetSession(ctx, sess.ID, h.clock.Now()); got == nil || !slices.Contains(got.Clients, taxID) {
		t.Errorf("the session does not list the client it gave a code to: %+v", got)
	}
	if len(saved[0]) != 1 || saved[0][0].Type != "consent" || saved[0][0].ClientID != taxID {
		t.Errorf("the session was saved with %+v, want the consent event for %s in the same write", saved[0], taxID)
	}
	if consents := h.auditEvents("consent"); len(consents) != consentsBefore+1 || consents[len(consents)-1].ClientID != taxID {
		t.Errorf("%d consent events after Continue, want %d, the last for %s", len(consents), consentsBefore+1, taxID)
	}
	// The request is used up: a second Continue issues nothing, and
	// records no consent for the code it withheld.
	if again := continueLogin(c, req, newSession("substantial")); again != resume(req) {
		t.Errorf("Continue on a used request = %q, want %q", again, resume(req))
	}
	noEvents("used request")
	// The session stored for it does not list the client, which got
	// nothing from it and is not told when it ends.
	usedSess := newSession("substantial")
	if again := continueLogin(c, req, usedSess); again != resume(req) {
		t.Errorf("Continue on a used request = %q, want %q", again, resume(req))
	}
	if got, _ := h.db.GetSession(ctx, usedSess.ID, h.clock.Now()); got == nil || slices.Contains(got.Clients, taxID) {
		t.Errorf("a session that gave no code lists the client: %+v", got)
	}
	if n := len(h.auditEvents("consent")); n != consentsBefore+1 {
		t.Errorf("%d consent events after a Continue on a used request, want %d (no code went out)", n, consentsBefore+1)
	}

	// A session that continues one listing another client gets the
	// code; this client is listed beside it, with the consent, once the
	// code exists.
	req, c = pending()
	unlisted := newSession("substantial")
	unlisted.Clients = []string{publicID}
	if got := continueLogin(c, req, unlisted); !strings.HasPrefix(got, taxCB+"?") {
		t.Errorf("Continue with a session not listing the client = %q, want the redirect URI with a code", got)
	}
	if got, _ := h.db.GetSession(ctx, unlisted.ID, h.clock.Now()); got == nil || !slices.Contains(got.Clients, taxID) || !slices.Contains(got.Clients, publicID) {
		t.Errorf("the session does not list the client it gave a code to: %+v", got)
	}
	if n := len(h.auditEvents("consent")); n != consentsBefore+2 {
		t.Errorf("%d consent events after a Continue with an unlisted client, want %d", n, consentsBefore+2)
	}

	// A session below what the client accepts.
	req, c = pending()
	if got := continueLogin(c, req, newSession("low")); got != resume(req) {
		t.Errorf("Continue with a low session = %q, want %q", got, resume(req))
	}
	noEvents("low session")

	// A redirect URI removed since the request was made: the resume page
	// says so, and nothing goes to the old URI.
	req, c = pending()
	c.RedirectURIs = []string{taxCB2}
	if got := continueLogin(c, req, newSession("substantial")); got != resume(req) {
		t.Errorf("Continue with the redirect URI gone = %q, want %q", got, resume(req))
	}
	noEvents("redirect URI gone")
	if got, _ := h.db.GetSession(ctx, fmt.Sprintf("s-continue-%d", sessions), h.clock.Now()); got == nil || slices.Contains(got.Clients, taxID) {
		t.Errorf("a session that gave no code lists the client: %+v", got)
	}
	if _, err := h.db.GetAuthRequest(ctx, req.ID, h.clock.Now()); err != nil {
		t.Errorf("the request was used although no code could go out: %v", err)
	}

	// The session cannot be stored: Continue says so and hands out
	// nothing; the code it made first is seen by nobody and expires.
	req, c = pending()
	broken := errors.New("store down")
	consentsBefore = len(h.auditEvents("consent"))
	if next, err := h.p.Continue(ctx, c, req, newSession("substantial"), func(...*store.AuditEvent) error { return broken }); !errors.Is(err, broken) || next != "" {
		t.Errorf("Continue with a failing save = %q, %v; want no URL and %v", next, err, broken)
	}
	if n := len(h.auditEvents("consent")); n != consentsBefore {
		t.Errorf("%d consent events after a failing save, want %d", n, consentsBefore)
	}

	// A pushed request that never went through /authorize.
	authURL, status, _ := h.pushBank(bankForm("st", "n", oauth2.GenerateVerifier()))
	if status != http.StatusCreated {
		t.Fatalf("PAR: %d", status)
	}
	ref, _ := url.Parse(authURL)
	id := strings.TrimPrefix(ref.Query().Get("request_uri"), RequestURIPrefix)
	pushed, err := h.db.GetAuthRequest(ctx, id, h.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	bank, err := h.db.GetClient(ctx, bankID)
	if err != nil {
		t.Fatal(err)
	}
	if got := continueLogin(bank, pushed, newSession("substantial")); got != resume(pushed) {
		t.Errorf("Continue on a pushed request not yet started = %q, want %q", got, resume(pushed))
	}
	noEvents("pushed request not started")
}

// TestPageWrongMethod: a method the authorization, resume, cancel and
// logout pages do not serve is answered 405 with Allow (RFC 9110
// §15.5.6) and a plain-language page in the person's language, not the
// mux's English text.
func TestPageWrongMethod(t *testing.T) {
	h := newHarness(t)
	for _, tc := range []struct{ path, allow string }{
		{PathAuthorize, "GET, POST, HEAD"},
		{PathResume, "GET, HEAD"},
		{PathCancel, "GET, POST, HEAD"},
		{PathLogout, "GET, POST, HEAD"},
	} {
		for _, m := range []string{http.MethodPut, http.MethodDelete, http.MethodOptions} {
			req, _ := http.NewRequest(m, h.issuer+tc.path+"?ui_locales=en", nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != tc.allow ||
				!strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
				!strings.Contains(string(body), "This page cannot be used that way") {
				t.Errorf("%s %s: %d Allow %q %s", m, tc.path, resp.StatusCode, resp.Header.Get("Allow"), body)
			}
		}
	}
}

// TestIDTokenHintNamesThePerson: a request whose id_token_hint names a
// person (OIDC Core §3.1.2.1) gets no code from another person's
// session in the browser: prompt=none gets login_required, at the
// authorization endpoint and through PAR alike, and without prompt=none
// the person logs in. The hinted person's own session gets its code
// without a login, and a hint Varde did not issue is refused.
func TestIDTokenHintNamesThePerson(t *testing.T) {
	h := newHarness(t)
	mobile := h.rp(mobileID, mobileCB)
	// Kari's ID tokens, for the mobile app and the bank (one sector).
	kari := mobile.loginFront(h.browser())
	kariHint, _ := kari.token.Extra("id_token").(string)
	// Ola is logged in in this browser.
	h.setLogin(true, "substantial", h.other.ID)
	b := h.browser()
	ola := mobile.loginFront(b)
	olaHint, _ := ola.token.Extra("id_token").(string)
	before := h.logins.Load()

	none := []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("prompt", "none"), oauth2.SetAuthURLParam("id_token_hint", kariHint)}
	resp, _ := b.get(mobile.authorizeURL("s1", "n", oauth2.GenerateVerifier(), none...))
	if q := h.callback(resp, mobileCB); q.Get("error") != "login_required" || q.Get("state") != "s1" {
		t.Fatalf("prompt=none with another person's hint: callback = %v", q)
	}
	f := bankForm("s2", "n", oauth2.GenerateVerifier())
	f.Set("prompt", "none")
	f.Set("id_token_hint", kariHint)
	authURL, status, body := h.pushBank(f)
	if status != http.StatusCreated {
		t.Fatalf("PAR: %d %v", status, body)
	}
	resp, _ = b.get(authURL)
	if q := h.callback(resp, bankCB); q.Get("error") != "login_required" || q.Get("state") != "s2" {
		t.Fatalf("pushed prompt=none with another person's hint: callback = %v", q)
	}
	if h.logins.Load() != before {
		t.Fatal("prompt=none showed the login page")
	}
	// Ola's own hint: his session answers, without a login.
	l := mobile.loginFront(b, oauth2.SetAuthURLParam("prompt", "none"), oauth2.SetAuthURLParam("id_token_hint", olaHint))
	if l.claims.Sub != ola.claims.Sub || h.logins.Load() != before {
		t.Fatalf("own hint: sub %s, logins %d -> %d", l.claims.Sub, before, h.logins.Load())
	}
	// Without prompt=none, Kari's hint sends the person to log in.
	h.setLogin(true, "substantial", h.person.ID)
	l = mobile.loginFront(b, oauth2.SetAuthURLParam("id_token_hint", kariHint))
	if l.claims.Sub != kari.claims.Sub || h.logins.Load() != before+1 {
		t.Fatalf("hint of another person: sub %s, logins %d -> %d", l.claims.Sub, before, h.logins.Load())
	}
	// Someone other than the hinted person logs in for the request: the
	// client gets login_required, not a code for another sub.
	h.setLogin(true, "substantial", h.other.ID)
	resp, _ = h.browser().get(mobile.authorizeURL("s4", "n", oauth2.GenerateVerifier(), oauth2.SetAuthURLParam("id_token_hint", kariHint)))
	if q := h.callback(resp, mobileCB); q.Get("error") != "login_required" || q.Get("state") != "s4" ||
		!strings.Contains(q.Get("error_description"), "id_token_hint") {
		t.Fatalf("another person logged in for a hinted request: callback = %v", q)
	}
	if ev := h.auditEvents("authentication"); len(ev) == 0 || ev[len(ev)-1].Reason != "hint_mismatch" || ev[len(ev)-1].Result != store.ResultFailure {
		t.Errorf("no failed authentication event with reason hint_mismatch")
	}
	// A hint that is no ID token of Varde's is refused.
	resp, _ = b.get(mobile.authorizeURL("s3", "n", oauth2.GenerateVerifier(), oauth2.SetAuthURLParam("id_token_hint", "e30.e30.sig")))
	if q := h.callback(resp, mobileCB); q.Get("error") != "invalid_request" || q.Get("state") != "s3" {
		t.Fatalf("forged hint: callback = %v", q)
	}
}

// TestPromptSelectAccount: prompt=select_account is not answered from
// the session at hand (OIDC Core §3.1.2.1): the person is sent to the
// login page to choose, and whoever logs in gets the code.
func TestPromptSelectAccount(t *testing.T) {
	h := newHarness(t)
	tax := h.rp(taxID, taxCB)
	b := h.browser()
	kari := tax.loginFront(b)
	h.setLogin(true, "substantial", h.other.ID)
	l := tax.loginFront(b, oauth2.SetAuthURLParam("prompt", "select_account"))
	if h.logins.Load() != 2 || l.claims.Sub == kari.claims.Sub {
		t.Fatalf("logins = %d, sub %s (Kari's %s)", h.logins.Load(), l.claims.Sub, kari.claims.Sub)
	}
}

// TestEmptyParametersAreOmitted: RFC 6749 §3.1, "parameters sent
// without a value MUST be treated as if they were omitted from the
// request": an empty request or request_uri is no request object and no
// reference to a pushed request, at the authorization endpoint and at
// PAR alike.
func TestEmptyParametersAreOmitted(t *testing.T) {
	h := newHarness(t)
	for _, param := range []string{"request", "request_uri"} {
		t.Run("authorize, empty "+param, func(t *testing.T) {
			resp, _ := h.browser().get(h.issuer + PathAuthorize + "?" + taxQuery(func(q url.Values) { q.Set(param, "") }).Encode())
			if q := h.callback(resp, taxCB); q.Get("code") == "" || q.Get("state") != "st" {
				t.Fatalf("callback = %v, want a code", q)
			}
		})
		t.Run("PAR, empty "+param, func(t *testing.T) {
			f := bankForm("st", "n", oauth2.GenerateVerifier())
			f.Set(param, "")
			authURL, status, body := h.pushBank(f)
			if status != http.StatusCreated {
				t.Fatalf("PAR: %d %v", status, body)
			}
			resp, _ := h.browser().get(authURL)
			if q := h.callback(resp, bankCB); q.Get("code") == "" {
				t.Fatalf("callback = %v, want a code", q)
			}
		})
	}
}

// TestUnrecognizedParametersAreIgnored: RFC 6749 §3.1, "the
// authorization server MUST ignore unrecognized request parameters".
// The rule that a parameter is sent once is for the parameters Varde
// reads: one it does not may be one another specification lets a
// client repeat (RFC 8707 §2: resource), or hold anything at all.
func TestUnrecognizedParametersAreIgnored(t *testing.T) {
	h := newHarness(t)
	unknown := func(f url.Values) {
		f["resource"] = []string{"https://api.example/a", "https://api.example/b"}
		f.Set("x-vendor", "not UTF-8 \xff, with a NUL \x00")
	}
	verifier := oauth2.GenerateVerifier()
	resp, _ := h.browser().get(h.issuer + PathAuthorize + "?" + taxQuery(func(q url.Values) {
		unknown(q)
		q.Set("code_challenge", oauth2.S256ChallengeFromVerifier(verifier))
	}).Encode())
	q := h.callback(resp, taxCB)
	if q.Get("code") == "" {
		t.Fatalf("authorization endpoint: callback = %v, want a code", q)
	}
	form := codeForm(q.Get("code"), verifier)
	unknown(form)
	if status, _, body := h.postForm(PathToken, form, taxID); status != http.StatusOK {
		t.Fatalf("token endpoint: %d %v", status, body)
	}
	f := bankForm("st", "n", oauth2.GenerateVerifier())
	unknown(f)
	if _, status, body := h.pushBank(f); status != http.StatusCreated {
		t.Fatalf("PAR: %d %v", status, body)
	}
	// A parameter Varde reads is still refused when repeated.
	f = bankForm("st", "n", oauth2.GenerateVerifier())
	f.Add("state", "other")
	if _, status, body := h.pushBank(f); status != http.StatusBadRequest || body["error"] != "invalid_request" {
		t.Fatalf("PAR, repeated state: %d %v", status, body)
	}
}

// TestEveryParameterReadIsJudged: wellFormed refuses a repeated
// parameter, or one that is not text, among those Varde reads
// (parameters); a parameter an endpoint reads that is not listed there
// would be taken first-wins when repeated.
func TestEveryParameterReadIsJudged(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	read := regexp.MustCompile(`(?:form|Form|PostForm)(?:\.Get\(|\.Has\(|\[)"([a-z_]+)"|formValue\(r, "([a-z_]+)"\)`)
	var seen int
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range read.FindAllStringSubmatch(string(src), -1) {
			name := m[1] + m[2]
			seen++
			if !parameters[name] {
				t.Errorf("%s reads parameter %s, which parameters does not list", f, name)
			}
		}
	}
	if seen < 20 {
		t.Fatalf("found only %d parameter reads: the pattern no longer matches the code", seen)
	}
}

// TestLoopbackRedirectAnyPort: RFC 8252 §7.3 (and RFC 9700 §4.1.3): a
// native app's loopback redirect URI, http on the IP literal 127.0.0.1
// or [::1], matches on any port, the port its listener got from the
// operating system; everything else about it is matched exactly, and
// only for a public client (a native app). localhost by name (RFC 8252
// §8.3) and every other redirect URI are matched exactly. The token
// request names the URI with the port the authorization request did.
func TestLoopbackRedirectAnyPort(t *testing.T) {
	h := newHarness(t)
	for _, id := range []string{publicID, taxID} {
		c, err := h.db.GetClient(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		c.RedirectURIs = append(c.RedirectURIs, "http://127.0.0.1/cb", "http://[::1]:8080/cb", "http://localhost/cb")
		if err := h.db.PutClient(t.Context(), c); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name, client, uri string
		match             bool
	}{
		{"registered without a port", publicID, "http://127.0.0.1/cb", true},
		{"IPv4, another port", publicID, "http://127.0.0.1:51004/cb", true},
		{"IPv6, another port", publicID, "http://[::1]:61023/cb", true},
		{"IPv6, without a port", publicID, "http://[::1]/cb", true},
		{"another path", publicID, "http://127.0.0.1:51004/cb/more", false},
		{"a query", publicID, "http://127.0.0.1:51004/cb?x=1", false},
		{"a host that starts like the address", publicID, "http://127.0.0.1.evil.example:51004/cb", false},
		{"user information", publicID, "http://127.0.0.1:51004@evil.example/cb", false},
		{"port 0", publicID, "http://127.0.0.1:0/cb", false},
		{"port out of range", publicID, "http://127.0.0.1:65536/cb", false},
		{"empty port", publicID, "http://127.0.0.1:/cb", false},
		{"https", publicID, "https://127.0.0.1:51004/cb", false},
		{"localhost by name", publicID, "http://localhost:51004/cb", false},
		{"confidential client", taxID, "http://127.0.0.1:51004/cb", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			verifier := oauth2.GenerateVerifier()
			q := taxQuery(func(q url.Values) {
				q.Set("client_id", tt.client)
				q.Set("redirect_uri", tt.uri)
				q.Set("code_challenge", oauth2.S256ChallengeFromVerifier(verifier))
			})
			resp, _ := h.browser().get(h.issuer + PathAuthorize + "?" + q.Encode())
			if !tt.match {
				if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
					t.Fatalf("%s: %d Location %q, want a page", tt.uri, resp.StatusCode, resp.Header.Get("Location"))
				}
				return
			}
			code := h.callback(resp, tt.uri).Get("code")
			form := codeForm(code, verifier)
			form.Set("client_id", publicID)
			form.Set("redirect_uri", "http://127.0.0.1:51005/cb")
			if status, _, body := h.postForm(PathToken, form, ""); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
				t.Fatalf("token request with another port: %d %v, want invalid_grant", status, body)
			}
			form.Set("redirect_uri", tt.uri)
			if status, _, body := h.postForm(PathToken, form, ""); status != http.StatusOK {
				t.Fatalf("token request: %d %v", status, body)
			}
		})
	}
}

// TestPARRedirectURINearlyRegistered: a redirect_uri that differs from
// the registered one only as developers' often do (a trailing slash, http
// for https, another host name for the same machine) is refused, and the
// description says that it must match character for character.
func TestPARRedirectURINearlyRegistered(t *testing.T) {
	h := newHarness(t)
	for _, uri := range []string{bankCB + "/", strings.Replace(bankCB, "https:", "http:", 1), strings.Replace(bankCB, "bank.example", "BANK.example", 1)} {
		form := bankForm("st", "n", oauth2.GenerateVerifier())
		form.Set("redirect_uri", uri)
		_, status, body := h.pushBank(form)
		if desc, _ := body["error_description"].(string); status != http.StatusBadRequest || body["error"] != "invalid_request" ||
			!strings.Contains(desc, "not registered for this client") || !strings.Contains(desc, "character for character") {
			t.Errorf("PAR with redirect_uri %s: %d %v, want invalid_request saying it must match character for character", uri, status, body)
		}
	}
}
