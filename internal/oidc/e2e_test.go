package oidc

import (
	"context"
	"crypto/rand"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/varde-eid/varde/internal/assurance"
	oa "github.com/varde-eid/varde/internal/oauth2"
	"github.com/varde-eid/varde/internal/store"
)

// rp is an independent relying party built on go-oidc and x/oauth2.
type rp struct {
	h        *harness
	provider *gooidc.Provider
	verifier *gooidc.IDTokenVerifier
	conf     *oauth2.Config
}

func (h *harness) rp(clientID, redirect string) *rp {
	h.t.Helper()
	ctx := context.Background()
	provider, err := gooidc.NewProvider(ctx, h.issuer)
	if err != nil {
		h.t.Fatal(err)
	}
	// Clients without a secret (private_key_jwt, public) send client_id
	// in the form.
	style := oauth2.AuthStyleInHeader
	if _, ok := h.secrets[clientID]; !ok {
		style = oauth2.AuthStyleInParams
	}
	ep := provider.Endpoint()
	ep.AuthStyle = style
	return &rp{
		h:        h,
		provider: provider,
		verifier: provider.Verifier(&gooidc.Config{ClientID: clientID, Now: h.clock.Now}),
		conf: &oauth2.Config{ClientID: clientID, ClientSecret: h.secrets[clientID], Endpoint: ep,
			RedirectURL: redirect, Scopes: []string{gooidc.ScopeOpenID}},
	}
}

// idClaims are the ID token claims the tests look at.
type idClaims struct {
	Sub        string            `json:"sub"`
	ACR        string            `json:"acr"`
	AMR        []string          `json:"amr"`
	AZP        string            `json:"azp"`
	SID        string            `json:"sid"`
	Nonce      string            `json:"nonce"`
	AuthTime   int64             `json:"auth_time"`
	Provider   string            `json:"provider"`
	Name       string            `json:"name"`
	GivenName  string            `json:"given_name"`
	FamilyName string            `json:"family_name"`
	BirthDate  string            `json:"birthdate"`
	NationalID map[string]string `json:"national_id"`
}

type login struct {
	token  *oauth2.Token
	idt    *gooidc.IDToken
	claims idClaims
}

// exchangeOpts are the extra token request parameters a client needs.
func (r *rp) exchangeOpts(verifier string) []oauth2.AuthCodeOption {
	opts := []oauth2.AuthCodeOption{oauth2.VerifierOption(verifier)}
	if r.conf.ClientID == bankID {
		opts = append(opts,
			oauth2.SetAuthURLParam("client_assertion_type", oa.AssertionType),
			oauth2.SetAuthURLParam("client_assertion", r.h.assertion(nil)))
	}
	return opts
}

// finish exchanges the code and verifies the ID token with go-oidc.
func (r *rp) finish(code, verifier, nonce string) *login {
	r.h.t.Helper()
	ctx := context.Background()
	tok, err := r.conf.Exchange(ctx, code, r.exchangeOpts(verifier)...)
	if err != nil {
		r.h.t.Fatalf("exchange: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := r.verifier.Verify(ctx, raw)
	if err != nil {
		r.h.t.Fatalf("verify id token: %v", err)
	}
	if idt.Nonce != nonce {
		r.h.t.Fatalf("nonce = %q, want %q", idt.Nonce, nonce)
	}
	l := &login{token: tok, idt: idt}
	if err := idt.Claims(&l.claims); err != nil {
		r.h.t.Fatal(err)
	}
	return l
}

// authorizeURL is a front-channel authorization request.
func (r *rp) authorizeURL(state, nonce, verifier string, extra ...oauth2.AuthCodeOption) string {
	opts := append([]oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier), gooidc.Nonce(nonce)}, extra...)
	return r.conf.AuthCodeURL(state, opts...)
}

// loginFront runs a whole front-channel login in b.
func (r *rp) loginFront(b *browser, extra ...oauth2.AuthCodeOption) *login {
	r.h.t.Helper()
	verifier, state, nonce := oauth2.GenerateVerifier(), rand.Text(), rand.Text()
	resp, _ := b.get(r.authorizeURL(state, nonce, verifier, extra...))
	q := r.h.callback(resp, r.conf.RedirectURL)
	if q.Get("state") != state || q.Get("code") == "" {
		r.h.t.Fatalf("callback = %v", q)
	}
	return r.finish(q.Get("code"), verifier, nonce)
}

