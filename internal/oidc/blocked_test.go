package oidc

import (
	"context"
	"net/url"
	"testing"

	"golang.org/x/oauth2"
)

// TestBlockedPersonGetsNoTokens: once a person's Varde identity is
// blocked, a code issued just before is not redeemed, and the tokens
// issued before stop working: the block revokes the grants, and the
// person is checked again where tokens are issued and where userinfo
// answers.
func TestBlockedPersonGetsNoTokens(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	verifier := oauth2.GenerateVerifier()
	status, _, body := h.postForm(PathToken, codeForm(h.code(h.browser(), verifier), verifier), taxID)
	if status != 200 {
		t.Fatalf("redemption: %d %v", status, body)
	}
	access, refresh := body["access_token"].(string), body["refresh_token"].(string)
	pending := oauth2.GenerateVerifier()
	code := h.code(h.browser(), pending)

	if _, err := h.db.BlockPerson(ctx, h.person.ID, "stolen phone", h.clock.Now(), nil); err != nil {
		t.Fatal(err)
	}
	if status, _, body := h.postForm(PathToken, codeForm(code, pending), taxID); status != 400 || body["error"] != "invalid_grant" {
		t.Errorf("a code issued before the block: %d %v", status, body)
	}
	if got := h.userinfoStatus(access); got != 401 {
		t.Errorf("userinfo with an access token issued before the block: %d", got)
	}
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}
	if status, _, body := h.postForm(PathToken, form, taxID); status != 400 || body["error"] != "invalid_grant" {
		t.Errorf("refresh after the block: %d %v", status, body)
	}
}
