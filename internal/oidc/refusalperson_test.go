package oidc

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/varde-eid/varde/internal/store"
)

// TestRefusalsNameThePersonOfTheGrant: a refused use of a code or token
// that names a grant (presented by another client, with another DPoP
// key, introspected by a client not allowed to) is audited with the
// grant's person, read from the stored grant, so that the person's own
// activity can show it and an operator can find it by person.
func TestRefusalsNameThePersonOfTheGrant(t *testing.T) {
	h := newHarness(t)
	l := h.rp(taxID, taxCB).loginFront(h.browser())
	k, other := h.dpopHolder(), h.dpopHolder()
	kiosk := h.kioskLoginWith(k)
	personOf := func(clientID string) string {
		t.Helper()
		for _, e := range h.auditEvents("token") {
			if e.ClientID == clientID && e.Result == store.ResultSuccess && e.PersonID != "" {
				return e.PersonID
			}
		}
		t.Fatalf("no token issued to %s", clientID)
		return ""
	}
	taxPerson, kioskPerson := personOf(taxID), personOf(publicID)

	if status, body := h.refreshAs(mobileID, l.token.RefreshToken, ""); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Fatalf("refresh by another client: %d %v", status, body)
	}
	if status, body := h.refreshAs(publicID, kiosk.RefreshToken, other.proof(http.MethodPost, PathToken, "")); status != http.StatusBadRequest || body["error"] != "invalid_dpop_proof" {
		t.Fatalf("refresh with another key: %d %v", status, body)
	}
	if status, _, body := h.revoke(url.Values{"token": {l.token.RefreshToken}}, mobileID); status != http.StatusBadRequest {
		t.Fatalf("revocation by another client: %d %s", status, body)
	}
	if got := h.introspect(t, mobileID, l.token.AccessToken, url.Values{}); got.Active {
		t.Fatal("another client's token introspected as active")
	}

	tests := []struct {
		name, reason string
		match        func(*store.AuditEvent) bool
		want         string
	}{
		{"refresh token by another client", "wrong_client", func(e *store.AuditEvent) bool { return e.Details["grant_type"] == grantRefreshToken }, taxPerson},
		{"refresh token with another key", "dpop_key_mismatch", func(e *store.AuditEvent) bool { return e.ClientID == publicID }, kioskPerson},
		{"revocation by another client", "wrong_client", func(e *store.AuditEvent) bool { return e.Details["endpoint"] == "revocation" }, taxPerson},
		{"introspection not permitted", "introspection_not_permitted", func(e *store.AuditEvent) bool { return e.ClientID == mobileID }, taxPerson},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := 0
			for _, e := range h.eventsWithReason(tt.reason) {
				if !tt.match(e) {
					continue
				}
				n++
				if e.PersonID != tt.want || e.Details["grant"] == "" {
					t.Errorf("event %+v: person %q, want %q, and its grant", e, e.PersonID, tt.want)
				}
			}
			if n != 1 {
				t.Errorf("%d %s events, want 1", n, tt.reason)
			}
		})
	}
}
