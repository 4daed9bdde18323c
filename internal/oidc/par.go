package oidc

import (
	"net/http"
	"net/url"
	"time"

	"github.com/varde-eid/varde/internal/oauth2"
	"github.com/varde-eid/varde/internal/store"
)

// par is the pushed authorization request endpoint (RFC 9126 §2).
func (p *Provider) par(w http.ResponseWriter, r *http.Request) {
	const ep = "par"
	// RFC 9449 §8: a proof without a fresh nonce is sent back for one
	// before the client is authenticated (as at the token endpoint).
	if err := p.DPoP.CheckNonce(r); err != nil {
		p.jsonError(w, r, ep, err)
		return
	}
	// RFC 9126 §2, §2.1: a form-encoded POST whose client authenticates
	// as at the token endpoint, through the same steps. The request's
	// parameters and DPoP proof are checked with the client's
	// credentials, before either jti is spent (clientProofRequest): a
	// request refused for them spends no client assertion.
	var req *store.AuthRequest
	c, _, _, ok := p.clientProofRequest(w, r, ep, func(c *store.Client, form url.Values) (*oauth2.DPoPProof, error) {
		redirectURI, err := resolveRedirect(c, form)
		if err != nil {
			return nil, err
		}
		if req, err = p.validateAuthParams(c, form, redirectURI, true); err != nil {
			return nil, err
		}
		if req.HintSubject, err = p.hintSubject(r.Context(), form); err != nil {
			return nil, err
		}
		proof, err := p.DPoP.Check(r, p.Issuer+PathPAR, "")
		if err != nil {
			return nil, err
		}
		req.DPoPJKT, err = pushedKey(proof, req)
		return proof, err
	})
	if !ok {
		return
	}
	id, err := p.randomToken(16)
	if err != nil {
		p.jsonError(w, r, ep, err)
		return
	}
	now := p.Now()
	req.ID, req.CreatedAt, req.ExpiresAt = id, now, now.Add(p.PARLifetime)
	if err := p.AuthRequests.CreateAuthRequest(r.Context(), req); err != nil {
		p.jsonError(w, r, ep, err)
		return
	}
	if p.Pushed != nil {
		p.Pushed(r, req, c)
	}
	// RFC 9126 §2.2.
	oauth2.WriteJSON(w, http.StatusCreated, struct {
		RequestURI string `json:"request_uri"`
		ExpiresIn  int64  `json:"expires_in"`
	}{RequestURIPrefix + id, int64(p.PARLifetime / time.Second)})
}
