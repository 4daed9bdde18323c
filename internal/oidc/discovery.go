package oidc

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/varde-eid/varde/internal/assurance"
	"github.com/varde-eid/varde/internal/keys"
	"github.com/varde-eid/varde/internal/oauth2"
	"github.com/varde-eid/varde/internal/store"
)

// Scopes, prompts and claims the provider supports. Never modified.
var (
	// offline_access (OIDC Core §11) is granted only to a client
	// registered for refresh tokens (store.Client.RefreshTokens).
	scopesSupported  = []string{"openid", scopeOfflineAccess}
	promptsSupported = []string{"none", "login", "select_account"}
	// userClaims are the person claims a client may be registered for.
	userClaims      = []string{"name", "given_name", "family_name", "birthdate", "national_id"}
	claimsSupported = append([]string{"sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "azp", "sid", "provider", "degraded"}, userClaims...)
)

// Discovery is the OpenID Provider metadata (OpenID Connect Discovery 1.0
// §3, RFC 8414 §2, RFC 9126 §5, RFC 9207 §3).
type Discovery struct {
	Issuer                             string `json:"issuer"`
	AuthorizationEndpoint              string `json:"authorization_endpoint"`
	TokenEndpoint                      string `json:"token_endpoint"`
	UserinfoEndpoint                   string `json:"userinfo_endpoint"`
	JWKSURI                            string `json:"jwks_uri"`
	PushedAuthorizationRequestEndpoint string `json:"pushed_authorization_request_endpoint"`
	RequirePushedAuthorizationRequests bool   `json:"require_pushed_authorization_requests"`
	EndSessionEndpoint                 string `json:"end_session_endpoint"`
	// Back-Channel Logout 1.0 §2.1: logout tokens are sent, always with
	// sid. Absent when the provider has no outbox for them.
	BackchannelLogoutSupported                 bool     `json:"backchannel_logout_supported,omitempty"`
	BackchannelLogoutSessionSupported          bool     `json:"backchannel_logout_session_supported,omitempty"`
	RevocationEndpoint                         string   `json:"revocation_endpoint"`
	ScopesSupported                            []string `json:"scopes_supported"`
	ResponseTypesSupported                     []string `json:"response_types_supported"`
	ResponseModesSupported                     []string `json:"response_modes_supported"`
	GrantTypesSupported                        []string `json:"grant_types_supported"`
	SubjectTypesSupported                      []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported           []string `json:"id_token_signing_alg_values_supported"`
	TokenEndpointAuthMethodsSupported          []string `json:"token_endpoint_auth_methods_supported"`
	TokenEndpointAuthSigningAlgValuesSupported []string `json:"token_endpoint_auth_signing_alg_values_supported"`
	CodeChallengeMethodsSupported              []string `json:"code_challenge_methods_supported"`
	ACRValuesSupported                         []string `json:"acr_values_supported"`
	ClaimsSupported                            []string `json:"claims_supported"`
	ClaimTypesSupported                        []string `json:"claim_types_supported"`
	PromptValuesSupported                      []string `json:"prompt_values_supported"`
	UILocalesSupported                         []string `json:"ui_locales_supported"`
	ClaimsParameterSupported                   bool     `json:"claims_parameter_supported"`
	RequestParameterSupported                  bool     `json:"request_parameter_supported"`
	// RequestURIParameterSupported is about request objects by reference
	// (OIDC Core §6.2). Discovery §3 makes an absent value mean true, so
	// it is always published. The request_uri values PAR returns (RFC
	// 9126) are accepted all the same: they are not request objects.
	RequestURIParameterSupported               bool `json:"request_uri_parameter_supported"`
	AuthorizationResponseIssParameterSupported bool `json:"authorization_response_iss_parameter_supported"`
	// DPoPSigningAlgValuesSupported: the algorithms DPoP proofs may use
	// (RFC 9449 §5.1). Any client may send proofs; one registered with
	// dpop_bound_access_tokens must.
	DPoPSigningAlgValuesSupported []string `json:"dpop_signing_alg_values_supported"`
	// The revocation endpoint (RFC 7009) authenticates clients exactly
	// as the token endpoint does (RFC 8414 §2).
	RevocationEndpointAuthMethodsSupported          []string `json:"revocation_endpoint_auth_methods_supported"`
	RevocationEndpointAuthSigningAlgValuesSupported []string `json:"revocation_endpoint_auth_signing_alg_values_supported"`
	// The introspection endpoint (RFC 7662) authenticates as the token
	// endpoint does, but refuses public clients (RFC 8414 §2).
	IntrospectionEndpoint                              string   `json:"introspection_endpoint"`
	IntrospectionEndpointAuthMethodsSupported          []string `json:"introspection_endpoint_auth_methods_supported"`
	IntrospectionEndpointAuthSigningAlgValuesSupported []string `json:"introspection_endpoint_auth_signing_alg_values_supported"`
	// StatusEndpoint is Varde's own metadata (OpenID Connect Discovery
	// 1.0 §3 allows additional parameters): the public status API, so a
	// relying party finds the live state of every component from the
	// same document it already reads.
	StatusEndpoint string `json:"status_endpoint,omitempty"`
	// StatusPage is the people-facing status page.
	StatusPage string `json:"status_page,omitempty"`
}

// idTokenAlgs are the algorithms this node signs ID tokens with: ES256,
// and RS256 if it has an RSA key. OpenID Connect Discovery 1.0 §3 wants
// RS256 listed, and a node that lists it must sign it; a node without an
// RSA key lists what it can sign (ADR 32).
func (p *Provider) idTokenAlgs() []string {
	algs := []string{string(keys.Algorithm)}
	if p.RSASigner != nil {
		algs = append(algs, string(keys.RS256))
	}
	return algs
}

// Metadata returns the discovery document.
func (p *Provider) Metadata() Discovery {
	locales := []string{"nb", "en", "da"}
	if p.Pages != nil {
		locales = locales[:0]
		for _, l := range p.Pages.Languages() {
			locales = append(locales, l.Tag)
		}
	}
	// Client authentication at the token and revocation endpoints.
	authMethods := []string{store.AuthPrivateKeyJWT, store.AuthClientSecretBasic, store.AuthNone}
	var assertionAlgs, dpopAlgs []string
	for _, a := range oauth2.AssertionAlgs() {
		assertionAlgs = append(assertionAlgs, string(a))
	}
	for _, a := range oauth2.DPoPAlgs() {
		dpopAlgs = append(dpopAlgs, string(a))
	}
	return Discovery{
		Issuer:                             p.Issuer,
		AuthorizationEndpoint:              p.Issuer + PathAuthorize,
		TokenEndpoint:                      p.Issuer + PathToken,
		UserinfoEndpoint:                   p.Issuer + PathUserinfo,
		JWKSURI:                            p.Issuer + PathJWKS,
		PushedAuthorizationRequestEndpoint: p.Issuer + PathPAR,
		// Required per client instead (RFC 9126 §6, Client.RequirePAR).
		RequirePushedAuthorizationRequests:         false,
		EndSessionEndpoint:                         p.Issuer + PathLogout,
		RevocationEndpoint:                         p.Issuer + PathRevocation,
		BackchannelLogoutSupported:                 p.LogoutOutbox != nil,
		BackchannelLogoutSessionSupported:          p.LogoutOutbox != nil,
		ScopesSupported:                            scopesSupported,
		ResponseTypesSupported:                     []string{"code"},
		ResponseModesSupported:                     []string{"query"},
		GrantTypesSupported:                        []string{grantAuthorizationCode, grantRefreshToken},
		SubjectTypesSupported:                      []string{"pairwise"},
		IDTokenSigningAlgValuesSupported:           p.idTokenAlgs(),
		TokenEndpointAuthMethodsSupported:          authMethods,
		TokenEndpointAuthSigningAlgValuesSupported: assertionAlgs,
		CodeChallengeMethodsSupported:              []string{oauth2.MethodS256},
		ACRValuesSupported:                         assurance.ACRsSupported(),
		ClaimsSupported:                            slices.Clone(claimsSupported),
		ClaimTypesSupported:                        []string{"normal"},
		PromptValuesSupported:                      slices.Clone(promptsSupported),
		UILocalesSupported:                         locales,
		ClaimsParameterSupported:                   false,
		RequestParameterSupported:                  false,
		RequestURIParameterSupported:               false,
		AuthorizationResponseIssParameterSupported: true,
		DPoPSigningAlgValuesSupported:              dpopAlgs,
		// Client authentication at /revoke is the token endpoint's.
		RevocationEndpointAuthMethodsSupported:             slices.Clone(authMethods),
		RevocationEndpointAuthSigningAlgValuesSupported:    slices.Clone(assertionAlgs),
		IntrospectionEndpoint:                              p.Issuer + PathIntrospection,
		IntrospectionEndpointAuthMethodsSupported:          []string{store.AuthPrivateKeyJWT, store.AuthClientSecretBasic},
		IntrospectionEndpointAuthSigningAlgValuesSupported: slices.Clone(assertionAlgs),
		// Varde's own.
		StatusEndpoint: p.statusURL(p.StatusAPIPath),
		StatusPage:     p.statusURL(p.StatusPagePath),
	}
}

// statusURL is the absolute URL of a status path, "" if there is none.
func (p *Provider) statusURL(path string) string {
	if path == "" {
		return ""
	}
	return p.Issuer + path
}

func (p *Provider) discovery(w http.ResponseWriter, r *http.Request) {
	writePublicJSON(w, p.Metadata(), "public, max-age=300")
}

// jwksMaxAge is how long a relying party may reuse the JWKS it fetched
// (Cache-Control: max-age). A key an operator retires leaves every
// node's JWKS within seconds (ADR 18), but a relying party that cached
// the set keeps trusting the key until it fetches it again: this bounds
// that for every relying party that honours HTTP caching, while sparing
// the nodes a fetch for every token one verifies. ADR 18 promises it.
const jwksMaxAge = time.Minute

// JWKSMaxAge is jwksMaxAge, for what varde keys retire tells operators.
const JWKSMaxAge = jwksMaxAge

func (p *Provider) jwks(w http.ResponseWriter, r *http.Request) {
	cache := fmt.Sprintf("public, max-age=%d", int(jwksMaxAge.Seconds()))
	set, err := p.KeySet.JWKS(r.Context())
	if err != nil {
		p.Log.WarnContext(r.Context(), "jwks from store", "err", err)
	}
	if len(set.Keys) == 0 {
		// No key to serve: the store cannot be read and none was read
		// before, or this node's key was retired and no other node's is
		// published. A relying party that cached an empty set would
		// refuse every token: tell it to come back instead (ADR 18).
		desc := "no signing key can be served now"
		if err != nil {
			desc = "signing keys cannot be read now"
		}
		w.Header().Set("Retry-After", strconv.Itoa(jwksRetryAfter))
		oauth2.WriteError(w, &oauth2.Error{Code: oauth2.CodeTemporarilyUnavailable, Description: desc, Status: http.StatusServiceUnavailable})
		return
	}
	if err != nil {
		// The set still holds this node's key (and the last keys read), so
		// serve it, uncached: a store outage must not stop token
		// verification, but the set may lack keys that sign live tokens.
		cache = "no-store"
	}
	public := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(set.Keys))}
	for _, k := range set.Keys {
		public.Keys = append(public.Keys, k.Public())
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	writePublicJSON(w, public, cache)
}

// jwksRetryAfter is the Retry-After, in seconds, of a JWKS that cannot be
// served.
const jwksRetryAfter = 5

func writePublicJSON(w http.ResponseWriter, v any, cache string) {
	body, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		oauth2.WriteError(w, err)
		return
	}
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "application/json")
	}
	w.Header().Set("Cache-Control", cache)
	_, _ = w.Write(append(body, '\n'))
}
