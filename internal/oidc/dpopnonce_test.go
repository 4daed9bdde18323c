package oidc

import (
	"crypto/rand"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	oa "github.com/varde-eid/varde/internal/oauth2"
	"github.com/varde-eid/varde/internal/store"
)

// nonceKey is the DPoP nonce key of the tests.
var nonceKey = []byte(strings.Repeat("n", oa.MinDPoPNonceKeySize))

// withNonces has the provider require DPoP nonces (RFC 9449 §8, §9).
func withNonces(h *harness) {
	h.p.DPoP = &oa.DPoPVerifier{Replay: h.db, Now: h.clock.Now, Nonces: &oa.DPoPNonces{Key: nonceKey}}
}

// TestDPoPNonceAtPARAndToken: with nonces required, a proof at the PAR
// or token endpoint without a nonce this server provided recently is
// refused with 400 use_dpop_nonce and the nonce to use in DPoP-Nonce
// (RFC 9449 §8.1); the refusal spends neither the client assertion nor
// the code, and is not audited as a failed token request. Every answer
// of those endpoints carries the current nonce (§8.2).
func TestDPoPNonceAtPARAndToken(t *testing.T) {
	h := newHarness(t, withNonces)
	nonces := h.p.DPoP.Nonces
	now := h.clock.Now()
	current := nonces.Nonce(now)
	k := h.dpopHolder()
	// askedForNonce checks a refusal that asks for a nonce.
	askedForNonce := func(t *testing.T, status int, hdr http.Header, body map[string]any) {
		t.Helper()
		if status != 400 || body["error"] != oa.CodeUseDPoPNonce || body2str(body, "error_description") == "" {
			t.Fatalf("%d %v, want 400 use_dpop_nonce with a description", status, body)
		}
		if got := hdr.Get("DPoP-Nonce"); got != current {
			t.Fatalf("DPoP-Nonce = %q, want the current nonce %q", got, current)
		}
	}

	verifier, state, nonce := oauth2.GenerateVerifier(), rand.Text(), rand.Text()
	parForm := h.bankAuth(bankForm(state, nonce, verifier))
	status, hdr, body := h.postFormProof(PathPAR, parForm, "", k.proof(http.MethodPost, PathPAR, ""))
	askedForNonce(t, status, hdr, body)
	// The same client assertion again, with a proof that carries the
	// nonce: the request for one spent nothing.
	status, hdr, body = h.postFormProof(PathPAR, parForm, "", k.proofNonce(http.MethodPost, PathPAR, "", current))
	if status != http.StatusCreated || hdr.Get("DPoP-Nonce") != current {
		t.Fatalf("PAR with the nonce: %d %v, DPoP-Nonce %q", status, body, hdr.Get("DPoP-Nonce"))
	}
	q := url.Values{"client_id": {bankID}, "request_uri": {body2str(body, "request_uri")}}
	resp, _ := h.browser().get(h.issuer + PathAuthorize + "?" + q.Encode())
	code := h.callback(resp, bankCB).Get("code")
	tokenForm := h.bankAuth(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {bankCB},
		"code_verifier": {verifier}, "client_id": {bankID}})

	other := (&oa.DPoPNonces{Key: []byte(strings.Repeat("o", oa.MinDPoPNonceKeySize))}).Nonce(now)
	for _, tt := range []struct{ name, nonce string }{
		{"no nonce", ""},
		{"nonce two windows old", nonces.Nonce(now.Add(-10 * time.Minute))},
		{"nonce of another server", other},
		{"nonce made up by the client", "n-0S6_WzA2Mj"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, hdr, body := h.postFormProof(PathToken, tokenForm, "", k.proofNonce(http.MethodPost, PathToken, "", tt.nonce))
			askedForNonce(t, status, hdr, body)
		})
	}
	// None of those spent the code or the assertion. The nonce handed
	// out in the window before this one is still good.
	status, hdr, body = h.postFormProof(PathToken, tokenForm, "", k.proofNonce(http.MethodPost, PathToken, "", nonces.Nonce(now.Add(-5*time.Minute))))
	if status != 200 || body["token_type"] != "DPoP" || hdr.Get("DPoP-Nonce") != current {
		t.Fatalf("token with the previous window's nonce: %d %v, DPoP-Nonce %q", status, body, hdr.Get("DPoP-Nonce"))
	}
	for _, e := range h.auditEvents("token") {
		if e.Result == store.ResultFailure {
			t.Errorf("audited a failed token request (%s: %v); asking for a nonce is not one", e.Reason, e.Details)
		}
	}
	if n := h.counter("varde_oidc_errors_total", map[string]string{"endpoint": "token", "error": oa.CodeUseDPoPNonce}); n != 4 {
		t.Errorf("use_dpop_nonce counted %v times at the token endpoint, want 4", n)
	}

	// Any other answer carries the nonce too, and a proof without one is
	// asked for one before anything else about the request is looked at.
	unknown := h.bankAuth(url.Values{"grant_type": {"authorization_code"}, "code": {"unknown"}, "redirect_uri": {bankCB},
		"code_verifier": {verifier}, "client_id": {bankID}})
	status, hdr, body = h.postFormProof(PathToken, unknown, "", k.proofNonce(http.MethodPost, PathToken, "", current))
	if status != 400 || body["error"] != "invalid_grant" || hdr.Get("DPoP-Nonce") != current {
		t.Fatalf("unknown code: %d %v, DPoP-Nonce %q", status, body, hdr.Get("DPoP-Nonce"))
	}
	status, hdr, body = h.postFormProof(PathToken, url.Values{"grant_type": {"authorization_code"}}, "", k.proof(http.MethodPost, PathToken, ""))
	askedForNonce(t, status, hdr, body)
	// A request without a proof is not asked for a nonce.
	status, hdr, body = h.postForm(PathToken, codeForm("unknown", verifier), taxID)
	if status != 400 || body["error"] != "invalid_grant" || hdr.Get("DPoP-Nonce") != current {
		t.Fatalf("without a proof: %d %v, DPoP-Nonce %q", status, body, hdr.Get("DPoP-Nonce"))
	}
}

