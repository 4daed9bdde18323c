// Package oidc is Varde's OpenID Provider: discovery (OpenID Connect
// Discovery 1.0, also at RFC 8414's location), the JWKS, pushed
// authorization requests (RFC 9126), the authorization endpoint with
// PKCE (RFC 7636, S256 only) and the iss response parameter (RFC 9207),
// the token endpoint (one unit per grant: authorization_code,
// refresh_token with rotation and reuse detection), token revocation
// (RFC 7009, which revokes a token's whole grant), ID tokens with
// pairwise subjects (OpenID Connect Core 1.0 §2, §8.1), userinfo (Core
// §5.3) and RP-initiated logout (RP-Initiated Logout 1.0), following the
// OAuth 2.0 Security BCP (RFC 9700). Access tokens, a public client's
// refresh tokens and codes can be bound to a client's key with DPoP (RFC
// 9449): which ones, and to what key, is decided here; the proofs are
// checked in package oauth2.
//
// It enforces the constraints it is handed (a client's allowed levels,
// acr_values, max_age, prompt) but decides nothing about how people log
// in: when a request needs a login it redirects to LoginURL, and the
// broker calls Continue with the new session, which has it stored,
// listing the client, with the consent event in one write and issues the
// code (GET
// /authorize/resume does the same for a browser sent back, and explains
// when the request can no longer continue: for one that ran out of time,
// naming the service and linking to its registered home,
// ExpiredLoginPage). A person ends a login with
// POST /authorize/cancel from Varde's own pages; a GET of it only shows
// the page with that form. Client authentication, DPoP
// proofs and error encoding live in package oauth2, signing keys in
// package keys.
package oidc
