package oidc

import (
	"context"
	"net/url"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/varde-eid/varde/internal/store"
	"github.com/varde-eid/varde/internal/store/sqlstore"
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

// blockedMeanwhile is the store's grants with the person blocked, as
// by varde persons block on another node, after the token endpoint read
// them and before it stores the grant and tokens of a code.
type blockedMeanwhile struct {
	store.Grants
	db *sqlstore.DB
}

func (s blockedMeanwhile) CreateGrantTokensForCode(ctx context.Context, codeHash []byte, now time.Time, g *store.Grant, e *store.AuditEvent, tokens ...*store.Token) (*store.AuthCode, error) {
	if _, err := s.db.BlockPerson(ctx, g.PersonID, "stolen phone", now, nil); err != nil {
		return nil, err
	}
	return s.Grants.CreateGrantTokensForCode(ctx, codeHash, now, g, e, tokens...)
}

// TestBlockLandingDuringRedemptionStopsItsTokens: a block that lands
// while a code is being redeemed, after the token endpoint checked the
// person and before it stored the grant, revokes nothing of that grant,
// which did not exist yet. Its tokens still stop: introspection answers
// inactive for a blocked person's tokens, as userinfo refuses them and
// the token endpoint refuses to refresh them.
func TestBlockLandingDuringRedemptionStopsItsTokens(t *testing.T) {
	h := newHarness(t)
	verifier := oauth2.GenerateVerifier()
	code := h.code(h.browser(), verifier)
	h.p.Grants = blockedMeanwhile{Grants: h.db, db: h.db}
	status, _, body := h.postForm(PathToken, codeForm(code, verifier), taxID)
	if status != 200 {
		t.Fatalf("redemption: %d %v", status, body)
	}
	h.p.Grants = h.db
	access, refresh := body["access_token"].(string), body["refresh_token"].(string)
	for name, tok := range map[string]string{"access token": access, "refresh token": refresh} {
		if h.introspect(t, taxID, tok, nil).Active {
			t.Errorf("introspection: the %s of a blocked person is active", name)
		}
	}
	if got := h.userinfoStatus(access); got != 401 {
		t.Errorf("userinfo: %d", got)
	}
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}
	if status, _, body := h.postForm(PathToken, form, taxID); status != 400 || body["error"] != "invalid_grant" {
		t.Errorf("refresh: %d %v", status, body)
	}
}
