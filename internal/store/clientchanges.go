package store

import (
	"bytes"
	"slices"
)

// Changes names the settings in which c and o differ, by their keys in
// the configuration file, in a fixed order; none if o is what c is
// stored as. The ID and the time the client was first stored are not
// settings. A setting that is nil in one and empty in the other is the
// same, as a store may read either back; the JWKS is compared as its
// stored bytes, which the configuration file's compact form gives.
func (c *Client) Changes(o *Client) []string {
	var out []string
	add := func(name string, same bool) {
		if !same {
			out = append(out, name)
		}
	}
	add("name", c.Name == o.Name)
	add("auth_method", c.AuthMethod == o.AuthMethod)
	add("secret", bytes.Equal(c.SecretHash, o.SecretHash))
	add("jwks", bytes.Equal(c.JWKS, o.JWKS))
	add("jwks_uri", c.JWKSURI == o.JWKSURI)
	add("redirect_uris", slices.Equal(c.RedirectURIs, o.RedirectURIs))
	add("post_logout_redirect_uris", slices.Equal(c.PostLogoutRedirectURIs, o.PostLogoutRedirectURIs))
	add("require_par", c.RequirePAR == o.RequirePAR)
	add("allowed_levels", slices.Equal(c.AllowedLevels, o.AllowedLevels))
	add("sector_id", c.SectorID == o.SectorID)
	add("claims", slices.Equal(c.Claims, o.Claims))
	add("providers", slices.Equal(c.Providers, o.Providers))
	add("degraded_level", c.DegradedLevel == o.DegradedLevel)
	add("status_webhook", c.StatusWebhook == o.StatusWebhook)
	add("status_components", slices.Equal(c.StatusComponents, o.StatusComponents))
	add("legacy_endpoint_audience", c.LegacyEndpointAudience == o.LegacyEndpointAudience)
	add("dpop_bound_access_tokens", c.DPoPBoundAccessTokens == o.DPoPBoundAccessTokens)
	add("refresh_tokens", c.RefreshTokens == o.RefreshTokens)
	add("backchannel_logout_uri", c.BackchannelLogoutURI == o.BackchannelLogoutURI)
	add("introspect_tokens_of", slices.Equal(c.IntrospectTokensOf, o.IntrospectTokensOf))
	add("id_token_signed_response_alg", c.IDTokenAlg == o.IDTokenAlg)
	add("source", c.Source == o.Source)
	return out
}
