// Package oidcup makes an upstream OpenID provider (a national eID such
// as BankID or MinID, or another Varde node) a Varde provider: it logs a
// person in there with the authorization code flow and reports what the
// upstream proved — an identifier of a known scheme at a level — as a
// provider.Result with Method "upstream". The broker links the
// identifier to a person and decides whether the level is enough; this
// package decides nothing about policy, and it never trusts the
// upstream beyond what Config says it may assert.
//
// # Flow
//
//	Start(attempt)
//	  discovery (cached)            GET {issuer}/.well-known/openid-configuration
//	  state, nonce, PKCE verifier   256 random bits each, stored single use
//	                                (store.Challenges, Timeouts.Login) with the
//	                                attempt ID under a hash of the state and the
//	                                varde_upstream browser cookie; beside it, a
//	                                hash of the cookie under one of the state
//	                                alone
//	  [PAR]                         POST pushed_authorization_request_endpoint,
//	                                unless Prepare pushed it already (kept in
//	                                memory, and in a store nodes share)
//	  303 authorization_endpoint    response_type=code, scope, state, nonce,
//	                                code_challenge (S256), acr_values,
//	                                ui_locales, [login_hint], [prompt=login
//	                                max_age=0 | max_age=N] | client_id+request_uri
//	GET /upstream/{id}/callback?code&state&iss
//	  state taken once by this browser, RFC 9207 iss, error
//	  POST token_endpoint           code, redirect_uri, code_verifier, client
//	                                authentication, within Timeouts.Token
//	  ID token validated            signature (upstream JWKS), iss, aud, azp,
//	                                exp, iat, nbf, auth_time, nonce, sub, acr,
//	                                identifier
//	  Finisher.Finish(attempt, Result) → 303 to the URL it returns
//
// Any refusal after the state is known is audited with a precise reason
// (the Reason constants) and handed to Finisher.Fail, so the broker can
// offer another provider, as "cancelled" (access_denied at the
// upstream), "unverified_response", "upstream_error" or
// "account_refused". The authorization response comes through the
// browser, and anyone who starts a login holds a state to forge one
// with: refusing it (an error in it, a mix-up, no code, a code the token
// endpoint refuses with invalid_grant, or with invalid_request as some
// servers answer a code they find malformed) is "unverified_response", which
// the broker does not count against the upstream's health. So is a 4xx
// other than 401 from the token endpoint without an OAuth error
// ("token_refused"): a firewall in front of it refusing the request, as
// it does a code that looks like an attack, which anyone can send. So is
// a "bad_nonce" in a request not pushed by PAR: the nonce went to the
// upstream through the browser, whose holder can change it and log in
// with their own account, and the upstream then rightly signs their
// nonce. A pushed request never passes through the browser, but the code
// does: an upstream without PKCE (no S256 in its metadata) redeems the
// code of anyone's own other login brought back with this login's state
// (RFC 9700 §4.5), and its token then has that login's nonce. Only at an
// upstream that checks PKCE is a wrong nonce after a pushed request the
// upstream's, and counts against it. A token response without an ID
// token ("no_id_token") is the same: the browser's holder can take
// openid out of a request's scope, and the upstream then rightly answers
// as an OAuth server; only after a pushed request does it count.
//
// A firewall that refuses all of Varde's token requests is seen by the
// health probes instead: Probe fetches the discovery document and keys,
// and POSTs to the token endpoint with no grant, which must answer with
// an OAuth error (any, of any status); no answer, or one that is no
// OAuth error, fails the probe. Whether the endpoint redeems codes is
// left to logins.
//
// Failures of the upstream's servers are "upstream_error": discovery,
// keys, PAR, the token endpoint (any other error, a timeout, no
// connection) and an ID token that is not its valid answer for this
// login.
//
// An ID token that is, but whose account Varde cannot use, is
// "account_refused" ("claims_not_text", "no_auth_time",
// "stale_auth_time", "unknown_acr", "no_identifier",
// "invalid_identifier", "ambiguous_identifier"), handed
// over through provider.AccountFinisher with a handle of the token's sub
// (an HMAC under a key of the process; neither it nor the sub is
// logged or audited).
// Each of these may be one account's: a name with a NUL in it that the
// person gave the upstream, a person with no national
// identifier at the eID, or one of a scheme this upstream is not trusted
// for, a session reused for whoever has one, an authenticator the eID
// grades with an acr Varde does not map. A person retrying, or anyone
// holding such an account on purpose, must not make a working upstream
// down for everyone, so the broker counts each account once in the
// health window. Each may also be everyone's, when the upstream changed
// its acr values or claims, or Varde's configuration for it is wrong:
// then many accounts are refused, and the upstream goes down as for any
// failing logins, with the transition reason "login_refusals" pointing
// at the configuration, and the audit log has the precise reason.
//
// Before the state is known the person sees a plain-language page and
// nothing is failed: there is no attempt yet that could be trusted.
//
// # Security checks, with the sections they implement
//
//   - PKCE with S256 on every request (RFC 7636 §4.2, RFC 9700 §2.1.1);
//     an upstream that lists code_challenge_methods_supported without
//     S256 is unusable.
//   - state: single use, stored under a per-provider hash, so a state
//     from one upstream is unknown at another's callback; an unknown or
//     reused one is audited "replay" (RFC 6749 §10.12). The login is
//     bound to the browser that started it by a random HttpOnly,
//     SameSite=Lax cookie (RFC 9700 §4.7.1): the login state is stored
//     under a hash of the state and the cookie's value, so that only
//     that browser's callback finds it and spends it. Whoever learns a
//     person's state (it travels in URLs, through the person's browser
//     and the eID) and sends the callback first from another browser
//     spoils nothing: the person's own callback still finishes the
//     login. Beside the login state, under a hash of the state alone (a
//     namespace of its own), is the hash of the cookie it was issued to,
//     which a callback that finds no login reads (and so takes: once)
//     to tell another browser, audited "browser_mismatch" (login CSRF),
//     from a replay; the callback that takes the login takes it too.
//     That is a second write to the store at Start and at the callback.
//     The cookie covers the whole site (Path=/), so every Start sees it,
//     keeps its value and sets it again for Timeouts.Login: logins
//     started one after another or side by side in one browser all come
//     back to it. Over HTTPS it is __Host-varde_upstream (RFC 6265bis
//     §4.1.3.2), named as the session cookie is (session.SecureName), so
//     that neither a sibling subdomain nor a plain-HTTP page of the host
//     can set it to a value it knows (cookie tossing); under an issuer's
//     path it is __Secure-varde_upstream (ADR 25), and varde_upstream
//     over plain HTTP on localhost.
//   - Mix-up (RFC 9207 §2.4): when the upstream's metadata has
//     authorization_response_iss_parameter_supported, iss MUST be in
//     every response, error responses included; an iss that is present
//     must equal the configured issuer in any case. Reason "mix_up".
//   - Metadata (OpenID Connect Discovery 1.0 §4.3): the document's
//     issuer must equal the configured issuer exactly; endpoints must be
//     https (http only on loopback, and only for an upstream itself on
//     http loopback, ADR 61). Metadata is cached for
//     Timeouts.Discovery and fetched again early after a token endpoint
//     or PAR failure (at most once per Timeouts.Refetch); when a fetch
//     fails the last good document is used, and a failing upstream is not
//     asked again within Timeouts.Refetch.
//   - Client authentication at the token and PAR endpoints:
//     private_key_jwt (RFC 7523 §3, OIDC Core §9) with an assertion
//     signed through a crypto.Signer, aud the upstream's issuer as a
//     single string, a random jti and a one-minute life, each sent
//     once; those of the next requests are signed in the background
//     once Start has sent the browser to the upstream, kept in the
//     node's memory only and sent only within their first ten seconds
//     (ahead.go); or client_secret_basic (RFC 6749 §2.3.1). Only
//     Config.ClientKey signs; Config.NextClientKey and
//     PreviousClientKey are published at JWKSPath beside it, each kid
//     its RFC 7638 thumbprint, so that the key can be replaced with no
//     login failing while the upstream learns the new one (rotation.go,
//     ADR 56). The HTTP client never
//     follows redirects, so credentials go only to the endpoint named;
//     a discovery document or jwks_uri that redirects fails its fetch
//     with an error that says the redirect was not followed.
//   - ID token (OpenID Connect Core §3.1.3.7): the JWS alg must be an
//     asymmetric algorithm the upstream advertises (item 7; "none" is
//     "alg_none", HMAC and others "disallowed_alg", RFC 8725 §3.1); the
//     signature must verify with a key of the upstream's JWKS (item 6,
//     "bad_signature"); iss exactly the issuer (item 2, "wrong_issuer");
//     aud containing the client_id and no untrusted audience, azp, if
//     present or needed for several audiences, the client_id (items 3–5,
//     "wrong_audience"); exp in the future (item 9, "expired"); iat
//     present, not in the future and not older than Timeouts.MaxTokenAge
//     (item 10, "bad_iat"); nbf and auth_time not in the future; the
//     nonce equal to the one sent (item 11, "bad_nonce"); sub present
//     (§2, "no_subject"). Clock skew of Timeouts.Leeway is allowed.
//   - Claims are text: UTF-8 (RFC 7519 §7.2, step 10), with no NUL in
//     any string ("claims_not_text"). Such a token is refused, not
//     mended: encoding/json would turn bad bytes into U+FFFD, and a NUL
//     fits no name or number and no PostgreSQL text column. The ID token
//     is at most 16 KiB; given_name and family_name (at most 100
//     characters) and birthdate (YYYY-MM-DD) are passed on when
//     well-formed and otherwise left out; a name holding a character
//     that does not show as itself (identity.HiddenRune: a control
//     character, a line or paragraph separator, a control that reorders
//     text) is not well-formed: shown to the help desk, it could read as
//     another name, or backwards. The login goes on without it, as the
//     person is who their number says, and refusing it would lock them
//     out for what their eID's record holds.
//   - Keys: the JWKS is cached for Timeouts.JWKS; a kid it does not hold
//     makes one refetch, at most once per Timeouts.Refetch of the last
//     such refetch (OIDC Core §10.1.1, key rotation); the health probe's
//     fetches do not hold it back, and a refetch that waits for a
//     probe's fetch begun before it was asked for then fetches itself,
//     since the probe's keys may predate the rotation. A kid still unknown because the
//     refetch was held back is "unknown_key", which does not count
//     against the upstream's health; after a refetch it is
//     "bad_signature", as is a known key that does not verify (no
//     refetch), and a refetch that the upstream fails (an error
//     answer, or no answer within Timeouts.Request) is "jwks_error"
//     with its cause, not a bad signature over the keys held. A login's wait for a fetch under way and its own fetch
//     that may follow take one Timeouts.Request in all, and the wait
//     ends when the login's request does ("jwks_error", which then does
//     not count against the upstream's health: the fetch waited for is
//     not cut short and is its own evidence). An own fetch that runs
//     out of the less than Timeouts.Request the login had left after
//     waiting is no evidence either: it does not count against the
//     upstream's health, nor is it remembered as a failed fetch that
//     holds back the next login's refetch (the same for metadata).
//     Keys from a jwks_uri the metadata no
//     longer names are not used: the new one is fetched at once and,
//     while it fails, at most once per Timeouts.Refetch. Only RSA keys of 2048 bits or more,
//     ECDSA and Ed25519 public keys are used.
//   - Level (item 12): the acr must be a key of Config.ACRMap, otherwise
//     "unknown_acr" — an unknown value is never guessed. The level is the
//     lower of the mapped level and Config.MaxLevel: an upstream cannot
//     raise a login above what Varde's operator assessed it for.
//   - Identifier: Config.IdentifierClaim, a string valid in exactly one
//     of Config.IdentifierSchemes (valid in several, it is refused, not
//     guessed: "ambiguous_identifier") or an object {"scheme", "value"}
//     whose scheme must be one of them; it must be valid for its scheme,
//     check digits included (package identity). "no_identifier",
//     "invalid_identifier".
//   - amr values are passed on only if they are registered in RFC 8176.
//   - Freshness: with Config.PromptLogin, or when the relying party
//     asked for a new authentication (provider.Attempt.Fresh:
//     prompt=login or max_age=0 at Varde), the request carries
//     prompt=login and max_age=0 (OIDC Core §3.1.2.1), which makes
//     auth_time required; an ID token without it ("no_auth_time") or
//     with one older than the request ("stale_auth_time") is refused, so
//     an upstream's own single sign-on session is never passed off as a
//     new login. A relying party's other max_age goes on as it is (at
//     most 2^31-1 seconds, which every server can read: a pushed request
//     refused for it would count against the upstream, and anyone can
//     choose a relying party's max_age), and makes auth_time required
//     too; an auth_time older than the request
//     and than that max_age (§3.1.3.7 item 13) is "stale_auth_time", as
//     the authorization endpoint would not take the session for the
//     request and the person would be sent round again. Otherwise an ID
//     token without auth_time is taken as a login at its iat. The time
//     reported is this node's, as far as the leeway allows telling: an
//     auth_time after now is reported as now, and, for a request that
//     asked for a new login or a max_age, one within Timeouts.Leeway
//     before the request was sent as that moment (the upstream's clock
//     is behind), so that the new login does not look older than the
//     relying party's request, which would send the person round to log
//     in again and again.
//   - Every exchange is bounded: Timeouts.Request for discovery, JWKS
//     and PAR, Timeouts.Token for the code exchange ("timeout"); sizes
//     of what the upstream returns are capped. None is cut short when
//     the person's browser goes away: what the upstream answers is
//     evidence about it, and a hang-up, which anyone can make, is not.
//     Only a login's wait for another's fetch of the metadata or keys
//     ends then, and is not counted against the upstream.
//
// A login whose callback arrives in another browser than the one that
// started it (for example when a phone's eID app opens the link in its
// own browser) is refused; the person starts again from the relying
// party.
//
// A node whose flow state is full (store.ErrFull: a flood of starts, or
// more logins than it may hold; ADR 10, 24) answers a start with a page
// saying too many people are logging in and to try again in a minute
// (503, Retry-After 60), as the passkey ceremonies do: the login stays
// the broker's, nothing is logged or audited (a flood would fill both),
// and nothing is pushed to the upstream, since the record of whom the
// state is issued to is stored before any push.
//
// A store that cannot be reached or is overloaded (store.Unavailable) is
// not the upstream's failure, and fails nothing at the broker: the person
// gets a 503 page with Retry-After saying nothing was lost. At the start
// ("store_unavailable"), nothing was stored and the page says to try
// again in a minute: the same start then works. At the callback, either
// reading its state ("store_unavailable") or when the broker finishes
// the login, it says to start the login again in a minute: the first
// leaves the state and the code untouched, but the code may expire
// meanwhile; after the second the state is used and the code redeemed,
// and no session was stored. A write of the login state that got no
// answer (store.ErrOutcomeUnknown), at the start or when the callback
// takes it, may or may not be stored: it is audited "outcome_unknown",
// is the node's failure at the broker (node_error), and the person
// starts again, which is safe either way. Every such failure of Varde's
// own (store_unavailable, outcome_unknown, internal) is audited with the
// status component that failed in provider.DetailFault: the one that
// keeps the login state (Deps.StateComponent) for its write or take,
// the node (Deps.NodeComponent) for anything else, such as its random
// source. The status page counts the people it affected there, never
// against the upstream, and the broker does not report it to the
// upstream's health.
//
// Tokens, codes, client credentials and national identifiers are never
// logged or audited; audit details carry only the stage, the method and,
// for upstream errors, the upstream's error code when it is a short
// token.
//
// # Routes (Register)
//
//	GET /upstream/{id}/callback   the redirect URI (CallbackPath)
//	GET /upstream/{id}/jwks       Varde's public client keys (private_key_jwt only; JWKSPath):
//	                              the one that signs, then the next and the
//	                              previous one if configured (rotation.go)
//
// # Elsewhere
//
// The broker (package broker) chooses providers and links identifiers
// to persons; health checks can call Provider.Probe.
package oidcup
