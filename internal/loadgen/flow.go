package loadgen

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/descope/virtualwebauthn"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"

	"github.com/varde-eid/varde/internal/oauth2/dpopclient"
)

// RP is a relying party registered at Varde with private_key_jwt.
type RP struct {
	Issuer      string
	ClientID    string
	RedirectURI string
	Key         *ecdsa.PrivateKey
	KeyID       string
	// DPoPKey, if set, binds the relying party's tokens to it (RFC 9449):
	// its pushed requests and token requests carry a DPoP proof, and a
	// login counts only if the tokens came back bound (token_type DPoP).
	// Proofs carry the nonce Varde last handed out (§8); a request
	// refused with use_dpop_nonce is sent once more, with the new one.
	DPoPKey *ecdsa.PrivateKey
	// HTTP is shared by all virtual users; it must not follow redirects
	// (NewHTTPClient makes one).
	HTTP *http.Client
	// IDTokenAlgs are the algorithms the relying party accepts its ID
	// tokens signed with (its id_token_signed_response_alg); empty:
	// those discovery lists.
	IDTokenAlgs []string

	signer   jose.Signer
	verifier *oidc.IDTokenVerifier
	// dpop makes the proofs and keeps the nonce Varde last handed out,
	// for every virtual user; nil without DPoPKey.
	dpop *dpopclient.Prover
	// tokenHTTP is HTTP for x/oauth2's token requests: with a DPoP key,
	// it sends a proof with each.
	tokenHTTP *http.Client
}

// NewHTTPClient returns a client for n concurrent virtual users that
// does not follow redirects (the flow inspects every one).
func NewHTTPClient(n int) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 2 * n
	t.MaxIdleConnsPerHost = 2 * n
	return &http.Client{
		Transport:     t,
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Setup discovers the issuer (go-oidc) and prepares signing.
func (rp *RP) Setup(ctx context.Context) error {
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, rp.HTTP), rp.Issuer)
	if err != nil {
		return err
	}
	rp.verifier = p.Verifier(&oidc.Config{ClientID: rp.ClientID, SupportedSigningAlgs: rp.IDTokenAlgs})
	rp.signer, err = jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: rp.Key, KeyID: rp.KeyID}}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return err
	}
	rp.dpop, rp.tokenHTTP = nil, rp.HTTP
	if rp.DPoPKey == nil {
		return nil
	}
	if rp.dpop, err = dpopclient.New(rp.DPoPKey, nil); err != nil {
		return err
	}
	rp.tokenHTTP, err = rp.dpop.Client(rp.HTTP, rp.Issuer+"/token")
	return err
}

// signJWT marshals claims once and signs them with s, in compact form.
func signJWT(s jose.Signer, claims any) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	jws, err := s.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

// Person is a synthetic person with a software authenticator holding one
// passkey.
type Person struct {
	Auth       virtualwebauthn.Authenticator
	Cred       virtualwebauthn.Credential
	WebAuthnRP virtualwebauthn.RelyingParty
	Number     string
}

// NewDevice returns an authenticator for origin (http://localhost:PORT).
// A synced passkey is backup eligible.
func NewDevice(origin string, synced bool) *Person {
	u, _ := url.Parse(origin)
	return &Person{
		Auth:       virtualwebauthn.NewAuthenticatorWithOptions(virtualwebauthn.AuthenticatorOptions{BackupEligible: synced, BackupState: synced}),
		Cred:       NewCredential(),
		WebAuthnRP: virtualwebauthn.RelyingParty{ID: u.Hostname(), Name: "Varde", Origin: origin},
	}
}

func newJar() http.CookieJar {
	j, _ := cookiejar.New(nil)
	return j
}

// browser is one person's browser: a cookie jar over the shared client.
type browser struct {
	c   *http.Client
	jar http.CookieJar
}

func (b *browser) do(req *http.Request) (*http.Response, []byte, error) {
	for _, c := range b.jar.Cookies(req.URL) {
		req.AddCookie(c)
	}
	res, err := b.c.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if rc := res.Cookies(); len(rc) > 0 {
		b.jar.SetCookies(req.URL, rc)
	}
	return res, body, err
}

func (b *browser) get(ctx context.Context, u string) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, nil, err
	}
	return b.do(req)
}

func (b *browser) postJSON(ctx context.Context, u string, body []byte) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	return b.do(req)
}

func (b *browser) postForm(ctx context.Context, u string, form url.Values) (*http.Response, []byte, error) {
	return b.postFormWith(ctx, u, form, "")
}

