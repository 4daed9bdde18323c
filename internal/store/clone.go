package store

import (
	"bytes"
	"slices"
)

// Clone returns a copy of c that shares no slice with it, for stores and
// caches that hand records out and must not see callers' changes.
func (c *Client) Clone() *Client {
	out := *c
	out.SecretHash = bytes.Clone(c.SecretHash)
	out.JWKS = bytes.Clone(c.JWKS)
	out.RedirectURIs = slices.Clone(c.RedirectURIs)
	out.PostLogoutRedirectURIs = slices.Clone(c.PostLogoutRedirectURIs)
	out.AllowedLevels = slices.Clone(c.AllowedLevels)
	out.Claims = slices.Clone(c.Claims)
	out.Providers = slices.Clone(c.Providers)
	out.StatusComponents = slices.Clone(c.StatusComponents)
	out.IntrospectTokensOf = slices.Clone(c.IntrospectTokensOf)
	return &out
}

// Clone returns a copy of p that shares no slice with it.
func (p *Person) Clone() *Person {
	out := *p
	out.WebAuthnID = bytes.Clone(p.WebAuthnID)
	out.Identifiers = slices.Clone(p.Identifiers)
	return &out
}

// Clone returns a copy of r that shares no slice with it.
func (r *AuthRequest) Clone() *AuthRequest {
	out := *r
	out.Scope = slices.Clone(r.Scope)
	out.Prompt = slices.Clone(r.Prompt)
	out.ACRValues = slices.Clone(r.ACRValues)
	out.UILocales = slices.Clone(r.UILocales)
	return &out
}

// Clone returns a copy of s that shares no slice with it.
func (s *Session) Clone() *Session {
	out := *s
	out.AMR = slices.Clone(s.AMR)
	out.Clients = slices.Clone(s.Clients)
	out.WayIn = s.WayIn.Clone()
	return &out
}

// Clone returns a copy of c that shares no slice with it.
func (c *AuthCode) Clone() *AuthCode {
	out := *c
	out.Hash = bytes.Clone(c.Hash)
	out.Scope = slices.Clone(c.Scope)
	out.AMR = slices.Clone(c.AMR)
	return &out
}

// Clone returns a copy of w that shares no slice with it.
func (w WayIn) Clone() WayIn {
	return WayIn{Passkey: bytes.Clone(w.Passkey), RecoveryCode: bytes.Clone(w.RecoveryCode), Identifiers: slices.Clone(w.Identifiers)}
}
