package oidc

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/varde-eid/varde/internal/oauth2"
	"github.com/varde-eid/varde/internal/store"
)

// Token type hints (RFC 7009 §2.1; the two values its registry, §4.1.2,
// starts with, and the only kinds of token Varde issues and revokes).
const (
	hintAccessToken  = "access_token"
	hintRefreshToken = "refresh_token"
)

// What a revocation request did, for the varde_token_revocations_total
// metric. The first three are answered with the same 200; another
// client's token is refused.
const (
	revocationRevoked        = "revoked"
	revocationAlreadyRevoked = "already_revoked"
	revocationUnknown        = "unknown"
	revocationOtherClient    = "other_client"
)

// revocation is the token revocation endpoint (RFC 7009 §2). The client
// authenticates exactly as at the token endpoint (clientRequest), a
// public client by its client_id alone, as §2.1 allows. A token issued
// to that client is revoked with its grant (revokeToken); an unknown,
// expired or already revoked one gets the same empty 200 (§2.2); another
// client's is refused (§2.1).
func (p *Provider) revocation(w http.ResponseWriter, r *http.Request) {
	const ep = "revocation"
	c, form, ok := p.clientRequest(w, r, ep)
	if !ok {
		return
	}
	// §2.1: token is REQUIRED.
	tok := form.Get("token")
	if tok == "" {
		p.jsonError(w, r, ep, oauth2.InvalidRequest("token is required"))
		return
	}
	// §2.1: token_type_hint is OPTIONAL and only a hint: the token is
	// looked up below by its hash whatever it says, among access and
	// refresh tokens alike. §2.2.1: a hint naming a type Varde does not
	// issue, and so cannot revoke, is unsupported_token_type.
	switch form.Get("token_type_hint") {
	case "", hintAccessToken, hintRefreshToken:
	default:
		p.jsonError(w, r, ep, oauth2.UnsupportedTokenType("token_type_hint must be %s or %s", hintAccessToken, hintRefreshToken))
		return
	}
	result, err := p.revokeToken(r.Context(), c, tok)
	if result == revocationOtherClient {
		p.Metrics.revocations.WithLabelValues(result).Inc()
	}
	if err != nil {
		// Never a 200 for a revocation that did not happen: a
		// server_error tells the relying party the token may still be
		// valid, and to try again.
		p.jsonError(w, r, ep, err)
		return
	}
	p.Metrics.revocations.WithLabelValues(result).Inc()
	// §2.2: 200, whose body the client ignores: empty here. Like every
	// answer of the token endpoint, not to be cached.
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	w.WriteHeader(http.StatusOK)
}

// revokeToken revokes the grant of token value tok if the token was
// issued to client c, and says what it did.
//
// What is revoked is the whole grant, so every access and refresh token
// issued from the same code stops working: userinfo and the refresh
// grant refuse the tokens of a revoked grant. For a refresh token, RFC
// 7009 §2.1 says the server SHOULD invalidate the access tokens of the
// same grant; for an access token it MAY revoke the refresh token too,
// and Varde does: a grant's tokens are one family, revoked together as
// when a code is replayed or a refresh token reused, and a relying party
// that revokes either has ended that login. The documentation tells
// relying parties so. A token past its expiry, or a refresh token
// already rotated, still names its grant and revokes it all the same.
//
// A DPoP-bound token (RFC 9449, ADR 14) is revoked without a DPoP proof:
// RFC 9449 defines none for revocation, and client authentication is
// what shows the token is the client's (RFC 7009 §2.1). That holds for a
// public client's bound refresh token too, which whoever has it and the
// public client_id can revoke: revocation only destroys, so the worst
// such a holder can do is end the person's login at that service; using
// the token still takes the key.
func (p *Provider) revokeToken(ctx context.Context, c *store.Client, tok string) (string, error) {
	t, err := p.Tokens.GetToken(ctx, hash(tok))
	if errors.Is(err, store.ErrNotFound) {
		// §2.2: an invalid token is no error.
		return revocationUnknown, nil
	}
	if err != nil {
		return "", fmt.Errorf("get token: %w", err)
	}
	// §2.1: the token must have been issued to the client making the
	// request; if not, "the request is refused and the client is informed
	// of the error". Another client's token is left alone, and the
	// refusal is unauthorized_client, as ory/fosite answers it. The
	// client already holds the token, so this tells it little; that a
	// client holds another's token is worth an audit event.
	if t.ClientID != c.ID {
		p.audit(ctx, &store.AuditEvent{Type: "token", ClientID: c.ID, PersonID: p.personOf(ctx, t.GrantID),
			Result: store.ResultFailure, Reason: "wrong_client", Details: map[string]string{"endpoint": "revocation", "grant": t.GrantID}})
		return revocationOtherClient, oauth2.UnauthorizedClient("the token was not issued to this client")
	}
	g, err := p.Grants.GetGrant(ctx, t.GrantID)
	if errors.Is(err, store.ErrNotFound) {
		return revocationUnknown, nil
	}
	if err != nil {
		return "", fmt.Errorf("get grant: %w", err)
	}
	if !g.RevokedAt.IsZero() {
		return revocationAlreadyRevoked, nil
	}
	switch err := p.Grants.RevokeGrant(ctx, g.ID, p.Now()); {
	case errors.Is(err, store.ErrNotFound):
		return revocationUnknown, nil
	case err != nil:
		return "", fmt.Errorf("revoke grant: %w", err)
	}
	p.audit(ctx, &store.AuditEvent{Type: "token", ClientID: c.ID, PersonID: g.PersonID, Provider: g.Provider,
		Level: g.Level, Result: store.ResultSuccess,
		Details: map[string]string{"revoked": t.Kind + "_token", "grant": g.ID}})
	return revocationRevoked, nil
}