// postFormWith is postForm with a DPoP proof, if dpop is not "".
func (b *browser) postFormWith(ctx context.Context, u string, form url.Values, dpop string) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if dpop != "" {
		req.Header.Set("DPoP", dpop)
	}
	return b.do(req)
}

type ceremony struct {
	Ceremony string          `json:"ceremony"`
	Options  json.RawMessage `json:"options"`
	Redirect string          `json:"redirect"`
	Error    string          `json:"error"`
	Message  string          `json:"message"`
}

func decodeReply(step string, res *http.Response, body []byte) (*ceremony, error) {
	var c ceremony
	if err := json.Unmarshal(body, &c); err != nil {
		return nil, fmt.Errorf("%s: status %d: %.200s", step, res.StatusCode, body)
	}
	if res.StatusCode != http.StatusOK {
		return nil, &StepError{Step: step, Status: res.StatusCode, Code: c.Error, Message: c.Message}
	}
	return &c, nil
}

// StepError is a failed step with the server's error code.
type StepError struct {
	Step    string
	Status  int
	Code    string
	Message string
}

func (e *StepError) Error() string {
	return fmt.Sprintf("%s: status %d: %s: %s", e.Step, e.Status, e.Code, e.Message)
}

// Enrol creates a synthetic test person at Varde (synthetic enrolment
// must be on) with p's passkey.
func Enrol(ctx context.Context, c *http.Client, issuer string, p *Person, given, family string) error {
	b := &browser{c: c, jar: newJar()}
	begin, _ := json.Marshal(map[string]string{"attempt": "", "given_name": given, "family_name": family, "birth_date": "", "kind": "fnr"})
	res, body, err := b.postJSON(ctx, issuer+"/passkey/enrol/begin", begin)
	if err != nil {
		return err
	}
	cer, err := decodeReply("enrol begin", res, body)
	if err != nil {
		return err
	}
	opts, err := publicKey(cer.Options)
	if err != nil {
		return err
	}
	o, err := virtualwebauthn.ParseAttestationOptions(opts)
	if err != nil {
		return fmt.Errorf("enrol options: %w", err)
	}
	p.Auth.Options.UserHandle = []byte(o.UserID)
	att := virtualwebauthn.CreateAttestationResponse(p.WebAuthnRP, p.Auth, p.Cred, *o)
	res, body, err = b.postJSON(ctx, issuer+"/passkey/enrol/finish?ceremony="+url.QueryEscape(cer.Ceremony), []byte(att))
	if err != nil {
		return err
	}
	if _, err := decodeReply("enrol finish", res, body); err != nil {
		return err
	}
	p.Auth.AddCredential(p.Cred)
	return nil
}

// publicKey accepts {"publicKey": {...}} or the bare options.
func publicKey(raw json.RawMessage) (string, error) {
	var wrapped struct {
		PublicKey json.RawMessage `json:"publicKey"`
	}
	if err := json.Unmarshal(raw, &wrapped); err != nil {
		return "", fmt.Errorf("options: %w", err)
	}
	if len(wrapped.PublicKey) > 0 {
		return string(wrapped.PublicKey), nil
	}
	return string(raw), nil
}

// LoginOptions shape one login.
type LoginOptions struct {
	ACRValues string // space-separated
	Prompt    string
	// Origin overrides the origin the authenticator signs for (the
	// phishing case).
	Origin string
	// ProviderHint is Varde's provider_hint: a provider's ID, or "any".
	ProviderHint string
	// Scope is scope values asked for beside openid, space-separated
	// (offline_access).
	Scope string
	// Jar is the person's browser, kept from one login to the next, so
	// that a session at Varde can spare a later login (single sign-on);
	// nil: a fresh browser for this login.
	Jar http.CookieJar
}

// Result is a completed login.
type Result struct {
	IDToken     *oidc.IDToken
	RawIDToken  string
	Claims      map[string]any
	AccessToken string
	Token       *oauth2.Token
	// SSO is true when the authorization endpoint answered with the code
	// at once, from the person's session at Varde, and nobody logged in.
	SSO bool
	// Code and CodeVerifier are the authorization code the login
	// redeemed and its PKCE verifier, to present again.
	Code, CodeVerifier string
}

// push sends a pushed authorization request with form, and a DPoP
// proof if the relying party has a key. Asked for a DPoP nonce (RFC
// 9449 §8), it sends the request once more, with a proof that carries
// the nonce and a new client assertion.
func (rp *RP) push(ctx context.Context, b *browser, form url.Values) (*http.Response, []byte, error) {
	res, body, err := rp.pushOnce(ctx, b, form)
	if err != nil || rp.dpop == nil || !dpopclient.AuthServerAsksNonce(res.StatusCode, body) {
		return res, body, err
	}
	ca, err := rp.assertion()
	if err != nil {
		return nil, nil, err
	}
	form.Set("client_assertion", ca)
	return rp.pushOnce(ctx, b, form)
}

