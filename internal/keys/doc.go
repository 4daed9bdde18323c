// Package keys holds a node's signing keys and the cluster's key set.
//
// A Signer wraps a crypto.Signer, so the private key can live in a file
// or in a hardware module: JWTs are signed through go-jose's
// OpaqueSigner and the private bytes are never read. Its key decides its
// algorithm: ECDSA P-256 signs ES256, the default, and RSA signs RS256,
// for relying parties registered for it (ADR 32). A node has one Set per
// key it signs with, over one store; every Set serves and verifies every
// node's keys of both algorithms, each by the alg its JWK names. A Set
// publishes the local public key to the shared store and serves every
// node's unexpired public keys as the JWKS (RFC 7517), so any node can
// verify what any other node signed. While the store cannot be read a
// Set trusts the keys it read last for at most MaxStale, and a local key
// whose publication ran out (PublishTTL after its last Publish) signs
// nothing until it is published again. Each publish is a claim: a key
// another node holds is not taken from it, and SharedWith names that
// node until this one holds the key again. A hardware module may stop
// answering, and a Signer takes no context, so callers that must not
// wait on it for ever sign through a Bounded: within a time limit, with
// at most one signature left running while it does not answer.
//
// Verifying tokens that relying parties present back (id_token_hint)
// lives here too; the protocol endpoints live in package oidc.
package keys
