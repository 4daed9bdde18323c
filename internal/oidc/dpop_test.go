package oidc

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/varde-eid/varde/internal/store"
)

// holder is a client's DPoP key, making proofs as RFC 9449 §4.2 says,
// with go-jose: independent of the verifier under test.
type holder struct {
	h   *harness
	key *ecdsa.PrivateKey
	jkt string
}

func (h *harness) dpopHolder() *holder {
	h.t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		h.t.Fatal(err)
	}
	tp, err := (&jose.JSONWebKey{Key: key.Public()}).Thumbprint(crypto.SHA256)
	if err != nil {
		h.t.Fatal(err)
	}
	return &holder{h: h, key: key, jkt: base64.RawURLEncoding.EncodeToString(tp)}
}

// proof is a DPoP proof for method at the issuer's path; with an access
// token, it names it (ath).
func (k *holder) proof(method, path, accessToken string) string {
	k.h.t.Helper()
	return k.proofNonce(method, path, accessToken, "")
}

// proofNonce is proof with a nonce claim, if nonce is not "".
func (k *holder) proofNonce(method, path, accessToken, nonce string) string {
	k.h.t.Helper()
	opts := (&jose.SignerOptions{EmbedJWK: true}).WithType("dpop+jwt")
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k.key}, opts)
	if err != nil {
		k.h.t.Fatal(err)
	}
	claims := map[string]any{"jti": rand.Text(), "htm": method, "htu": k.h.issuer + path, "iat": k.h.clock.Now().Unix()}
	if accessToken != "" {
		sum := sha256.Sum256([]byte(accessToken))
		claims["ath"] = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	if nonce != "" {
		claims["nonce"] = nonce
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		k.h.t.Fatal(err)
	}
	jws, err := s.Sign(payload)
	if err != nil {
		k.h.t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		k.h.t.Fatal(err)
	}
	return out
}

// transport adds a fresh proof to every request to the token endpoint,
// as a DPoP-aware OAuth client library does.
func (k *holder) transport() http.RoundTripper {
	return roundTripper(func(r *http.Request) (*http.Response, error) {
		if r.URL.Path == PathToken {
			r = r.Clone(r.Context())
			r.Header.Set("DPoP", k.proof(r.Method, PathToken, ""))
		}
		return http.DefaultTransport.RoundTrip(r)
	})
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// context for x/oauth2 calls that go through k.
func (k *holder) context() context.Context {
	return context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: k.transport()})
}