// pushOnce sends a pushed authorization request with form, and a fresh
// DPoP proof if the relying party has a key, whose nonce it keeps.
func (rp *RP) pushOnce(ctx context.Context, b *browser, form url.Values) (*http.Response, []byte, error) {
	var proof string
	if rp.dpop != nil {
		var err error
		if proof, err = rp.dpop.Proof(http.MethodPost, rp.Issuer+"/par", ""); err != nil {
			return nil, nil, err
		}
	}
	res, body, err := b.postFormWith(ctx, rp.Issuer+"/par", form, proof)
	if err != nil {
		return nil, nil, err
	}
	if rp.dpop != nil {
		rp.dpop.KeepNonce(res)
	}
	return res, body, nil
}

// exchange redeems code with PKCE's verifier and a fresh client
// assertion, and a DPoP proof if the relying party has a key. Asked for
// a DPoP nonce (RFC 9449 §8), it tries once more, with a proof that
// carries the nonce and a new assertion.
func (rp *RP) exchange(ctx context.Context, code, verifier string) (*oauth2.Token, error) {
	conf := &oauth2.Config{ClientID: rp.ClientID, RedirectURL: rp.RedirectURI,
		Endpoint: oauth2.Endpoint{TokenURL: rp.Issuer + "/token", AuthStyle: oauth2.AuthStyleInParams}}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, rp.tokenHTTP)
	tok, err := rp.exchangeOnce(ctx, conf, code, verifier)
	if rp.dpop != nil && dpopclient.ExchangeAsksNonce(err) {
		tok, err = rp.exchangeOnce(ctx, conf, code, verifier)
	}
	return tok, err
}

// exchangeOnce is one token request, with a new client assertion.
func (rp *RP) exchangeOnce(ctx context.Context, conf *oauth2.Config, code, verifier string) (*oauth2.Token, error) {
	ca, err := rp.assertion()
	if err != nil {
		return nil, err
	}
	return conf.Exchange(ctx, code, oauth2.VerifierOption(verifier),
		oauth2.SetAuthURLParam("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
		oauth2.SetAuthURLParam("client_assertion", ca))
}

// Refresh redeems refreshToken (RFC 6749 §6) with a fresh client
// assertion and returns the tokens issued in its place; a refusal is an
// *oauth2.RetrieveError with the error code. It sends no DPoP proof, so
// it is for a relying party without a DPoP key.
func (rp *RP) Refresh(ctx context.Context, refreshToken string) (*oauth2.Token, error) {
	if rp.dpop != nil {
		return nil, errors.New("refresh: not made for a relying party with a DPoP key")
	}
	ca, err := rp.assertion()
	if err != nil {
		return nil, err
	}
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}, "client_id": {rp.ClientID},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {ca}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rp.Issuer+"/token", strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := rp.tokenHTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("refresh: %w", err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("refresh: %w", err)
	}
	var tok struct {
		AccessToken  string `json:"access_token"`
		TokenType    string `json:"token_type"`
		RefreshToken string `json:"refresh_token"`
		IDToken      string `json:"id_token"`
		Error        string `json:"error"`
		Description  string `json:"error_description"`
	}
	if err := json.Unmarshal(body, &tok); err != nil {
		return nil, fmt.Errorf("refresh: status %d: %w", res.StatusCode, err)
	}
	if res.StatusCode != http.StatusOK {
		return nil, &oauth2.RetrieveError{Response: res, Body: body, ErrorCode: tok.Error, ErrorDescription: tok.Description}
	}
	out := &oauth2.Token{AccessToken: tok.AccessToken, TokenType: tok.TokenType, RefreshToken: tok.RefreshToken}
	return out.WithExtra(map[string]any{"id_token": tok.IDToken}), nil
}

// VerifyIDToken verifies raw as the relying party verifies the ID token
// of a login (go-oidc): its signature with one of IDTokenAlgs, issuer,
// audience and expiry; the nonce is the caller's to check.
func (rp *RP) VerifyIDToken(ctx context.Context, raw string) (*oidc.IDToken, error) {
	return rp.verifier.Verify(ctx, raw)
}

func random(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// assertion is a fresh private_key_jwt client assertion (RFC 7523 §3).
// It marshals the claims once and signs them, rather than through
// jwt.Signed, whose builder marshals, unmarshals and marshals the claims
// again: the same JWT for less of the CPU the node under test shares.
func (rp *RP) assertion() (string, error) {
	now := time.Now()
	return signJWT(rp.signer, jwt.Claims{
		Issuer: rp.ClientID, Subject: rp.ClientID, Audience: jwt.Audience{rp.Issuer},
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Minute)), ID: random(12),
	})
}