// pushBank pushes an authorization request for the bank (RFC 9126) and
// returns the authorization URL that refers to it.
func (h *harness) pushBank(form url.Values) (authURL string, status int, body map[string]any) {
	h.t.Helper()
	status, _, body = h.postForm(PathPAR, h.bankAuth(form), "")
	if status != http.StatusCreated {
		return "", status, body
	}
	q := url.Values{"client_id": {bankID}, "request_uri": {body["request_uri"].(string)}}
	return h.issuer + PathAuthorize + "?" + q.Encode(), status, body
}

func bankForm(state, nonce, verifier string) url.Values {
	return url.Values{
		"response_type": {"code"}, "client_id": {bankID}, "redirect_uri": {bankCB}, "scope": {"openid"},
		"state": {state}, "nonce": {nonce}, "code_challenge": {oauth2.S256ChallengeFromVerifier(verifier)},
		"code_challenge_method": {"S256"}, "acr_values": {assurance.ACRSubstantial},
	}
}

// loginBank runs a PAR + private_key_jwt login for the bank in b.
func (h *harness) loginBank(r *rp, b *browser) *login {
	h.t.Helper()
	verifier, state, nonce := oauth2.GenerateVerifier(), rand.Text(), rand.Text()
	authURL, status, body := h.pushBank(bankForm(state, nonce, verifier))
	if status != http.StatusCreated {
		h.t.Fatalf("PAR: %d %v", status, body)
	}
	if body["expires_in"].(float64) != 90 || !strings.HasPrefix(body["request_uri"].(string), RequestURIPrefix) {
		h.t.Fatalf("PAR response %v", body)
	}
	resp, _ := b.get(authURL)
	q := h.callback(resp, bankCB)
	if q.Get("state") != state {
		h.t.Fatalf("state = %q", q.Get("state"))
	}
	return r.finish(q.Get("code"), verifier, nonce)
}

func TestEndToEndLogin(t *testing.T) {
	h := newHarness(t)
	bank := h.rp(bankID, bankCB)
	tax := h.rp(taxID, taxCB)
	mobile := h.rp(mobileID, mobileCB)
	b := h.browser()

	// PAR + private_key_jwt, with a login.
	l1 := h.loginBank(bank, b)
	if h.logins.Load() != 1 {
		t.Fatalf("logins = %d", h.logins.Load())
	}
	c := l1.claims
	if c.ACR != assurance.ACRSubstantial || c.AZP != bankID || c.Provider != "passkey" || c.SID == "" ||
		c.AuthTime != h.clock.Now().Unix() || strings.Join(c.AMR, " ") != "hwk user mfa" {
		t.Fatalf("claims = %+v", c)
	}
	if c.Name != "Kari Nordmann" || c.NationalID["scheme"] != "no:fnr" || c.NationalID["value"] != "01017012345" {
		t.Fatalf("bank claims = %+v", c)
	}
	if c.GivenName != "" || c.BirthDate != "" {
		t.Fatalf("bank got claims it is not registered for: %+v", c)
	}
	if c.Sub != PairwiseSubject(h.p.SubjectSalt, "bank.example", h.person.ID) {
		t.Fatalf("sub %s is not the pairwise subject", c.Sub)
	}

	// Single sign-on: the tax office (client_secret_basic, front channel)
	// gets a code without another login, and a different sub.
	l2 := tax.loginFront(b, oauth2.SetAuthURLParam("acr_values", assurance.ACRSubstantial))
	if h.logins.Load() != 1 {
		t.Fatalf("SSO failed: logins = %d", h.logins.Load())
	}
	if l2.claims.Sub == c.Sub {
		t.Fatal("two sectors got the same sub")
	}
	if l2.claims.GivenName != "Kari" || l2.claims.FamilyName != "Nordmann" || l2.claims.BirthDate != "1970-01-01" || l2.claims.NationalID != nil || l2.claims.Name != "" {
		t.Fatalf("tax claims = %+v", l2.claims)
	}

	// Same sector, other client: same sub. Same person again: same sub.
	l3 := mobile.loginFront(b)
	if l3.claims.Sub != c.Sub {
		t.Fatal("same sector got different subs")
	}
	l4 := h.loginBank(bank, b)
	if l4.claims.Sub != c.Sub {
		t.Fatal("same person got a different sub")
	}

	// Another person in another browser gets another sub.
	h.setLogin(true, "substantial", h.other.ID)
	l5 := h.loginBank(bank, h.browser())
	if l5.claims.Sub == c.Sub || l5.claims.NationalID != nil {
		t.Fatalf("other person: %+v", l5.claims)
	}

	// Userinfo through go-oidc: same sub, registered claims only.
	ui, err := bank.provider.UserInfo(context.Background(), oauth2.StaticTokenSource(l1.token))
	if err != nil {
		t.Fatal(err)
	}
	var uic idClaims
	if err := ui.Claims(&uic); err != nil {
		t.Fatal(err)
	}
	if ui.Subject != c.Sub || uic.Name != "Kari Nordmann" || uic.NationalID["value"] != "01017012345" || uic.GivenName != "" {
		t.Fatalf("userinfo = %+v", uic)
	}

	// Audit: a consent event naming the released claims, token events.
	var found bool
	for _, e := range h.auditEvents("consent") {
		if e.ClientID == bankID && e.Details["claims"] == "name national_id" && e.Details["basis"] == "registration" && e.PersonID == h.person.ID {
			found = true
		}
	}
	if !found {
		t.Fatal("no consent audit event for the bank")
	}
	if n := len(h.auditEvents("token")); n != 5 {
		t.Fatalf("token audit events = %d, want 5", n)
	}
	if v := h.counter("varde_tokens_issued_total", map[string]string{"grant_type": "authorization_code"}); v != 5 {
		t.Fatalf("tokens issued metric = %v", v)
	}
	// The session lists the clients that got tokens (for logout).
	sess, err := h.sessions.Current(sessionRequest(b, h.issuer))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(sess.Clients, ",") != "bank,tax,bank-mobile" {
		t.Fatalf("session clients = %v", sess.Clients)
	}
}

