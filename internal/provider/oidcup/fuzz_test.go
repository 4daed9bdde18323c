package oidcup

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/json"
	"fmt"
	"math/big"
	"slices"
	"strings"
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

// FuzzIDTokenClaims signs any claims with the upstream's key, so the
// checks behind the signature are what is fuzzed: whatever the claims
// hold (a claim null, a number where a string belongs, an object), a
// token is accepted only when iss, aud, nonce, sub, exp, iat and acr are
// there as the values the rules ask for and its identifier is valid. A
// claim that is null or of another type is refused, never read as empty
// and let through.
func FuzzIDTokenClaims(f *testing.F) {
	key := ecdsaKey(7)
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k1", Algorithm: "ES256", Use: "sig"}}}
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	c := &checker{
		issuer: "https://up.example", clientID: "varde", algs: []jose.SignatureAlgorithm{jose.ES256},
		maxLevel: assurance.Substantial, acrMap: map[string]assurance.Level{"sub": assurance.Substantial, "high": assurance.High},
		claim: "pid", schemes: []string{"no:fnr"}, leeway: 30 * time.Second, maxAge: 5 * time.Minute,
	}
	good := fmt.Sprintf(`{"iss":%q,"aud":"varde","sub":"s","exp":%d,"iat":%d,"nonce":"n","acr":"high","pid":"17856000796"}`,
		c.issuer, now.Add(time.Minute).Unix(), now.Unix())
	f.Add([]byte(good))
	for _, claim := range []string{"iss", "aud", "sub", "exp", "iat", "nonce", "acr", "pid"} {
		for _, v := range []string{`null`, `0`, `{}`, `[]`, `""`} {
			f.Add([]byte(strings.Replace(good, `{`, `{"`+claim+`":`+v+`,`, 1)))
		}
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", "k1"))
	if err != nil {
		f.Fatal(err)
	}
	keys := func(context.Context, bool) (jose.JSONWebKeySet, error) { return set, nil }
	f.Fuzz(func(t *testing.T, payload []byte) {
		jws, err := signer.Sign(payload)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := jws.CompactSerialize()
		if err != nil {
			t.Fatal(err)
		}
		v, rej := c.check(context.Background(), raw, "n", now, keys)
		if rej != nil {
			if rej.reason == "" {
				t.Fatal("refusal without a reason")
			}
			return
		}
		// Read the accepted claims apart from the checker, as the JSON
		// types they must be; a duplicate name counts as its last value,
		// as encoding/json reads it.
		var cl struct {
			Iss, Sub, Nonce, ACR *string
			Aud                  any
			Exp, Iat             *float64
		}
		if err := json.Unmarshal(payload, &cl); err != nil {
			t.Fatalf("accepted claims that are not a JSON object of the expected types: %v", err)
		}
		switch {
		case cl.Iss == nil || *cl.Iss != c.issuer:
			t.Fatalf("accepted iss %v", cl.Iss)
		case cl.Nonce == nil || *cl.Nonce != "n":
			t.Fatalf("accepted nonce %v", cl.Nonce)
		case cl.Sub == nil || *cl.Sub == "" || v.subject != *cl.Sub:
			t.Fatalf("accepted sub %v as %q", cl.Sub, v.subject)
		case cl.ACR == nil || c.acrMap[*cl.ACR] == 0:
			t.Fatalf("accepted acr %v", cl.ACR)
		case cl.Exp == nil || !now.Before(time.Unix(int64(*cl.Exp), 0).Add(c.leeway+time.Second)):
			t.Fatalf("accepted exp %v", cl.Exp)
		case cl.Iat == nil:
			t.Fatal("accepted a token without iat")
		case cl.Aud != "varde" && (len(toStrings(cl.Aud)) == 0 || slices.ContainsFunc(toStrings(cl.Aud), func(a string) bool { return a != "varde" })):
			t.Fatalf("accepted aud %v", cl.Aud)
		}
		if v.level > c.maxLevel || v.level < assurance.Low {
			t.Fatalf("level %s", v.level)
		}
		if err := identity.Validate(v.identifier.Scheme, v.identifier.Value); err != nil {
			t.Fatalf("accepted identifier: %v", err)
		}
	})
}

// toStrings returns a decoded JSON list of strings as a slice, and nil
// for anything else.
func toStrings(v any) []string {
	list, ok := v.([]any)
	if !ok {
		return nil
	}
	out := make([]string, 0, len(list))
	for _, e := range list {
		s, ok := e.(string)
		if !ok {
			return nil
		}
		out = append(out, s)
	}
	return out
}
