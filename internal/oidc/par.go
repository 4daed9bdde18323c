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
	// as at the token endpoint, through the same steps.
	// A DPoP proof is checked with the client's credentials, before
	// either is spent (clientProofRequest).
	c, form, proof, ok := p.clientProofRequest(w, r, ep, func(*store.Client, url.Values) (*oauth2.DPoPProof, error) {
		return p.DPoP.Check(r, p.Issuer+PathPAR, "")
	})
	if !ok {
		return
	}
	redirectURI, err := resolveRedirect(c, form)
	if err != nil {
		p.jsonError(w, r, ep, err)
		return
	}
	req, err := p.validateAuthParams(c, form, redirectURI, true)
	if err != nil {
		p.jsonError(w, r, ep, err)
		return
	}
	if req.DPoPJKT, err = pushedKey(proof, req); err != nil {
		p.jsonError(w, r, ep, err)
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
