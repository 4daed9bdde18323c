package oidc

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"net/url"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"

	"github.com/varde-eid/varde/internal/keys"
	"github.com/varde-eid/varde/internal/store"
)

// TestRS256ClientWithoutRSAKey: a node without an RSA key answers the
// code exchange of a client registered for RS256 ID tokens with
// server_error, and signs it no ES256 ID token instead, which the
// relying party would refuse or, worse, take against its registration
// (ADR 32). Its discovery lists ES256 alone.
func TestRS256ClientWithoutRSAKey(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	c, err := h.db.GetClient(ctx, taxID)
	if err != nil {
		t.Fatal(err)
	}
	c.IDTokenAlg = store.IDTokenRS256
	if err := h.db.PutClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	if algs := h.p.Metadata().IDTokenSigningAlgValuesSupported; len(algs) != 1 || algs[0] != "ES256" {
		t.Fatalf("a node without an RSA key lists %v, want ES256 alone", algs)
	}
	verifier := oauth2.GenerateVerifier()
	code := h.code(h.browser(), verifier)
	status, _, body := h.postForm(PathToken, codeForm(code, verifier), taxID)
	if status != 500 || body["error"] != "server_error" || body["id_token"] != nil {
		t.Fatalf("code exchange of an RS256 client at a node without an RSA key: %d %v", status, body)
	}
}

// TestRS256LogoutTokenRenewed: the logout token of a client registered
// for RS256 is signed RS256 by the node's RSA key (Back-Channel Logout
// 1.0 §2.6: validated as its ID tokens are), and signed anew with RS256
// when the outbox renews it; an ES256 client's stays ES256.
func TestRS256LogoutTokenRenewed(t *testing.T) {
	k, err := rsa.GenerateKey(rand.Reader, keys.MinRSABits)
	if err != nil {
		t.Fatal(err)
	}
	rsaSigner, err := keys.New(k, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, func(h *harness) { h.p.RSASigner = rsaSigner })
	ctx := context.Background()
	bank, err := h.db.GetClient(ctx, bankID)
	if err != nil {
		t.Fatal(err)
	}
	legacy := *bank
	legacy.ID, legacy.IDTokenAlg = "legacy", store.IDTokenRS256
	if err := h.db.PutClient(ctx, &legacy); err != nil {
		t.Fatal(err)
	}
	_, toks, err := h.p.logoutTokens(ctx, []*store.Client{&legacy, bank}, &store.Session{ID: "s1", PersonID: h.person.ID}, h.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	later := h.clock.Now().Add(time.Minute)
	for i, want := range []struct{ alg, kid string }{{"RS256", rsaSigner.KID()}, {"ES256", h.p.Signer.KID()}} {
		renewed, err := h.p.RenewLogoutToken(logoutForm(toks[i]), later)
		if err != nil {
			t.Fatal(err)
		}
		form, err := url.ParseQuery(string(renewed))
		if err != nil {
			t.Fatal(err)
		}
		for name, raw := range map[string]string{"signed": toks[i], "renewed": form.Get("logout_token")} {
			tok, err := jwt.ParseSigned(raw, keys.Algorithms)
			if err != nil {
				t.Fatal(err)
			}
			if h := tok.Headers[0]; h.Algorithm != want.alg || h.KeyID != want.kid {
				t.Errorf("%s logout token for a client registered for %s: alg %s by %s", name, want.alg, h.Algorithm, h.KeyID)
			}
		}
	}

	// The bank registers for RS256 while its token waits: the token is
	// renewed for what the bank now verifies, as it goes to the URI the
	// bank has now (LogoutURI).
	bank.IDTokenAlg = store.IDTokenRS256
	if err := h.db.PutClient(ctx, bank); err != nil {
		t.Fatal(err)
	}
	renewed, err := h.p.RenewLogoutToken(logoutForm(toks[1]), later)
	if err != nil {
		t.Fatal(err)
	}
	form, err := url.ParseQuery(string(renewed))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.ParseSigned(form.Get("logout_token"), keys.Algorithms)
	if err != nil {
		t.Fatal(err)
	}
	if h := tok.Headers[0]; h.Algorithm != "RS256" || h.KeyID != rsaSigner.KID() {
		t.Errorf("logout token of a client that switched to RS256, renewed: alg %s by %s", h.Algorithm, h.KeyID)
	}
}
