package oidc

import (
	"net/http"

	"github.com/varde-eid/varde/internal/oauth2"
	"github.com/varde-eid/varde/internal/store"
)

// tokenProof checks the DPoP proof of a request to the token endpoint
// (RFC 9449 §5): nil without one, unless client c is registered to use
// DPoP always (dpop_bound_access_tokens, §5.2). Its jti is not recorded
// yet: clientProofRequest does that.
func (p *Provider) tokenProof(r *http.Request, c *store.Client) (*oauth2.DPoPProof, error) {
	proof, err := p.DPoP.Check(r, p.Issuer+PathToken, "")
	if err != nil {
		return nil, err
	}
	if proof == nil && c.DPoPBoundAccessTokens {
		return nil, oauth2.InvalidDPoPProof("this client must send a DPoP proof with every token request")
	}
	return proof, nil
}

// pushedKey returns the key a pushed request's code is bound to (RFC
// 9449 §10.1): that of the DPoP proof sent with the request (checked
// and recorded by clientProofRequest), or the dpop_jkt parameter, which
// must then name the same key.
func pushedKey(proof *oauth2.DPoPProof, req *store.AuthRequest) (string, error) {
	switch {
	case proof == nil:
		return req.DPoPJKT, nil
	case req.DPoPJKT != "" && req.DPoPJKT != proof.JKT:
		return "", oauth2.InvalidDPoPProof("dpop_jkt does not name the key of the DPoP proof")
	}
	return proof.JKT, nil
}

// dpopNonce has every response of h carry the current DPoP nonce in
// the DPoP-Nonce header when nonces are required (RFC 9449 §8, §9): a
// refusal with use_dpop_nonce, which must carry it, and every other
// answer too (§8.2), so that a client that keeps the newest nonce it
// was given is seldom refused for a stale one. Without nonces, h as it
// is.
func (p *Provider) dpopNonce(h func(http.ResponseWriter, *http.Request)) func(http.ResponseWriter, *http.Request) {
	if p.DPoP == nil || p.DPoP.Nonces == nil {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(oauth2.DPoPNonceHeader, p.DPoP.Nonces.Nonce(p.Now()))
		h(w, r)
	}
}
