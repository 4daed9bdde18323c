// Package oauth2 is the OAuth 2.0 vocabulary Varde's endpoints share:
// the protocol Error value and its one writer (RFC 6749 §5.2, RFC 6750
// §3), JSON responses, PKCE (RFC 7636, S256 only), client
// authentication at the token and PAR endpoints (RFC 6749 §2.3,
// RFC 7523 private_key_jwt, OpenID Connect Core §9), and DPoP proofs
// (RFC 9449): their verification (§4.3), the JWK thumbprint a token is
// bound to (§6.1), a protected resource's DPoP challenge (§7.1) and the
// nonces a server provides for proofs, made and checked without state
// (§8, §9). Client authentication and proof verification each come in
// two steps, Check (which writes nothing) and Record (which spends the
// assertion's or the proof's jti), so an endpoint makes every check
// before it spends anything.
//
// It makes no product decisions and knows no endpoints: those live in
// package oidc.
package oauth2