// userinfo calls the UserInfo endpoint with scheme and, if proof is not
// "", a DPoP header; scheme "body" posts the token as a form parameter
// (RFC 6750 §2.2).
func (h *harness) userinfoWith(scheme, access, proof string) (int, http.Header, map[string]any) {
	h.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, h.issuer+PathUserinfo, nil)
	if scheme == "body" {
		req, _ = http.NewRequest(http.MethodPost, h.issuer+PathUserinfo, strings.NewReader(url.Values{"access_token": {access}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		req.Header.Set("Authorization", scheme+" "+access)
	}
	if proof != "" {
		req.Header.Set("DPoP", proof)
	}
	return h.do(req)
}

// TestDPoPBoundTokens: an independent relying party library (x/oauth2,
// go-oidc) with DPoP proofs on its token requests gets tokens bound to
// its key (RFC 9449 §5), and the access token works at the UserInfo
// endpoint only with the DPoP scheme and a proof by that key (§7).
func TestDPoPBoundTokens(t *testing.T) {
	h := newHarness(t)
	tax := h.rp(taxID, taxCB)
	b := h.browser()
	k := h.dpopHolder()

	verifier, state, nonce := oauth2.GenerateVerifier(), rand.Text(), rand.Text()
	resp, _ := b.get(tax.authorizeURL(state, nonce, verifier))
	q := h.callback(resp, taxCB)
	tok, err := tax.conf.Exchange(k.context(), q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	if tok.TokenType != "DPoP" {
		t.Fatalf("token_type = %q, want DPoP", tok.TokenType)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := tax.verifier.Verify(context.Background(), raw)
	if err != nil {
		t.Fatalf("id token: %v", err)
	}
	at := tok.AccessToken
	status, _, body := h.userinfoWith("DPoP", at, k.proof(http.MethodGet, PathUserinfo, at))
	if status != 200 || body["sub"] != idt.Subject {
		t.Fatalf("userinfo with proof: %d %v", status, body)
	}

	other := h.dpopHolder()
	tests := []struct {
		name, scheme, proof string
		code                string
		challenge           string
	}{
		{"as a bearer token", "Bearer", "", "invalid_token", `Bearer error="invalid_token"`},
		{"as a bearer token in the body", "body", "", "invalid_token", `DPoP algs="`},
		{"without a proof", "DPoP", "", "invalid_dpop_proof", `DPoP algs="`},
		{"proof by another key", "DPoP", other.proof(http.MethodGet, PathUserinfo, at), "invalid_token", `DPoP algs="`},
		{"proof without ath", "DPoP", k.proof(http.MethodGet, PathUserinfo, ""), "invalid_dpop_proof", `DPoP algs="`},
		{"proof for the token endpoint", "DPoP", k.proof(http.MethodPost, PathToken, at), "invalid_dpop_proof", `DPoP algs="`},
		{"proof for another token", "DPoP", k.proof(http.MethodGet, PathUserinfo, "x"+at), "invalid_dpop_proof", `DPoP algs="`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, hdr, body := h.userinfoWith(tt.scheme, at, tt.proof)
			if status != 401 || body["error"] != tt.code || !slices.ContainsFunc(hdr.Values("WWW-Authenticate"), func(v string) bool {
				return strings.HasPrefix(v, tt.challenge)
			}) {
				t.Fatalf("%d %v %q", status, body, hdr.Values("WWW-Authenticate"))
			}
		})
	}
	// RFC 9449 §7.2: refused as a bearer token, the client is also told
	// to use the DPoP scheme.
	if _, hdr, _ := h.userinfoWith("Bearer", at, ""); !slices.Equal(hdr.Values("WWW-Authenticate"), []string{
		`DPoP algs="ES256 ES384 EdDSA PS256 RS256"`,
		`Bearer error="invalid_token", error_description="access token is bound to a key: send it with the DPoP scheme and a DPoP proof"`,
	}) {
		t.Errorf("challenges for a bound token sent as a bearer token: %q", hdr.Values("WWW-Authenticate"))
	}
	t.Run("refused proof writes nothing", func(t *testing.T) {
		p := other.proof(http.MethodGet, PathUserinfo, at)
		if status, _, body := h.userinfoWith("DPoP", at, p); status != 401 || body["error"] != "invalid_token" {
			t.Fatalf("proof by another key: %d %v", status, body)
		}
		seg, err := base64.RawURLEncoding.DecodeString(strings.Split(p, ".")[1])
		var claims struct {
			JTI string `json:"jti"`
		}
		if err != nil || json.Unmarshal(seg, &claims) != nil {
			t.Fatalf("proof payload: %v", err)
		}
		kept, err := h.db.Remembered(context.Background(), "dpop:"+other.jkt+":"+claims.JTI, h.clock.Now())
		if err != nil || kept {
			t.Fatalf("jti of a refused proof kept in the replay cache: %v %v", kept, err)
		}
	})
	t.Run("replayed proof", func(t *testing.T) {
		p := k.proof(http.MethodGet, PathUserinfo, at)
		if status, _, body := h.userinfoWith("DPoP", at, p); status != 200 {
			t.Fatalf("first use: %d %v", status, body)
		}
		status, _, body := h.userinfoWith("DPoP", at, p)
		if status != 401 || body["error"] != "invalid_dpop_proof" {
			t.Fatalf("replay: %d %v", status, body)
		}
	})

	// A confidential client's refresh token is bound to its own
	// authentication, not the key; the new access token is bound to the
	// key of the refresh request's proof.
	status, _, body = h.postFormProof(PathToken, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}, taxID,
		other.proof(http.MethodPost, PathToken, ""))
	if status != 200 || body["token_type"] != "DPoP" {
		t.Fatalf("refresh with another key: %d %v", status, body)
	}
	at2 := body2str(body, "access_token")
	if status, _, _ := h.userinfoWith("DPoP", at2, k.proof(http.MethodGet, PathUserinfo, at2)); status != 401 {
		t.Fatalf("refreshed token with the old key: %d", status)
	}
	if status, _, _ := h.userinfoWith("DPoP", at2, other.proof(http.MethodGet, PathUserinfo, at2)); status != 200 {
		t.Fatalf("refreshed token with its key: %d", status)
	}

	// Without a proof, a client not registered for DPoP gets a bearer
	// token, which the DPoP scheme does not take.
	l := tax.loginFront(b)
	if l.token.TokenType != "Bearer" {
		t.Fatalf("token_type = %q, want Bearer", l.token.TokenType)
	}
	status, _, body = h.userinfoWith("DPoP", l.token.AccessToken, k.proof(http.MethodGet, PathUserinfo, l.token.AccessToken))
	if status != 401 || body["error"] != "invalid_token" {
		t.Fatalf("bearer token with the DPoP scheme: %d %v", status, body)
	}
	if h.userinfoStatus(l.token.AccessToken) != 200 {
		t.Fatal("bearer token refused")
	}
}

// postFormProof is postForm with a DPoP header.
func (h *harness) postFormProof(path string, form url.Values, basicID, proof string) (int, http.Header, map[string]any) {
	h.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, h.issuer+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basicID != "" {
		req.SetBasicAuth(url.QueryEscape(basicID), url.QueryEscape(h.secrets[basicID]))
	}
	if proof != "" {
		req.Header.Set("DPoP", proof)
	}
	return h.do(req)
}

// TestDPoPRequiredByRegistration: a client registered with
// dpop_bound_access_tokens is refused tokens without a proof (RFC 9449
// §5.2), before its code is spent.
func TestDPoPRequiredByRegistration(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	c, err := h.db.GetClient(ctx, taxID)
	if err != nil {
		t.Fatal(err)
	}
	c.DPoPBoundAccessTokens = true
	if err := h.db.PutClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	k := h.dpopHolder()
	verifier := oauth2.GenerateVerifier()
	code := h.code(h.browser(), verifier)
	status, _, body := h.postForm(PathToken, codeForm(code, verifier), taxID)
	if status != 400 || body["error"] != "invalid_dpop_proof" {
		t.Fatalf("without a proof: %d %v", status, body)
	}
	var audited bool
	for _, e := range h.auditEvents("token") {
		audited = audited || e.Reason == "dpop_proof" && e.ClientID == taxID && e.Result == store.ResultFailure
	}
	if !audited {
		t.Fatal("refusal not audited")
	}
	status, _, body = h.postFormProof(PathToken, codeForm(code, verifier), taxID, "not a proof")
	if status != 400 || body["error"] != "invalid_dpop_proof" {
		t.Fatalf("with a malformed proof: %d %v", status, body)
	}
	status, _, body = h.postFormProof(PathToken, codeForm(code, verifier), taxID, k.proof(http.MethodPost, PathToken, ""))
	if status != 200 || body["token_type"] != "DPoP" {
		t.Fatalf("with a proof: %d %v", status, body)
	}
	status, _, body = h.postForm(PathToken, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {body2str(body, "refresh_token")}}, taxID)
	if status != 400 || body["error"] != "invalid_dpop_proof" {
		t.Fatalf("refresh without a proof: %d %v", status, body)
	}
}

// TestDPoPBindsTheCode: a pushed request names the key its code is bound
// to, with dpop_jkt or a proof (RFC 9449 §10); the code is redeemed only
// with a proof by that key.
func TestDPoPBindsTheCode(t *testing.T) {
	h := newHarness(t)
	k, other := h.dpopHolder(), h.dpopHolder()

	// push pushes a bank request with the extra parameters and DPoP
	// header, and returns the code the login gives, or the PAR refusal.
	push := func(extra url.Values, proof string) (code, verifier string, status int, body map[string]any) {
		t.Helper()
		verifier, state, nonce := oauth2.GenerateVerifier(), rand.Text(), rand.Text()
		form := h.bankAuth(bankForm(state, nonce, verifier))
		for key, v := range extra {
			form[key] = v
		}
		status, _, body = h.postFormProof(PathPAR, form, "", proof)
		if status != http.StatusCreated {
			return "", "", status, body
		}
		q := url.Values{"client_id": {bankID}, "request_uri": {body["request_uri"].(string)}}
		resp, _ := h.browser().get(h.issuer + PathAuthorize + "?" + q.Encode())
		return h.callback(resp, bankCB).Get("code"), verifier, status, body
	}
	redeem := func(code, verifier, proof string) (int, map[string]any) {
		t.Helper()
		form := h.bankAuth(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {bankCB},
			"code_verifier": {verifier}, "client_id": {bankID}})
		status, _, body := h.postFormProof(PathToken, form, "", proof)
		return status, body
	}

	t.Run("dpop_jkt", func(t *testing.T) {
		code, verifier, _, _ := push(url.Values{"dpop_jkt": {k.jkt}}, "")
		status, body := redeem(code, verifier, other.proof(http.MethodPost, PathToken, ""))
		if status != 400 || body["error"] != "invalid_dpop_proof" {
			t.Fatalf("another key: %d %v", status, body)
		}
		// Neither that attempt nor one without a proof spent the code,
		// as a wrong verifier does not: only the key's holder can.
		if status, body := redeem(code, verifier, ""); status != 400 || body["error"] != "invalid_dpop_proof" {
			t.Fatalf("no proof: %d %v", status, body)
		}
		status, body = redeem(code, verifier, k.proof(http.MethodPost, PathToken, ""))
		if status != 200 || body["token_type"] != "DPoP" {
			t.Fatalf("the named key: %d %v", status, body)
		}
		var audited bool
		for _, e := range h.auditEvents("token") {
			audited = audited || e.Reason == "dpop_key_mismatch" && e.ClientID == bankID
		}
		if !audited {
			t.Fatal("mismatch not audited")
		}
	})
	t.Run("proof at PAR", func(t *testing.T) {
		code, verifier, _, _ := push(nil, k.proof(http.MethodPost, PathPAR, ""))
		if status, body := redeem(code, verifier, other.proof(http.MethodPost, PathToken, "")); status != 400 {
			t.Fatalf("another key: %d %v", status, body)
		}
		code, verifier, _, _ = push(url.Values{"dpop_jkt": {k.jkt}}, k.proof(http.MethodPost, PathPAR, ""))
		if status, body := redeem(code, verifier, k.proof(http.MethodPost, PathToken, "")); status != 200 {
			t.Fatalf("the proof's key: %d %v", status, body)
		}
	})
	refusals := []struct {
		name  string
		extra url.Values
		proof func() string
		code  string
	}{
		{"dpop_jkt and proof disagree", url.Values{"dpop_jkt": {other.jkt}}, func() string { return k.proof(http.MethodPost, PathPAR, "") }, "invalid_dpop_proof"},
		{"proof for the token endpoint", nil, func() string { return k.proof(http.MethodPost, PathToken, "") }, "invalid_dpop_proof"},
		{"malformed dpop_jkt", url.Values{"dpop_jkt": {"not-a-thumbprint"}}, func() string { return "" }, "invalid_request"},
		{"dpop_jkt of 31 bytes", url.Values{"dpop_jkt": {k.jkt[:41]}}, func() string { return "" }, "invalid_request"},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			_, _, status, body := push(tt.extra, tt.proof())
			if status != 400 || body["error"] != tt.code {
				t.Fatalf("%d %v", status, body)
			}
		})
	}
	// Front channel: dpop_jkt binds a code just the same.
	t.Run("front channel", func(t *testing.T) {
		tax := h.rp(taxID, taxCB)
		verifier, state, nonce := oauth2.GenerateVerifier(), rand.Text(), rand.Text()
		resp, _ := h.browser().get(tax.authorizeURL(state, nonce, verifier, oauth2.SetAuthURLParam("dpop_jkt", k.jkt)))
		code := h.callback(resp, taxCB).Get("code")
		if status, _, body := h.postForm(PathToken, codeForm(code, verifier), taxID); status != 400 || body["error"] != "invalid_dpop_proof" {
			t.Fatalf("no proof: %d %v", status, body)
		}
	})
}

