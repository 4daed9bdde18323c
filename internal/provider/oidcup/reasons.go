package oidcup

import "github.com/varde-eid/varde/internal/provider"

// Reasons recorded in audit events when an upstream login is refused.
// They are stable: dashboards and the health package may count them.
const (
	ReasonReplay          = "replay"           // unknown, used or expired state
	ReasonBadRequest      = "bad_request"      // callback without state, or with repeated parameters
	ReasonBrowserMismatch = "browser_mismatch" // callback in another browser than the one that started
	ReasonMixUp           = "mix_up"           // RFC 9207 iss missing or wrong in the response
	ReasonCancelled       = "cancelled"        // the person cancelled at the upstream
	ReasonUpstreamError   = "upstream_error"   // the authorization response is another error
	ReasonNoCode          = "no_code"          // a response with neither code nor error
	ReasonMalformedCode   = "malformed_code"   // a code no authorization server issues (maxCodeLength, RFC 6749 A.11)
	ReasonDiscovery       = "discovery_error"  // metadata could not be fetched or is unusable
	ReasonPAR             = "par_error"        // the pushed authorization request failed
	ReasonInvalidGrant    = "invalid_grant"    // the token endpoint refused the code (invalid_grant or invalid_request)
	ReasonTokenEndpoint   = "token_endpoint_error"
	ReasonTokenRefused    = "token_refused"      // 4xx (not 401) without an OAuth error, as from a firewall in front of it
	ReasonNoIDToken       = "no_id_token"        // a token response without an ID token
	ReasonTimeout         = "timeout"            // the token endpoint did not answer in time
	ReasonJWKS            = "jwks_error"         // the upstream's keys could not be fetched
	ReasonMalformed       = "malformed_id_token" // not a compact JWS, or claims of the wrong type
	ReasonNotText         = "claims_not_text"    // claims not UTF-8, or a string in them with a NUL
	ReasonAlgNone         = "alg_none"
	ReasonDisallowedAlg   = "disallowed_alg" // HMAC, or an algorithm the upstream does not advertise
	ReasonBadSignature    = "bad_signature"  // no key of the upstream's set verifies it
	// ReasonUnknownKey: the kid is not in the upstream's set and a
	// refetch was held back by Timeouts.Refetch.
	ReasonUnknownKey        = "unknown_key"
	ReasonWrongIssuer       = "wrong_issuer"
	ReasonWrongAudience     = "wrong_audience"
	ReasonExpired           = "expired"
	ReasonBadIssuedAt       = "bad_iat" // missing, in the future or too old
	ReasonNotYetValid       = "not_yet_valid"
	ReasonBadAuthTime       = "bad_auth_time"
	ReasonNoAuthTime        = "no_auth_time"    // missing, though max_age=0 was sent (PromptLogin)
	ReasonStaleAuthTime     = "stale_auth_time" // older than the request, though prompt=login, or a max_age it exceeds, was sent
	ReasonBadNonce          = "bad_nonce"
	ReasonNoSubject         = "no_subject"
	ReasonUnknownACR        = "unknown_acr"
	ReasonNoIdentifier      = "no_identifier"
	ReasonInvalidIdentifier = "invalid_identifier"
	// ReasonAmbiguousIdentifier: a plain string identifier valid in more
	// than one accepted scheme.
	ReasonAmbiguousIdentifier = "ambiguous_identifier"
	ReasonInternal            = "internal"
	// ReasonStoreUnavailable: the login state could not be stored or
	// read because the store could not be reached or is overloaded.
	ReasonStoreUnavailable = "store_unavailable"
	// ReasonOutcomeUnknown: a write of the login state got no answer
	// (store.ErrOutcomeUnknown), so it may or may not have been stored.
	ReasonOutcomeUnknown = provider.ReasonOutcomeUnknown
)

// stateFailure is a refusal for a failure to store or take the login
// state: Varde's, of the component that keeps it (Deps.StateComponent).
func (p *Provider) stateFailure(reason, format string, args ...any) *rejection {
	rej := reject(reason, format, args...)
	rej.fault = p.stateAt
	return rej
}

// nodeFailure is a refusal for a failure of the node's own, such as its
// random source (Deps.NodeComponent).
func (p *Provider) nodeFailure(reason, format string, args ...any) *rejection {
	rej := reject(reason, format, args...)
	rej.fault = p.node
	return rej
}

// failReason is what the broker hears of a refusal (Finisher.Fail); the
// audit event has the precise reason. An authorization response comes
// back through the browser, and anyone who starts a login holds a state
// to send one with: an error in it, a mix-up, a missing or malformed
// code, and a code the token endpoint refuses (invalid_grant, or a 4xx
// other than 401 without an OAuth error, as a firewall in front of it
// answers to a code it does not like), are "unverified_response", which
// does not count against the upstream's health. What the upstream's
// own servers say or fail to say (discovery, keys, PAR, the token
// endpoint and the ID token it returns) is "upstream_error", except a
// "bad_nonce" in a request that went through the browser rather than by
// PAR, which its holder can change, or whose code came from another
// login at an upstream without PKCE, and a token response with no ID
// token ("no_id_token") to a request that went through the browser,
// whose holder can take openid out of its scope (rejection.unverified),
// and an ID token whose kid the cached keys lack while a refetch is held
// back ("unknown_key"): the upstream may have rotated its keys, so it is
// "unverified_response" until a refetch has been tried. A failure
// of Varde's own (its store, its random source) is "node_error", which
// does not count against the upstream either.
//
// An ID token that is the upstream's valid answer for this login, but
// whose account cannot be used, is "account_refused", handed over with
// the account (provider.AccountFinisher): claims that are not text (a
// name the person gave the upstream may hold a NUL), no identifier, an
// invalid or ambiguous one or one of a scheme not accepted, an acr not
// in ACRMap, and no auth_time, or an old one, when a new login or a
// max_age was asked for. Each may be one account's (a person with no national identifier at the
// eID, a D-number where only birth numbers are accepted, a session
// reused for whoever has one, an authenticator the eID grades below
// what Varde maps), or everyone's (the eID renamed its acr values or its
// identifier claim, or ignores prompt=login; Varde's configuration is
// wrong). The broker counts each account once against the upstream's
// health: a person retrying, or anyone holding such an account, weighs
// as one login, and many accounts refused still make the upstream down.
func failReason(reason string) string {
	switch reason {
	case ReasonCancelled:
		return provider.ReasonCancelled
	case ReasonMixUp, ReasonUpstreamError, ReasonNoCode, ReasonMalformedCode, ReasonInvalidGrant, ReasonTokenRefused, ReasonUnknownKey:
		return provider.ReasonUnverifiedResponse
	case ReasonInternal, ReasonOutcomeUnknown:
		return provider.ReasonNodeError
	case ReasonUnknownACR, ReasonNoIdentifier, ReasonInvalidIdentifier, ReasonAmbiguousIdentifier,
		ReasonNoAuthTime, ReasonStaleAuthTime, ReasonNotText:
		return provider.ReasonAccountRefused
	}
	return ReasonUpstreamError
}
