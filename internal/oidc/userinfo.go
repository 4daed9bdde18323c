package oidc

import (
	"errors"
	"net/http"
	"strings"

	"github.com/varde-eid/varde/internal/oauth2"
	"github.com/varde-eid/varde/internal/store"
)

const maxBearerLen = 512

// userinfo is the UserInfo endpoint (OIDC Core §5.3). The access token
// comes in the Authorization header (RFC 6750 §2.1).
func (p *Provider) userinfo(w http.ResponseWriter, r *http.Request) {
	const ep = "userinfo"
	ctx := r.Context()
	authz := r.Header.Get("Authorization")
	if authz == "" {
		// RFC 6750 §3.1: a request without credentials gets a bare
		// challenge, no error code.
		p.Metrics.errors.WithLabelValues(ep, "no_token").Inc()
		w.Header().Set("WWW-Authenticate", `Bearer realm="varde"`)
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	scheme, tok, ok := strings.Cut(authz, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" || len(tok) > maxBearerLen {
		p.jsonError(w, r, ep, oauth2.InvalidRequest("Authorization must be a Bearer token"))
		return
	}
	t, err := p.Tokens.GetToken(ctx, hash(tok))
	if errors.Is(err, store.ErrNotFound) {
		p.jsonError(w, r, ep, oauth2.InvalidToken("access token is unknown"))
		return
	}
	if err != nil {
		p.jsonError(w, r, ep, err)
		return
	}
	if t.Kind != store.TokenAccess || !p.Now().Before(t.ExpiresAt) {
		p.jsonError(w, r, ep, oauth2.InvalidToken("access token is expired or not an access token"))
		return
	}
	g, err := p.Grants.GetGrant(ctx, t.GrantID)
	if errors.Is(err, store.ErrNotFound) || err == nil && !g.RevokedAt.IsZero() {
		p.jsonError(w, r, ep, oauth2.InvalidToken("access token was revoked"))
		return
	}
	if err != nil {
		p.jsonError(w, r, ep, err)
		return
	}
	c, err := p.Clients.GetClient(ctx, t.ClientID)
	if errors.Is(err, store.ErrNotFound) {
		p.jsonError(w, r, ep, oauth2.InvalidToken("client is gone"))
		return
	}
	if err != nil {
		p.jsonError(w, r, ep, err)
		return
	}
	person, err := p.Persons.GetPerson(ctx, g.PersonID)
	if errors.Is(err, store.ErrNotFound) {
		p.jsonError(w, r, ep, oauth2.InvalidToken("the person no longer exists"))
		return
	}
	if err != nil {
		p.jsonError(w, r, ep, err)
		return
	}
	// OIDC Core §5.3.2: sub is always returned and equals the ID token's.
	claims := map[string]any{"sub": p.subject(c, g.PersonID)}
	personClaims(claims, c, person)
	oauth2.WriteJSON(w, http.StatusOK, claims)
}