// Login runs one complete passkey login for p in a fresh browser and
// verifies the ID token.
func (rp *RP) Login(ctx context.Context, p *Person, o LoginOptions) (*Result, error) {
	return rp.LoginWith(ctx, p, o)
}

// LoginWith runs one complete login in a fresh browser, with a, the way
// the person proves who they are at the login page, and verifies the ID
// token.
func (rp *RP) LoginWith(ctx context.Context, a Authenticator, o LoginOptions) (*Result, error) {
	b := &browser{c: rp.HTTP, jar: o.Jar}
	if b.jar == nil {
		b.jar = newJar()
	}
	state, nonce, verifier := random(12), random(12), oauth2.GenerateVerifier()
	ca, err := rp.assertion()
	if err != nil {
		return nil, err
	}
	form := url.Values{
		"response_type": {"code"}, "client_id": {rp.ClientID}, "redirect_uri": {rp.RedirectURI},
		"scope": {strings.TrimSpace("openid " + o.Scope)}, "state": {state}, "nonce": {nonce},
		"code_challenge": {oauth2.S256ChallengeFromVerifier(verifier)}, "code_challenge_method": {"S256"},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {ca},
	}
	if o.ACRValues != "" {
		form.Set("acr_values", o.ACRValues)
	}
	if o.Prompt != "" {
		form.Set("prompt", o.Prompt)
	}
	if o.ProviderHint != "" {
		form.Set("provider_hint", o.ProviderHint)
	}
	// 1. PAR (RFC 9126); with a DPoP key, a proof that binds the code to
	// it (RFC 9449 §10.1).
	res, body, err := rp.push(ctx, b, form)
	if err != nil {
		return nil, err
	}
	var par struct {
		RequestURI string `json:"request_uri"`
	}
	if res.StatusCode != http.StatusCreated || json.Unmarshal(body, &par) != nil || par.RequestURI == "" {
		return nil, fmt.Errorf("par: status %d: %.200s", res.StatusCode, body)
	}
	// 2–4. The browser's part, back to the relying party with the code.
	cb, sso, err := rp.browse(ctx, b, a, rp.Issuer+"/authorize?"+url.Values{"client_id": {rp.ClientID}, "request_uri": {par.RequestURI}}.Encode(), o)
	if err != nil {
		return nil, err
	}
	q := cb.Query()
	if !strings.HasPrefix(cb.String(), rp.RedirectURI+"?") || q.Get("state") != state || q.Get("iss") != rp.Issuer {
		return nil, fmt.Errorf("callback %s: wrong redirect, state or iss", cb.Redacted())
	}
	// 5. Token request with PKCE and a fresh client assertion.
	tok, err := rp.exchange(ctx, q.Get("code"), verifier)
	if err != nil {
		return nil, fmt.Errorf("token: %w", err)
	}
	if rp.dpop != nil && tok.TokenType != "DPoP" {
		return nil, fmt.Errorf("token: token_type %q, want DPoP", tok.TokenType)
	}
	// 6. ID token verification (go-oidc) and nonce.
	raw, _ := tok.Extra("id_token").(string)
	idt, err := rp.verifier.Verify(ctx, raw)
	if err != nil {
		return nil, fmt.Errorf("id token: %w", err)
	}
	if idt.Nonce != nonce {
		return nil, errors.New("id token: nonce mismatch")
	}
	claims := map[string]any{}
	if err := idt.Claims(&claims); err != nil {
		return nil, err
	}
	return &Result{IDToken: idt, RawIDToken: raw, Claims: claims, AccessToken: tok.AccessToken, Token: tok,
		SSO: sso, Code: q.Get("code"), CodeVerifier: verifier}, nil
}

// Authorize is the browser's part of a login that a relying party made
// its own way (another library, its own request): in the browser o.Jar
// (nil: a fresh one) it opens authURL, the authorization endpoint with
// the request, logs in there with a, and returns the redirect to
// rp.RedirectURI, with the code, state and iss, without following it;
// an error response there is a *StepError. Only Issuer, RedirectURI
// and HTTP of rp are used.
func (rp *RP) Authorize(ctx context.Context, a Authenticator, authURL string, o LoginOptions) (*url.URL, error) {
	b := &browser{c: rp.HTTP, jar: o.Jar}
	if b.jar == nil {
		b.jar = newJar()
	}
	cb, _, err := rp.browse(ctx, b, a, authURL, o)
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(cb.String(), rp.RedirectURI+"?") {
		return nil, fmt.Errorf("callback %s: not the redirect URI", cb.Redacted())
	}
	return cb, nil
}