// TestDPoPNonceAtUserinfo: with nonces required, the UserInfo endpoint,
// a protected resource, refuses a proof without a recent nonce with 401
// and a DPoP challenge naming use_dpop_nonce (RFC 9449 §9), and carries
// the current nonce in every answer. A bearer token needs no nonce.
func TestDPoPNonceAtUserinfo(t *testing.T) {
	h := newHarness(t, withNonces)
	nonces := h.p.DPoP.Nonces
	now := h.clock.Now()
	current := nonces.Nonce(now)
	k := h.dpopHolder()
	verifier := oauth2.GenerateVerifier()
	code := h.code(h.browser(), verifier)
	status, _, body := h.postFormProof(PathToken, codeForm(code, verifier), taxID, k.proofNonce(http.MethodPost, PathToken, "", current))
	if status != 200 || body["token_type"] != "DPoP" {
		t.Fatalf("token: %d %v", status, body)
	}
	at := body2str(body, "access_token")

	tests := []struct {
		name, nonce string
		status      int
	}{
		{"no nonce", "", 401},
		{"nonce two windows old", nonces.Nonce(now.Add(-10 * time.Minute)), 401},
		{"nonce made up by the client", "n-0S6_WzA2Mj", 401},
		{"nonce of the previous window", nonces.Nonce(now.Add(-5 * time.Minute)), 200},
		{"current nonce", current, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, hdr, body := h.userinfoWith("DPoP", at, k.proofNonce(http.MethodGet, PathUserinfo, at, tt.nonce))
			if status != tt.status || hdr.Get("DPoP-Nonce") != current {
				t.Fatalf("%d %v, DPoP-Nonce %q; want %d and the current nonce", status, body, hdr.Get("DPoP-Nonce"), tt.status)
			}
			if status == 200 {
				return
			}
			challenge := hdr.Get("WWW-Authenticate")
			if body["error"] != oa.CodeUseDPoPNonce || !strings.HasPrefix(challenge, `DPoP algs="`) ||
				!strings.Contains(challenge, `error="use_dpop_nonce", error_description="`) {
				t.Fatalf("%v, WWW-Authenticate %q; want use_dpop_nonce in a DPoP challenge", body, challenge)
			}
		})
	}

	// Five minutes on, a new nonce is handed out, and the old one is
	// still taken.
	h.clock.Add(5 * time.Minute)
	status, hdr, body := h.userinfoWith("DPoP", at, k.proofNonce(http.MethodGet, PathUserinfo, at, current))
	if next := nonces.Nonce(h.clock.Now()); status != 200 || next == current || hdr.Get("DPoP-Nonce") != next {
		t.Fatalf("a window later: %d %v, DPoP-Nonce %q, want 200 and the new nonce %q", status, body, hdr.Get("DPoP-Nonce"), next)
	}

	// A bearer token has no proof, so no nonce.
	l := h.rp(taxID, taxCB).loginFront(h.browser())
	if l.token.TokenType != "Bearer" || h.userinfoStatus(l.token.AccessToken) != 200 {
		t.Fatalf("bearer token: %s, userinfo %d", l.token.TokenType, h.userinfoStatus(l.token.AccessToken))
	}
}

// TestNoDPoPNonceUnlessRequired: without nonces, no answer carries
// DPoP-Nonce and a proof needs none (the other DPoP tests).
func TestNoDPoPNonceUnlessRequired(t *testing.T) {
	h := newHarness(t)
	k := h.dpopHolder()
	verifier := oauth2.GenerateVerifier()
	code := h.code(h.browser(), verifier)
	status, hdr, body := h.postFormProof(PathToken, codeForm(code, verifier), taxID, k.proof(http.MethodPost, PathToken, ""))
	if status != 200 || hdr.Values("DPoP-Nonce") != nil {
		t.Fatalf("token: %d %v, DPoP-Nonce %q", status, body, hdr.Values("DPoP-Nonce"))
	}
	at := body2str(body, "access_token")
	status, hdr, body = h.userinfoWith("DPoP", at, k.proof(http.MethodGet, PathUserinfo, at))
	if status != 200 || hdr.Values("DPoP-Nonce") != nil {
		t.Fatalf("userinfo: %d %v, DPoP-Nonce %q", status, body, hdr.Values("DPoP-Nonce"))
	}
}

// TestDPoPNonceKeyChecked: a nonce key too short to be a MAC key is a
// missing dependency.
func TestDPoPNonceKeyChecked(t *testing.T) {
	p := &Provider{DPoP: &oa.DPoPVerifier{Nonces: &oa.DPoPNonces{Key: nonceKey[:oa.MinDPoPNonceKeySize-1]}}}
	if err := p.Check(); err == nil || !strings.Contains(err.Error(), "DPoP nonce key must be at least 32 bytes") {
		t.Errorf("Check = %v", err)
	}
	p.DPoP.Nonces.Key = nonceKey
	if err := p.Check(); err != nil && strings.Contains(err.Error(), "nonce") {
		t.Errorf("Check = %v", err)
	}
}