// sessionRequest builds a request carrying b's cookies for issuer.
func sessionRequest(b *browser, issuer string) *http.Request {
	req, _ := http.NewRequest(http.MethodGet, issuer+"/", nil)
	u, _ := url.Parse(issuer)
	for _, c := range b.c.Jar.Cookies(u) {
		req.AddCookie(c)
	}
	return req
}

func TestPublicClientLogin(t *testing.T) {
	h := newHarness(t)
	kiosk := h.rp(publicID, kioskCB)
	l := kiosk.loginFront(h.browser())
	if l.claims.Sub != PairwiseSubject(h.p.SubjectSalt, publicID, h.person.ID) {
		t.Fatal("public client sub is not pairwise over its client ID")
	}
}

func TestRefreshRotationAndReuse(t *testing.T) {
	h := newHarness(t)
	tax := h.rp(taxID, taxCB)
	l := tax.loginFront(h.browser())
	ctx := context.Background()
	first := l.token.RefreshToken
	if first == "" {
		t.Fatal("no refresh token")
	}
	h.clock.Add(time.Minute)
	old := *l.token
	old.Expiry = time.Now().Add(-time.Hour) // x/oauth2 judges expiry by the real clock
	rotated, err := tax.conf.TokenSource(ctx, &old).Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if rotated.RefreshToken == "" || rotated.RefreshToken == first || rotated.AccessToken == l.token.AccessToken {
		t.Fatal("refresh did not rotate")
	}
	raw, _ := rotated.Extra("id_token").(string)
	idt, err := tax.verifier.Verify(ctx, raw)
	if err != nil {
		t.Fatalf("refreshed id token: %v", err)
	}
	var c idClaims
	_ = idt.Claims(&c)
	if c.Sub != l.claims.Sub || c.AuthTime != l.claims.AuthTime || c.Nonce != "" || c.ACR != l.claims.ACR {
		t.Fatalf("refreshed claims = %+v, first %+v", c, l.claims)
	}
	if status := h.userinfoStatus(rotated.AccessToken); status != 200 {
		t.Fatalf("userinfo with rotated token: %d", status)
	}

	// Reusing the first refresh token is a theft signal: refused, and the
	// rotated tokens stop working too (RFC 9700 §4.14.2).
	status, _, body := h.postForm(PathToken, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first}}, taxID)
	if status != 400 || body["error"] != "invalid_grant" {
		t.Fatalf("reuse: %d %v", status, body)
	}
	status, _, body = h.postForm(PathToken, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rotated.RefreshToken}}, taxID)
	if status != 400 || body["error"] != "invalid_grant" {
		t.Fatalf("rotated after reuse: %d %v", status, body)
	}
	if status := h.userinfoStatus(rotated.AccessToken); status != 401 {
		t.Fatalf("userinfo after reuse: %d", status)
	}
	var reuse bool
	for _, e := range h.auditEvents("token") {
		reuse = reuse || e.Reason == "refresh_reuse" && e.Result == "failure" && e.ClientID == taxID
	}
	if !reuse {
		t.Fatal("reuse not audited")
	}
}

