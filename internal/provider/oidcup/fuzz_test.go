package oidcup

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/json"
	"math/big"
	"slices"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/varde-eid/varde/internal/assurance"
	"github.com/varde-eid/varde/internal/identity"
)

// FuzzParseMetadata: any document is refused or yields usable metadata
// for the configured issuer with asymmetric ID token algorithms only.
func FuzzParseMetadata(f *testing.F) {
	const iss = "https://up.example"
	good, _ := json.Marshal(map[string]any{
		"issuer": iss, "authorization_endpoint": iss + "/authorize", "token_endpoint": iss + "/token",
		"jwks_uri": iss + "/jwks", "id_token_signing_alg_values_supported": []string{"RS256", "HS256", "none"},
	})
	f.Add(good)
	f.Add([]byte(`{"issuer":"https://up.example","require_pushed_authorization_requests":true}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"issuer":null}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := parseMetadata(raw, iss, AuthClientSecretBasic, "")
		if err != nil {
			return
		}
		if m.Issuer != iss || m.AuthorizationEndpoint == "" || m.TokenEndpoint == "" || m.JWKSURI == "" || len(m.algs) == 0 {
			t.Fatalf("accepted incomplete metadata %+v", m)
		}
		for _, a := range m.algs {
			if !slices.Contains(idTokenAlgs, a) {
				t.Fatalf("accepted ID token alg %s", a)
			}
		}
		if m.RequirePAR && m.PAREndpoint == "" {
			t.Fatal("PAR required without an endpoint")
		}
	})
}

// FuzzParseJWKS: any key set is refused or holds only public asymmetric
// signing keys.
func FuzzParseJWKS(f *testing.F) {
	k := ecdsaKey(1)
	good, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: k.Public(), KeyID: "a", Use: "sig"}}})
	f.Add(good)
	f.Add([]byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]}`))
	f.Add([]byte(`{"keys":null}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		set, err := parseJWKS(raw)
		if err != nil {
			return
		}
		if len(set.Keys) == 0 {
			t.Fatal("accepted an empty set")
		}
		for _, k := range set.Keys {
			if !k.IsPublic() || !k.Valid() {
				t.Fatalf("accepted key %+v", k)
			}
			if _, ok := k.Key.([]byte); ok {
				t.Fatal("accepted a symmetric key")
			}
		}
	})
}

// ecdsaKey is a fixed P-256 key for fuzzing (fuzz inputs must be
// reproducible).
func ecdsaKey(d int64) *ecdsa.PrivateKey {
	k := &ecdsa.PrivateKey{D: big.NewInt(d)}
	k.PublicKey.Curve = elliptic.P256()
	k.PublicKey.X, k.PublicKey.Y = elliptic.P256().ScalarBaseMult(k.D.Bytes())
	return k
}

// FuzzIDToken: no input is accepted unless it is signed by the
// upstream's key, and nothing accepted has a level above the maximum or
// an invalid identifier.
func FuzzIDToken(f *testing.F) {
	key := ecdsaKey(7)
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k1", Algorithm: "ES256", Use: "sig"}}}
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	c := &checker{
		issuer: "https://up.example", clientID: "varde", algs: []jose.SignatureAlgorithm{jose.ES256, jose.RS256},
		maxLevel: assurance.Substantial, acrMap: map[string]assurance.Level{"sub": assurance.Substantial, "high": assurance.High},
		claim: "pid", schemes: []string{"no:fnr"}, leeway: 30 * time.Second, maxAge: 5 * time.Minute,
	}
	claims := map[string]any{"iss": c.issuer, "aud": "varde", "sub": "s", "exp": now.Add(time.Minute).Unix(), "iat": now.Unix(),
		"nonce": "n", "acr": "high", "pid": "17856000796"}
	good := signWithKey(f, key, "k1", claims)
	f.Add(good)
	f.Add(unsigned(map[string]any{"alg": "none"}, claims, ""))
	f.Add(unsigned(map[string]any{"alg": "ES256", "kid": "k1"}, claims, "AAAA"))
	f.Add("a.b.c")
	keys := func(context.Context, bool) (jose.JSONWebKeySet, error) { return set, nil }
	if _, rej := c.check(context.Background(), good, "n", now, keys); rej != nil {
		f.Fatalf("the good seed is refused: %v", rej)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, rej := c.check(context.Background(), raw, "n", now, keys)
		if rej != nil {
			if rej.reason == "" {
				t.Fatal("refusal without a reason")
			}
			return
		}
		if v.level > c.maxLevel || v.level < assurance.Low {
			t.Fatalf("level %s", v.level)
		}
		if err := identity.Validate(v.identifier.Scheme, v.identifier.Value); err != nil {
			t.Fatalf("accepted identifier: %v", err)
		}
	})
}

func signWithKey(f *testing.F, key *ecdsa.PrivateKey, kid string, claims map[string]any) string {
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", kid))
	if err != nil {
		f.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	jws, err := s.Sign(payload)
	if err != nil {
		f.Fatal(err)
	}
	out, _ := jws.CompactSerialize()
	return out
}

// FuzzIdentifierClaim: whatever the claim holds, an accepted identifier
// is of an accepted scheme and valid for it.
func FuzzIdentifierClaim(f *testing.F) {
	c := &checker{claim: "pid", schemes: []string{"no:fnr", "no:dnr"}}
	for _, s := range []string{`"17856000796"`, `{"scheme":"no:fnr","value":"17856000796"}`, `{"scheme":"se:pnr","value":"196408233234"}`,
		`null`, `12345678901`, `{"value":"x"}`, `["17856000796"]`, `""`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		id, rej := c.identifier(raw)
		if rej != nil {
			return
		}
		if !slices.Contains(c.schemes, id.Scheme) {
			t.Fatalf("accepted scheme %q", id.Scheme)
		}
		if err := identity.Validate(id.Scheme, id.Value); err != nil {
			t.Fatalf("accepted invalid identifier: %v", err)
		}
	})
}