// kioskLoginWith logs in at the public client with x/oauth2, its token
// request carrying a proof by k, and returns the tokens, bound to k.
func (h *harness) kioskLoginWith(k *holder) *oauth2.Token {
	h.t.Helper()
	kiosk := h.rp(publicID, kioskCB)
	verifier, state, nonce := oauth2.GenerateVerifier(), rand.Text(), rand.Text()
	resp, _ := h.browser().get(kiosk.authorizeURL(state, nonce, verifier))
	code := h.callback(resp, kioskCB).Get("code")
	tok, err := kiosk.conf.Exchange(k.context(), code, oauth2.VerifierOption(verifier))
	if err != nil || tok.TokenType != "DPoP" {
		h.t.Fatalf("exchange: %v %v", tok, err)
	}
	return tok
}

// TestDPoPPublicClientRefresh: a public client's refresh token is bound
// to the key it was issued with (RFC 9449 §5): refreshed only with a
// proof by that key, and its successor is bound to it too.
func TestDPoPPublicClientRefresh(t *testing.T) {
	h := newHarness(t)
	k, other := h.dpopHolder(), h.dpopHolder()
	tok := h.kioskLoginWith(k)
	refresh := func(rt, proof string) (int, map[string]any) {
		status, _, body := h.postFormProof(PathToken, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {publicID}}, "", proof)
		return status, body
	}
	if status, body := refresh(tok.RefreshToken, ""); status != 400 || body["error"] != "invalid_dpop_proof" {
		t.Fatalf("no proof: %d %v", status, body)
	}
	if status, body := refresh(tok.RefreshToken, other.proof(http.MethodPost, PathToken, "")); status != 400 || body["error"] != "invalid_dpop_proof" {
		t.Fatalf("another key: %d %v", status, body)
	}
	status, body := refresh(tok.RefreshToken, k.proof(http.MethodPost, PathToken, ""))
	if status != 200 || body["token_type"] != "DPoP" {
		t.Fatalf("its key: %d %v", status, body)
	}
	next := body2str(body, "refresh_token")
	if status, body := refresh(next, other.proof(http.MethodPost, PathToken, "")); status != 400 || body["error"] != "invalid_dpop_proof" {
		t.Fatalf("successor with another key: %d %v", status, body)
	}
	// The refusals above did not spend the token nor set off reuse
	// detection: the holder of the key can still use it.
	if status, body := refresh(next, k.proof(http.MethodPost, PathToken, "")); status != 200 {
		t.Fatalf("successor with its key: %d %v", status, body)
	}
}