func TestRefreshTokenBoundToClient(t *testing.T) {
	h := newHarness(t)
	l := h.rp(taxID, taxCB).loginFront(h.browser())
	status, _, body := h.postForm(PathToken, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {l.token.RefreshToken}}, mobileID)
	if status != 400 || body["error"] != "invalid_grant" {
		t.Fatalf("other client: %d %v", status, body)
	}
	// The rightful client can still use it.
	status, _, body = h.postForm(PathToken, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {l.token.RefreshToken}}, taxID)
	if status != 200 {
		t.Fatalf("own client: %d %v", status, body)
	}
	next := body2str(body, "refresh_token")
	// An access token is not a refresh token; an expired refresh token fails.
	status, _, body = h.postForm(PathToken, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {l.token.AccessToken}}, taxID)
	if status != 400 || body["error"] != "invalid_grant" {
		t.Fatalf("access token as refresh: %d %v", status, body)
	}
	h.clock.Add(DefaultRefreshTokenLifetime + time.Second)
	status, _, body = h.postForm(PathToken, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {next}}, taxID)
	if status != 400 || body["error"] != "invalid_grant" {
		t.Fatalf("expired refresh: %d %v", status, body)
	}
}

func body2str(m map[string]any, k string) string { s, _ := m[k].(string); return s }

func (h *harness) userinfoStatus(access string) int {
	req, _ := http.NewRequest(http.MethodGet, h.issuer+PathUserinfo, nil)
	req.Header.Set("Authorization", "Bearer "+access)
	status, _, _ := h.do(req)
	return status
}

