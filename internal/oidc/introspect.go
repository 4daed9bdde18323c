package oidc

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/varde-eid/varde/internal/assurance"
	"github.com/varde-eid/varde/internal/oauth2"
	"github.com/varde-eid/varde/internal/store"
)

// What an introspection request found, for the
// varde_token_introspections_total metric. Every result but the first
// is answered {"active": false}: RFC 7662 §2.2 gives the caller no way
// to tell them apart, and Varde does not.
const (
	introspectionActive  = "active"
	introspectionUnknown = "unknown"
	introspectionExpired = "expired"
	introspectionUsed    = "used"
	// introspectionReplaced: a token of an answer the client did not
	// receive, which its retry replaced (ADR 55).
	introspectionReplaced = "replaced"
	// introspectionRevoked: its grant is revoked or gone, or its person
	// blocked or gone (ADR 42).
	introspectionRevoked      = "revoked"
	introspectionNotPermitted = "not_permitted"
	// introspectionEnded: a refresh token that can no longer be used
	// though it is neither expired nor revoked: its session ended
	// without offline_access, or its client is no longer registered for
	// refresh tokens (ADR 22).
	introspectionEnded = "ended"
)

// introspectionResponse is the answer of the introspection endpoint
// (RFC 7662 §2.2). Only Active is set for a token that is not active.
type introspectionResponse struct {
	Active bool `json:"active"`
	// RFC 7662 §2.2.
	Scope     string `json:"scope,omitempty"`
	ClientID  string `json:"client_id,omitempty"`
	TokenType string `json:"token_type,omitempty"`
	Exp       int64  `json:"exp,omitempty"`
	IAT       int64  `json:"iat,omitempty"`
	Sub       string `json:"sub,omitempty"`
	Iss       string `json:"iss,omitempty"`
	// How and when the person logged in, as in the ID token (OIDC Core
	// §2; registered JWT claims, which RFC 7662 §2.2 allows): what a
	// resource server needs to decide whether the login is strong and
	// fresh enough for what it is asked to do.
	AuthTime int64    `json:"auth_time,omitempty"`
	ACR      string   `json:"acr,omitempty"`
	AMR      []string `json:"amr,omitempty"`
	Provider string   `json:"provider,omitempty"`
	Degraded bool     `json:"degraded,omitempty"`
	// Cnf names the key a DPoP-bound token is bound to (RFC 9449 §6.2):
	// the resource server checks the proof that comes with the token
	// against it.
	Cnf *confirmation `json:"cnf,omitempty"`
}

// confirmation is the cnf member (RFC 7800 §3.1) with the JWK SHA-256
// thumbprint of a DPoP key (RFC 9449 §6.1).
type confirmation struct {
	JKT string `json:"jkt"`
}

// introspection is the token introspection endpoint (RFC 7662 §2). A
// resource server sends an access token it was given and learns whether
// it is active, whose it is (the subject identifier the token's client
// knows the person by) and how the person logged in.
//
// The caller authenticates as at the token endpoint (clientRequest);
// public clients are refused, as §2.1 requires the endpoint to be
// protected and a client_id alone proves nothing. A client learns about
// the tokens issued to itself, access and refresh tokens alike, and
// about the access tokens of the clients it is the resource server of
// (Client.IntrospectTokensOf) if they share its pairwise sector. Every
// other token is inactive (§2.2: "the protected resource is not allowed
// to introspect this particular token").
func (p *Provider) introspection(w http.ResponseWriter, r *http.Request) {
	const ep = "introspection"
	c, form, ok := p.clientRequest(w, r, ep)
	if !ok {
		return
	}
	if c.AuthMethod == store.AuthNone {
		p.jsonError(w, r, ep, oauth2.InvalidClient("token introspection needs client authentication; a public client cannot use it"))
		return
	}
	// §2.1: token is REQUIRED; token_type_hint is OPTIONAL, and the
	// server MAY ignore it: the token is looked up by its hash among
	// access and refresh tokens alike, whatever the hint says.
	tok := form.Get("token")
	if tok == "" {
		p.jsonError(w, r, ep, oauth2.InvalidRequest("token is required"))
		return
	}
	resp, result, err := p.introspect(r.Context(), c, tok)
	if err != nil {
		// Never an answer about a token that could not be looked up: a
		// server_error makes the resource server refuse the request, as
		// {"active": false} would, but tells it why.
		p.jsonError(w, r, ep, err)
		return
	}
	p.Metrics.introspections.WithLabelValues(result).Inc()
	// §2.2: application/json; like the token endpoint's answers, not to
	// be cached (§4: a cached answer would outlive a revocation).
	oauth2.WriteJSON(w, http.StatusOK, resp)
}

