// Package dpopclient is the client side of DPoP (RFC 9449), for Varde's
// own relying parties: Demo Bank (package demorp) and the load
// generator (package loadgen). A Prover makes proofs with one key (§4.2:
// typ dpop+jwt, the public jwk, jti, htm, htu, iat, ath for a protected
// resource) and keeps the nonce the server last handed out in
// DPoP-Nonce, which its next proofs carry (§8.2, §9). Its Client sends
// a proof with every token request made through golang.org/x/oauth2,
// and Resource asks a protected resource with the DPoP scheme. A
// request refused for want of a fresh nonce is sent once more, and only
// once: Resource does so itself, and callers of the token and PAR
// endpoints do when AuthServerAsksNonce or ExchangeAsksNonce says so
// (§8), since each try needs a new client assertion.
//
// Checking proofs is the server's part and lives in package oauth2
// (internal/oauth2); which tokens are bound is decided in package oidc.
package dpopclient
