package oidc

import (
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/varde-eid/varde/internal/oauth2"
	"github.com/varde-eid/varde/internal/store"
)

const maxBearerLen = 512

// userinfo is the UserInfo endpoint (OIDC Core §5.3). The access token
// comes in the Authorization header: with the Bearer scheme (RFC 6750
// §2.1), or, bound to a key, with the DPoP scheme and a proof made with
// that key (RFC 9449 §7.1); or, as a bearer token, in a form-encoded
// POST body (RFC 6750 §2.2). It must have been granted the openid scope.
func (p *Provider) userinfo(w http.ResponseWriter, r *http.Request) {
	const ep = "userinfo"
	ctx := r.Context()
	scheme, tok, inBody := presented(r)
	dpop := strings.EqualFold(scheme, "DPoP")
	if scheme == "" && r.URL.Query().Has("access_token") {
		// A token in the query is no credential (presented), but the
		// client meant one: say where it goes rather than challenge
		// a request it believes it authenticated (RFC 6750 §3.1: an
		// unsupported parameter is invalid_request).
		e := oauth2.InvalidRequest("send the access token in the Authorization header (or, without one, as the access_token parameter of a form-encoded POST body), never in the query")
		w.Header().Set("WWW-Authenticate", oauth2.BearerChallenge(e))
		p.jsonError(w, r, ep, e)
		return
	}
	if !dpop && !strings.EqualFold(scheme, "Bearer") {
		// RFC 6750 §3.1: a request without credentials, or with a scheme
		// this endpoint does not take (Basic, say), gets a bare challenge,
		// no error code; RFC 9449 §7.1: one per scheme.
		p.Metrics.errors.WithLabelValues(ep, "no_token").Inc()
		w.Header().Set("WWW-Authenticate", `Bearer realm="varde"`)
		w.Header().Add("WWW-Authenticate", oauth2.DPoPChallenge(nil))
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var e *oauth2.Error
	if err := parseForm(r); err != nil {
		errors.As(err, &e)
	} else if !inBody && r.Form.Has("access_token") {
		// RFC 6750 §2, §3.1: a request that carries the token by more
		// than one method is invalid_request.
		e = oauth2.InvalidRequest("send the access token only in the Authorization header, not also as an access_token parameter")
	} else if inBody && len(r.PostForm["access_token"]) > 1 {
		e = oauth2.InvalidRequest("parameter access_token is repeated")
	} else if tok == "" || len(tok) > maxBearerLen {
		e = oauth2.InvalidRequest("Authorization must hold an access token after the %s scheme", scheme)
	}
	if e != nil {
		// RFC 6750 §3: a malformed request is invalid_request, with the
		// error in the challenge of the scheme it used.
		if dpop {
			w.Header().Set("WWW-Authenticate", oauth2.DPoPChallenge(e))
		} else {
			w.Header().Set("WWW-Authenticate", oauth2.BearerChallenge(e))
		}
		p.jsonError(w, r, ep, e)
		return
	}
	fail := func(err error) { p.resourceError(w, r, ep, dpop, err) }
	t, err := p.Tokens.GetToken(ctx, hash(tok))
	if errors.Is(err, store.ErrNotFound) {
		fail(oauth2.InvalidToken("access token is unknown"))
		return
	}
	if err != nil {
		fail(err)
		return
	}
	if t.Kind != store.TokenAccess || !p.Now().Before(t.ExpiresAt) {
		fail(oauth2.InvalidToken("access token is expired or not an access token"))
		return
	}
	if err := p.possession(r, t, tok, dpop); err != nil {
		fail(err)
		return
	}
	g, err := p.Grants.GetGrant(ctx, t.GrantID)
	if errors.Is(err, store.ErrNotFound) || err == nil && !g.RevokedAt.IsZero() {
		fail(oauth2.InvalidToken("access token was revoked"))
		return
	}
	if err != nil {
		fail(err)
		return
	}
	// OIDC Core §5.3, §3.1.2.1: the UserInfo endpoint answers for an
	// access token of an OpenID Connect request, granted openid. One
	// refreshed down to a narrower scope without it (RFC 6749 §6) was
	// not: RFC 6750 §3.1 insufficient_scope, naming the scope needed.
	if !slices.Contains(t.Scope, "openid") {
		fail(oauth2.InsufficientScope("openid", "the access token was not granted the openid scope"))
		return
	}
	c, err := p.Clients.GetClient(ctx, t.ClientID)
	if errors.Is(err, store.ErrNotFound) {
		fail(oauth2.InvalidToken("client is gone"))
		return
	}
	if err != nil {
		fail(err)
		return
	}
	person, err := p.Persons.GetPerson(ctx, g.PersonID)
	if errors.Is(err, store.ErrNotFound) {
		fail(oauth2.InvalidToken("the person no longer exists"))
		return
	}
	if err != nil {
		fail(err)
		return
	}
	if person.Blocked() {
		fail(oauth2.InvalidToken("the person's Varde ID is blocked"))
		return
	}
	switch ok, err := p.useAccessToken(ctx, t, p.Now()); {
	case err != nil:
		fail(err)
		return
	case !ok:
		fail(oauth2.InvalidToken("access token was revoked"))
		return
	}
	// OIDC Core §5.3.2: sub is always returned and equals the ID token's.
	claims := map[string]any{"sub": p.subject(c, g.PersonID)}
	personClaims(claims, c, person)
	oauth2.WriteJSON(w, http.StatusOK, claims)
}

// presented returns the scheme and access token of a UserInfo request,
// and whether they came from its body. RFC 6750 §2.1 (RFC 9449 §7.1
// alike): the Authorization header holds the scheme, 1*SP, the token.
// RFC 6750 §2.2: without that header, a form-encoded POST may carry a
// bearer token as its access_token parameter; the query may not (§2.3,
// RFC 9700 §4.3.2), so a token there, as one in a body of another type,
// is no credential.
func presented(r *http.Request) (scheme, tok string, inBody bool) {
	if authz := r.Header.Get("Authorization"); authz != "" || r.Method != http.MethodPost || !formEncoded(r) {
		scheme, tok, _ = strings.Cut(authz, " ")
		return scheme, strings.TrimLeft(tok, " "), false
	}
	if err := parseForm(r); err != nil || !r.PostForm.Has("access_token") || r.URL.Query().Has("access_token") {
		return "", "", false
	}
	return "Bearer", r.PostForm.Get("access_token"), true
}

// errBoundAsBearer refuses a bound access token sent as a bearer token
// (RFC 9449 §7.2).
var errBoundAsBearer = oauth2.InvalidToken("access token is bound to a key: send it with the DPoP scheme and a DPoP proof")

// possession checks that the presenter of access token t (value tok)
// holds the key it is bound to (RFC 9449 §7.1): a bound token comes
// with the DPoP scheme and a proof for this request, made with that key
// and naming the token (ath); a bearer token comes with the Bearer
// scheme. The proof's jti is recorded only once all of that holds, so a
// refused proof costs no store write.
func (p *Provider) possession(r *http.Request, t *store.Token, tok string, dpop bool) error {
	if !dpop {
		if t.JKT != "" {
			return errBoundAsBearer
		}
		return nil
	}
	proof, err := p.DPoP.Check(r, p.Issuer+PathUserinfo, tok)
	switch {
	case err != nil:
		return err
	case proof == nil:
		return oauth2.InvalidDPoPProof("a DPoP proof is required with the DPoP scheme")
	case t.JKT == "":
		return oauth2.InvalidToken("access token is not bound to a key: send it with the Bearer scheme")
	case proof.JKT != t.JKT:
		return oauth2.InvalidToken("DPoP proof was made with another key than the one the access token is bound to")
	}
	return p.DPoP.Record(r.Context(), proof)
}

// resourceError writes a refusal of the UserInfo endpoint, a protected
// resource: with a DPoP challenge to a request that used the DPoP
// scheme (RFC 9449 §7.1), else a Bearer one (RFC 6750 §3).
func (p *Provider) resourceError(w http.ResponseWriter, r *http.Request, ep string, dpop bool, err error) {
	if !dpop {
		if errors.Is(err, errBoundAsBearer) {
			// RFC 9449 §7.2: refused as a bearer token; the DPoP challenge
			// tells the client the scheme it must use.
			w.Header().Set("WWW-Authenticate", oauth2.DPoPChallenge(nil))
		}
		p.jsonError(w, r, ep, err)
		return
	}
	oauth2.WriteDPoPError(w, p.refusal(w, r, ep, err))
}
