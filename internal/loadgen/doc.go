// Package loadgen drives complete Varde logins the way a relying party
// and a person would, over real HTTP: a pushed authorization request
// with private_key_jwt, the authorization redirect, the person's part
// (an Authenticator: a WebAuthn assertion from a software authenticator,
// github.com/descope/virtualwebauthn; or an upstream eID that Varde
// brokers, or a simulated eID logged in to directly), the code redirect
// with RFC 9207 iss, the token request with PKCE, and ID token
// verification with github.com/coreos/go-oidc. RP.Authorize is the
// person's part alone, for a relying party built on another library.
// The end-to-end tests and `varde bench` both use it; it never
// shortcuts the server's checks.
package loadgen