// introspect looks up token value tok for client c and says what c may
// know about it.
func (p *Provider) introspect(ctx context.Context, c *store.Client, tok string) (*introspectionResponse, string, error) {
	inactive := &introspectionResponse{}
	t, err := p.Tokens.GetToken(ctx, hash(tok))
	if errors.Is(err, store.ErrNotFound) {
		return inactive, introspectionUnknown, nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("get token: %w", err)
	}
	owner := c
	if t.ClientID != c.ID {
		owner, err = p.resourceServerOf(ctx, c, t)
		if errors.Is(err, errNotPermitted) {
			p.audit(ctx, &store.AuditEvent{Type: "token", ClientID: c.ID, PersonID: p.personOf(ctx, t.GrantID),
				Result: store.ResultFailure, Reason: "introspection_not_permitted", Details: map[string]string{"token_client": t.ClientID, "grant": t.GrantID}})
			return inactive, introspectionNotPermitted, nil
		}
		if errors.Is(err, store.ErrNotFound) {
			// The client is gone, and with it its grants.
			return inactive, introspectionRevoked, nil
		}
		if err != nil {
			return nil, "", err
		}
	}
	now := p.Now()
	switch {
	case !now.Before(t.ExpiresAt):
		return inactive, introspectionExpired, nil
	case !t.RevokedAt.IsZero():
		return inactive, introspectionReplaced, nil
	case t.Kind == store.TokenRefresh && !t.UsedAt.IsZero():
		// Rotated (RFC 9700 §4.14.2): presenting it again would revoke
		// the grant; it is not a token anyone may use.
		return inactive, introspectionUsed, nil
	}
	g, err := p.Grants.GetGrant(ctx, t.GrantID)
	if errors.Is(err, store.ErrNotFound) || err == nil && !g.RevokedAt.IsZero() {
		return inactive, introspectionRevoked, nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("get grant: %w", err)
	}
	// A block revokes the person's grants (ADR 27), but not one stored
	// while it landed, after the token endpoint read the person: that
	// grant's tokens are refused here, as userinfo and the token
	// endpoint refuse them. A person no longer stored has no grants.
	person, err := p.Persons.GetPerson(ctx, g.PersonID)
	if errors.Is(err, store.ErrNotFound) || err == nil && person.Blocked() {
		return inactive, introspectionRevoked, nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("get person: %w", err)
	}
	// Only a client's own refresh tokens are introspected (see
	// resourceServerOf): owner is the token's client.
	if t.Kind == store.TokenRefresh {
		var f *grantFailure
		switch err := p.refreshAllowed(ctx, owner, g, now); {
		case errors.As(err, &f):
			return inactive, introspectionEnded, nil
		case err != nil:
			return nil, "", err
		}
	}
	// A client or its resource server asking about an access token shows
	// that the answer that carried it reached the client: a use (ADR 55).
	if t.Kind == store.TokenAccess {
		switch ok, err := p.useAccessToken(ctx, t, now); {
		case err != nil:
			return nil, "", err
		case !ok:
			return inactive, introspectionReplaced, nil
		}
	}
	resp := &introspectionResponse{
		Active:   true,
		Scope:    strings.Join(t.Scope, " "),
		ClientID: t.ClientID,
		Exp:      t.ExpiresAt.Unix(),
		IAT:      t.CreatedAt.Unix(),
		// The token's client's subject identifier, which c's is too: a
		// resource server shares its clients' sector.
		Sub:      p.subject(owner, g.PersonID),
		Iss:      p.Issuer,
		AuthTime: g.AuthTime.Unix(),
		AMR:      slices.Clone(g.AMR),
		Provider: g.Provider,
		Degraded: g.Degraded,
	}
	if level, err := assurance.Parse(g.Level); err == nil {
		resp.ACR = level.ACR()
	}
	// token_type is the access token's type (RFC 6749 §5.1, RFC 9449
	// §5); a refresh token has none, so a resource server that checks
	// token_type never takes one for an access token.
	if t.Kind == store.TokenAccess {
		resp.TokenType = "Bearer"
		if t.JKT != "" {
			resp.TokenType = "DPoP"
		}
	}
	if t.JKT != "" {
		resp.Cnf = &confirmation{JKT: t.JKT}
	}
	return resp, introspectionActive, nil
}

// errNotPermitted: the caller may not introspect the token.
var errNotPermitted = errors.New("not permitted to introspect the token")

// resourceServerOf returns the client token t was issued to if c may
// introspect it as that client's resource server: an access token, of
// a client c names in IntrospectTokensOf, in c's pairwise sector. A
// refresh token is for the client alone, never for a resource server.
func (p *Provider) resourceServerOf(ctx context.Context, c *store.Client, t *store.Token) (*store.Client, error) {
	if t.Kind != store.TokenAccess || !slices.Contains(c.IntrospectTokensOf, t.ClientID) {
		return nil, errNotPermitted
	}
	owner, err := p.Clients.GetClient(ctx, t.ClientID)
	if err != nil {
		return nil, fmt.Errorf("get client: %w", err)
	}
	// Checked when clients are registered, and again here, since the two
	// may have been registered apart or one changed since: a resource
	// server never learns the subject identifiers of another sector.
	if owner.Sector() != c.Sector() {
		p.Log.WarnContext(ctx, "introspection refused: the resource server's pairwise sector differs from its client's",
			"client", c.ID, "token_client", owner.ID)
		return nil, errNotPermitted
	}
	return owner, nil
}
