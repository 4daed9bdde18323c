// Package demorp is "Demo Bank", the relying party that `varde demo`
// serves next to Varde. It is an ordinary OpenID Connect client built on
// github.com/coreos/go-oidc and golang.org/x/oauth2, integrating the way a
// real bank would: pushed authorization requests (RFC 9126), PKCE,
// private_key_jwt client authentication, ID token verification, nonce and
// RFC 9207 iss checks, and RP-initiated logout. It is demo code, kept
// small, and never part of a production node.
package demorp