// browse opens authURL in b and follows the login to the redirect to
// the relying party: sso is true when the person's session at Varde
// answered at once and nobody logged in. An error response at the
// redirect URI is a *StepError.
func (rp *RP) browse(ctx context.Context, b *browser, a Authenticator, authURL string, o LoginOptions) (cb *url.URL, sso bool, err error) {
	// 2. Authorization endpoint: a person without a session goes to
	// login, at the provider's login page or, when provider_hint chose,
	// straight at an upstream eID.
	res, _, err := b.get(ctx, authURL)
	if err != nil {
		return nil, false, err
	}
	loginURL, err := res.Location()
	if err != nil {
		return nil, false, fmt.Errorf("authorize: status %d, no redirect", res.StatusCode)
	}
	// 3. The person proves who they are (passkey, upstream eID, …),
	// unless their session at Varde did already (single sign-on).
	next := loginURL.String()
	sso = strings.HasPrefix(next, rp.RedirectURI+"?")
	if !sso {
		if loginURL.Query().Get("req") == "" && o.ProviderHint == "" {
			return nil, false, fmt.Errorf("authorize: redirect %s has no req", loginURL)
		}
		if next, err = a.authenticate(ctx, b, rp, loginURL, o); err != nil {
			return nil, false, err
		}
	}
	// 4. Back to the relying party with the code: straight from the
	// login, or through the provider's /authorize/resume.
	cb, err = url.Parse(resolve(rp.Issuer, next))
	if err != nil {
		return nil, false, fmt.Errorf("after login: %w", err)
	}
	status := http.StatusSeeOther
	if !strings.HasPrefix(cb.String(), rp.RedirectURI+"?") {
		res, body, err := b.get(ctx, cb.String())
		if err != nil {
			return nil, false, err
		}
		if cb, err = res.Location(); err != nil {
			// A page where a redirect was due: what it says is why.
			return nil, false, &StepError{Step: "resume", Status: res.StatusCode, Code: "no redirect",
				Message: fmt.Sprintf("at %s: %.200s", res.Request.URL.Redacted(), body)}
		}
		status = res.StatusCode
	}
	if q := cb.Query(); q.Get("error") != "" {
		return nil, false, &StepError{Step: "authorize", Status: status, Code: q.Get("error"), Message: q.Get("error_description")}
	}
	return cb, sso, nil
}

// resolve is ref, where Varde sent the browser, as a URL: a path
// ("/authorize/resume?…", which under an issuer with a path starts
// with that path) is on the issuer's host.
func resolve(issuer, ref string) string {
	b, err := url.Parse(issuer)
	if err != nil {
		return ref
	}
	r, err := url.Parse(ref)
	if err != nil {
		return ref
	}
	return b.ResolveReference(r).String()
}

// authenticate implements Authenticator: the passkey login ceremony.
func (p *Person) authenticate(ctx context.Context, b *browser, rp *RP, login *url.URL, o LoginOptions) (string, error) {
	return rp.assert(ctx, b, p, login.Query().Get("req"), o.Origin)
}

// assert runs the passkey login ceremony and returns where the browser
// goes next.
func (rp *RP) assert(ctx context.Context, b *browser, p *Person, attempt, origin string) (string, error) {
	begin, _ := json.Marshal(map[string]string{"attempt": attempt})
	res, body, err := b.postJSON(ctx, rp.Issuer+"/passkey/login/begin", begin)
	if err != nil {
		return "", err
	}
	cer, err := decodeReply("login begin", res, body)
	if err != nil {
		return "", err
	}
	opts, err := publicKey(cer.Options)
	if err != nil {
		return "", err
	}
	o, err := virtualwebauthn.ParseAssertionOptions(opts)
	if err != nil {
		return "", fmt.Errorf("login options: %w", err)
	}
	wrp := p.WebAuthnRP
	if origin != "" {
		wrp.Origin = origin
	}
	p.Cred.Counter++
	assertion := virtualwebauthn.CreateAssertionResponse(wrp, p.Auth, p.Cred, *o)
	res, body, err = b.postJSON(ctx, rp.Issuer+"/passkey/login/finish?ceremony="+url.QueryEscape(cer.Ceremony), []byte(assertion))
	if err != nil {
		return "", err
	}
	fin, err := decodeReply("login finish", res, body)
	if err != nil {
		return "", err
	}
	return fin.Redirect, nil
}
