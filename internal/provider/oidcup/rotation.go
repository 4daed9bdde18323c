package oidcup

import (
	"crypto"
	"encoding/base64"
	"fmt"

	"github.com/go-jose/go-jose/v4"
)

// Client key rotation (ADR 56). An upstream that fetches Varde's client
// keys from JWKSPath caches them, often for hours, and one that holds
// them in its own registration of Varde knows only the keys registered
// there: a key that signs before the upstream knows it fails every
// login through it. So besides ClientKey, the one key that signs, a
// provider publishes up to two keys that never sign: the next key,
// which is to become ClientKey once the upstream knows it, and the
// previous key, which ClientKey replaced and which nodes not yet
// restarted still sign with.

// publishedKey is a key published at JWKSPath that does not sign.
type publishedKey struct {
	// what names it in errors: "next client key", "previous client key".
	what string
	key  crypto.Signer
}

// extraKeys returns the keys c publishes beside ClientKey, next first.
func (c *Config) extraKeys() []publishedKey {
	var out []publishedKey
	if c.NextClientKey != nil {
		out = append(out, publishedKey{"next client key", c.NextClientKey})
	}
	if c.PreviousClientKey != nil {
		out = append(out, publishedKey{"previous client key", c.PreviousClientKey})
	}
	return out
}

// rotationProblems checks the next and previous keys: each a key that
// could sign client assertions (it is to sign, or did), and no two of
// the published keys the same, which would publish one key under two
// roles and leave the rotation half done.
func (c *Config) rotationProblems() []error {
	var errs []error
	seen := []publishedKey{{"client key", c.ClientKey}}
	for _, k := range c.extraKeys() {
		if err := CheckClientKey(k.key); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", k.what, err))
			continue
		}
		for _, s := range seen {
			if s.key != nil && SameKey(s.key, k.key) {
				errs = append(errs, fmt.Errorf("%s is the same key as the %s: give it a key of its own", k.what, s.what))
			}
		}
		seen = append(seen, k)
	}
	return errs
}

// CheckClientKey returns why key cannot sign client assertions, if it
// cannot: the same check Config.Validate makes of every client key.
func CheckClientKey(key crypto.Signer) error {
	_, err := assertionAlg(key, "")
	return err
}

// SameKey reports whether a and b have the same public key.
func SameKey(a, b crypto.Signer) bool {
	pa, ok := a.Public().(interface{ Equal(crypto.PublicKey) bool })
	return ok && pa.Equal(b.Public())
}

// publicJWK is key's public JWK as JWKSPath publishes it: use sig, the
// alg it signs (or would sign) client assertions with, and kid its RFC
// 7638 thumbprint unless kid is given. A key that fits want (Config.
// ClientKeyAlg) gets it, so that the next key, once it signs, signs
// with the alg it was published with.
func publicJWK(key crypto.Signer, want, kid string) (jose.JSONWebKey, jose.SignatureAlgorithm, error) {
	alg, err := assertionAlg(key, want)
	if err != nil {
		if alg, err = assertionAlg(key, ""); err != nil {
			return jose.JSONWebKey{}, "", err
		}
	}
	jwk := jose.JSONWebKey{Key: key.Public(), Algorithm: string(alg), Use: "sig", KeyID: kid}
	if kid == "" {
		tp, err := jwk.Thumbprint(crypto.SHA256)
		if err != nil {
			return jose.JSONWebKey{}, "", fmt.Errorf("thumbprint: %w", err)
		}
		// RFC 7638 §3: the thumbprint is over the required members only.
		jwk.KeyID = base64.RawURLEncoding.EncodeToString(tp)
	}
	return jwk, alg, nil
}

// ClientJWKS returns the public keys c authenticates Varde with at the
// upstream, as JWKSPath serves them (Provider.ClientJWKS): ClientKey's,
// which signs, then NextClientKey's and PreviousClientKey's, which do
// not. It is what an operator registers at an upstream that does not
// fetch Varde's keys from JWKSPath. Empty for client_secret_basic; an
// error for a configuration Validate refuses.
func (c *Config) ClientJWKS() (jose.JSONWebKeySet, error) {
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}}
	if err := c.Validate(); err != nil {
		return set, err
	}
	if c.AuthMethod != AuthPrivateKeyJWT {
		return set, nil
	}
	jwk, _, err := publicJWK(c.ClientKey, c.ClientKeyAlg, c.KeyID)
	if err != nil {
		return set, fmt.Errorf("upstream %q: client key: %w", c.ID, err)
	}
	set.Keys = append(set.Keys, jwk)
	for _, k := range c.extraKeys() {
		if jwk, _, err = publicJWK(k.key, c.ClientKeyAlg, ""); err != nil {
			return set, fmt.Errorf("upstream %q: %s: %w", c.ID, k.what, err)
		}
		set.Keys = append(set.Keys, jwk)
	}
	return set, nil
}
