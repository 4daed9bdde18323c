package oidc

import (
	"context"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/varde-eid/varde/internal/assurance"
)

// TestDegradedModePolicy: a login the broker let through below the
// requested level (no provider meeting it was up) gets tokens only for a
// client that registered a degraded-mode level, with acr the level
// actually reached and "degraded": true; a client without such a policy
// never gets a lower level.
func TestDegradedModePolicy(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.mu.Lock()
	h.loginLevel, h.loginDegraded = "substantial", true
	h.mu.Unlock()
	high := oauth2.SetAuthURLParam("acr_values", assurance.ACRHigh)

	// Without a policy the person is sent back to log in, not let through.
	tax := h.rp(taxID, taxCB)
	resp, _ := h.browser().get(tax.authorizeURL("s", "n", oauth2.GenerateVerifier(), high))
	if loc := resp.Header.Get("Location"); strings.HasPrefix(loc, taxCB) {
		t.Fatalf("a degraded login was accepted by a client without a policy: %s", loc)
	}

	c, err := h.db.GetClient(ctx, taxID)
	if err != nil {
		t.Fatal(err)
	}
	c.DegradedLevel = "substantial"
	if err := h.db.PutClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	l := tax.loginFront(h.browser(), high)
	if l.claims.ACR != assurance.ACRSubstantial {
		t.Errorf("acr = %q, want the level reached", l.claims.ACR)
	}
	var extra struct {
		Degraded bool `json:"degraded"`
	}
	if err := l.idt.Claims(&extra); err != nil || !extra.Degraded {
		t.Errorf("degraded claim missing (%v)", err)
	}

	// The policy has a floor: a degraded login below it is refused too.
	h.mu.Lock()
	h.loginLevel = "low"
	h.mu.Unlock()
	resp, _ = h.browser().get(tax.authorizeURL("s", "n", oauth2.GenerateVerifier(), high))
	if loc := resp.Header.Get("Location"); strings.HasPrefix(loc, taxCB) {
		t.Fatalf("a degraded login below the client's floor was accepted: %s", loc)
	}
}