// TestDPoPRefusedProofSpendsNoAssertion: a proof refused for any reason
// (another URL, a jti already used) is found before the client
// assertion's jti is recorded, at the token endpoint and at PAR, so the
// client may send the same assertion again with a good proof; that
// spends it. At PAR a request refused for its parameters spends none
// either.
func TestDPoPRefusedProofSpendsNoAssertion(t *testing.T) {
	h := newHarness(t)
	k := h.dpopHolder()
	form := url.Values{"grant_type": {"authorization_code"}, "code": {rand.Text()}, "redirect_uri": {bankCB}, "code_verifier": {oauth2.GenerateVerifier()},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {h.assertion(nil)}}
	status, _, body := h.postFormProof(PathToken, form, "", k.proof(http.MethodPost, PathUserinfo, ""))
	if status != http.StatusBadRequest || body["error"] != "invalid_dpop_proof" {
		t.Fatalf("proof for another URL: %d %v", status, body)
	}
	used := k.proof(http.MethodPost, PathToken, "")
	status, _, body = h.postFormProof(PathToken, form, "", used)
	if status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Fatalf("same assertion with a good proof: %d %v, want invalid_grant (unknown code)", status, body)
	}
	status, _, body = h.postFormProof(PathToken, form, "", k.proof(http.MethodPost, PathToken, ""))
	if status != http.StatusUnauthorized || body["error"] != "invalid_client" {
		t.Fatalf("same assertion a third time: %d %v, want invalid_client", status, body)
	}
	form.Set("client_assertion", h.assertion(nil))
	status, _, body = h.postFormProof(PathToken, form, "", used)
	if status != http.StatusBadRequest || body["error"] != "invalid_dpop_proof" {
		t.Fatalf("new assertion with a used proof: %d %v", status, body)
	}
	status, _, body = h.postFormProof(PathToken, form, "", k.proof(http.MethodPost, PathToken, ""))
	if status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Fatalf("that assertion with a new proof: %d %v, want invalid_grant (unknown code)", status, body)
	}
	// Both refusals of a proof, by its checks and as a replay, are
	// audited.
	var wrongURL, replayed bool
	for _, e := range h.auditEvents("token") {
		if e.Reason == "dpop_proof" && e.ClientID == bankID && e.Details["endpoint"] == "token" {
			wrongURL = wrongURL || strings.Contains(e.Details["description"], "htu")
			replayed = replayed || strings.Contains(e.Details["description"], "already used")
		}
	}
	if !wrongURL || !replayed {
		t.Fatalf("audited: proof for another URL %v, replayed proof %v", wrongURL, replayed)
	}

	verifier := oauth2.GenerateVerifier()
	par := h.bankAuth(bankForm(rand.Text(), rand.Text(), verifier))
	status, _, body = h.postFormProof(PathPAR, par, "", k.proof(http.MethodPost, PathToken, ""))
	if status != http.StatusBadRequest || body["error"] != "invalid_dpop_proof" {
		t.Fatalf("PAR, proof for another URL: %d %v", status, body)
	}
	bad := url.Values{}
	for key, v := range par {
		bad[key] = v
	}
	bad.Del("code_challenge")
	status, _, body = h.postFormProof(PathPAR, bad, "", k.proof(http.MethodPost, PathPAR, ""))
	if status != http.StatusBadRequest || body["error"] != "invalid_request" {
		t.Fatalf("PAR, same assertion without PKCE: %d %v", status, body)
	}
	status, _, body = h.postFormProof(PathPAR, par, "", k.proof(http.MethodPost, PathPAR, ""))
	if status != http.StatusCreated {
		t.Fatalf("PAR, same assertion with a good proof: %d %v", status, body)
	}
}