// TestPushedHook: Pushed hears of every request once it is stored, and of
// none that was refused.
func TestPushedHook(t *testing.T) {
	h := newHarness(t)
	var (
		mu    sync.Mutex
		heard []*store.AuthRequest
	)
	h.mu.Lock()
	h.p.Pushed = func(r *http.Request, req *store.AuthRequest, c *store.Client) {
		mu.Lock()
		defer mu.Unlock()
		if c.ID != req.ClientID {
			t.Errorf("Pushed with client %s for a request of %s", c.ID, req.ClientID)
		}
		heard = append(heard, req)
	}
	h.mu.Unlock()
	form := bankForm("st", "n", oauth2.GenerateVerifier())
	form.Set("provider_hint", "any")
	if _, status, body := h.pushBank(form); status != http.StatusCreated {
		t.Fatalf("PAR: %d %v", status, body)
	}
	bad := bankForm("st", "n", oauth2.GenerateVerifier())
	bad.Set("redirect_uri", "https://evil.example/cb")
	if _, status, _ := h.pushBank(bad); status != http.StatusBadRequest {
		t.Fatalf("PAR with a wrong redirect_uri: %d", status)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(heard) != 1 || heard[0].ProviderHint != "any" || !heard[0].Pushed {
		t.Fatalf("Pushed heard %+v, want the one accepted request", heard)
	}
	if _, err := h.db.GetAuthRequest(t.Context(), heard[0].ID, h.clock.Now()); err != nil {
		t.Errorf("Pushed heard of a request that is not stored: %v", err)
	}
}

// TestUserinfoTokenByTwoMethods: a request that carries the access token
// in the Authorization header and also as an access_token parameter, in
// the query or the form body, is invalid_request (RFC 6750 §2, §3.1).
func TestUserinfoTokenByTwoMethods(t *testing.T) {
	h := newHarness(t)
	l := h.loginBank(h.rp(bankID, bankCB), h.browser())
	at := l.token.AccessToken
	if status := h.userinfoStatus(at); status != http.StatusOK {
		t.Fatalf("header only: %d", status)
	}
	query, _ := http.NewRequest(http.MethodGet, h.issuer+PathUserinfo+"?access_token="+url.QueryEscape(at), nil)
	form, _ := http.NewRequest(http.MethodPost, h.issuer+PathUserinfo, strings.NewReader(url.Values{"access_token": {at}}.Encode()))
	form.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for name, req := range map[string]*http.Request{"query": query, "form": form} {
		req.Header.Set("Authorization", "Bearer "+at)
		status, hdr, body := h.do(req)
		if status != http.StatusBadRequest || body["error"] != "invalid_request" ||
			!strings.Contains(hdr.Get("WWW-Authenticate"), `error="invalid_request"`) {
			t.Errorf("%s: %d %v %v", name, status, hdr.Values("WWW-Authenticate"), body)
		}
	}
}

// TestUserinfoTokenInTheBody: the access token may come as the
// access_token parameter of a form-encoded POST body without an
// Authorization header (RFC 6750 §2.2; OIDC Core §5.3.1 sends it "per
// Section 2" of RFC 6750), answered as with the header; never in the
// query (RFC 6750 §2.3, RFC 9700 §4.3.2): one there is no credential,
// and the request is invalid_request, saying where the token goes; nor
// in a body of another type, nor twice.
func TestUserinfoTokenInTheBody(t *testing.T) {
	h := newHarness(t)
	l := h.loginBank(h.rp(bankID, bankCB), h.browser())
	at := l.token.AccessToken
	post := func(ctype string, form url.Values) (int, http.Header, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, h.issuer+PathUserinfo, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", ctype)
		return h.do(req)
	}
	status, _, body := post("application/x-www-form-urlencoded", url.Values{"access_token": {at}})
	if status != http.StatusOK || body["sub"] != l.idt.Subject {
		t.Fatalf("token in the body: %d %v, want the ID token's sub %s", status, body, l.idt.Subject)
	}
	status, hdr, body := post("application/x-www-form-urlencoded", url.Values{"access_token": {at, at}})
	if status != http.StatusBadRequest || body["error"] != "invalid_request" || !strings.Contains(hdr.Get("WWW-Authenticate"), `error="invalid_request"`) {
		t.Errorf("token twice in the body: %d %v %v", status, hdr.Values("WWW-Authenticate"), body)
	}
	status, hdr, body = post("application/x-www-form-urlencoded", url.Values{"access_token": {"not-a-token"}})
	if status != http.StatusUnauthorized || body["error"] != "invalid_token" || !strings.Contains(hdr.Get("WWW-Authenticate"), `Bearer error="invalid_token"`) {
		t.Errorf("unknown token in the body: %d %v %v", status, hdr.Values("WWW-Authenticate"), body)
	}
	query, _ := http.NewRequest(http.MethodGet, h.issuer+PathUserinfo+"?access_token="+url.QueryEscape(at), nil)
	queryPost, _ := http.NewRequest(http.MethodPost, h.issuer+PathUserinfo+"?access_token="+url.QueryEscape(at), nil)
	for name, req := range map[string]*http.Request{"GET": query, "POST": queryPost} {
		status, hdr, body = h.do(req)
		if desc, _ := body["error_description"].(string); status != http.StatusBadRequest || body["error"] != "invalid_request" ||
			!strings.Contains(desc, "Authorization header") || !strings.Contains(hdr.Get("WWW-Authenticate"), `Bearer error="invalid_request"`) {
			t.Errorf("%s with the token in the query: %d %v %v, want invalid_request saying where the token goes", name, status, hdr.Values("WWW-Authenticate"), body)
		}
	}
	status, hdr, _ = post("text/plain", url.Values{"access_token": {at}})
	if status != http.StatusUnauthorized || hdr.Get("WWW-Authenticate") != `Bearer realm="varde"` {
		t.Errorf("token in a text/plain body: %d %v", status, hdr.Values("WWW-Authenticate"))
	}
}
