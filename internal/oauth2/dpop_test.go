package oauth2

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/varde-eid/varde/internal/store"
	"github.com/varde-eid/varde/internal/store/flowmem"
)

// dpopKeys are the client keys the DPoP tests sign with, one per
// accepted algorithm, each made once and only when first used: RSA keys
// take a while, and far longer in a fuzzing build.
var dpopKeys = map[jose.SignatureAlgorithm]func() (crypto.Signer, error){
	jose.ES256: sync.OnceValues(func() (crypto.Signer, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) }),
	jose.ES384: sync.OnceValues(func() (crypto.Signer, error) { return ecdsa.GenerateKey(elliptic.P384(), rand.Reader) }),
	jose.EdDSA: sync.OnceValues(func() (crypto.Signer, error) {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	}),
	jose.PS256: sync.OnceValues(func() (crypto.Signer, error) { return rsa.GenerateKey(rand.Reader, 2048) }),
	jose.RS256: sync.OnceValues(func() (crypto.Signer, error) { return rsa.GenerateKey(rand.Reader, 2048) }),
}

func dpopKey(t testing.TB, alg jose.SignatureAlgorithm) crypto.Signer {
	t.Helper()
	k, err := dpopKeys[alg]()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// signJWS makes a compact JWS by hand (RFC 7515 §5.1, RFC 7518 §3), as a
// client would, so that the proofs under test owe nothing to the
// library that checks them. It signs with alg whatever the header says.
// key is a crypto.Signer's private key, or a []byte for HS256; "none"
// and unknown algorithms get an empty signature.
func signJWS(t testing.TB, alg string, key any, header, claims map[string]any) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	input := enc(header) + "." + enc(claims)
	sig, err := jwsSignature(alg, key, []byte(input))
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func jwsSignature(alg string, key any, input []byte) ([]byte, error) {
	h256 := sha256.Sum256(input)
	switch alg {
	case "ES256":
		return ecdsaRaw(key.(*ecdsa.PrivateKey), h256[:])
	case "ES384":
		h := sha512.Sum384(input)
		return ecdsaRaw(key.(*ecdsa.PrivateKey), h[:])
	case "EdDSA":
		return ed25519.Sign(key.(ed25519.PrivateKey), input), nil
	case "RS256":
		return rsa.SignPKCS1v15(rand.Reader, key.(*rsa.PrivateKey), crypto.SHA256, h256[:])
	case "PS256":
		return rsa.SignPSS(rand.Reader, key.(*rsa.PrivateKey), crypto.SHA256, h256[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	case "HS256":
		mac := hmac.New(sha256.New, key.([]byte))
		mac.Write(input)
		return mac.Sum(nil), nil
	}
	return nil, nil
}

// ecdsaRaw is an ECDSA signature as JWS has it: r and s, each the size
// of the curve's order, concatenated (RFC 7518 §3.4).
func ecdsaRaw(k *ecdsa.PrivateKey, digest []byte) ([]byte, error) {
	r, s, err := ecdsa.Sign(rand.Reader, k, digest)
	if err != nil {
		return nil, err
	}
	n := (k.Curve.Params().BitSize + 7) / 8
	out := make([]byte, 2*n)
	r.FillBytes(out[:n])
	s.FillBytes(out[n:])
	return out, nil
}

// jwkJSON is key (public or private) as a JWK.
func jwkJSON(t testing.TB, key any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKey{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// dpopFixture verifies proofs for the token endpoint at tokenURL.
type dpopFixture struct {
	v     *DPoPVerifier
	clock *testClock
}

func newDPoPFixture(t testing.TB) *dpopFixture {
	t.Helper()
	clock := &testClock{t: t0}
	replay := flowmem.New(flowmem.Options{Since: t0.Add(-time.Hour), Now: clock.Now})
	return &dpopFixture{
		v:     &DPoPVerifier{Replay: replay, Now: clock.Now},
		clock: clock,
	}
}

// proof is a valid proof for POST tokenURL signed with alg's key, after
// mod has changed its header and claims.
func (f *dpopFixture) proof(t testing.TB, alg jose.SignatureAlgorithm, mod func(h, c map[string]any)) string {
	t.Helper()
	key := dpopKey(t, alg)
	h := map[string]any{"typ": "dpop+jwt", "alg": string(alg), "jwk": jwkJSON(t, key.Public())}
	c := map[string]any{"jti": rand.Text(), "htm": http.MethodPost, "htu": tokenURL, "iat": f.clock.Now().Unix()}
	if mod != nil {
		mod(h, c)
	}
	return signJWS(t, string(alg), key, h, c)
}

// part replaces the i-th segment of a compact JWS.
func part(jws string, i int, s string) string {
	parts := strings.Split(jws, ".")
	parts[i] = s
	return strings.Join(parts, ".")
}

func dpopRequest(method string, proofs ...string) *http.Request {
	r := httptest.NewRequest(method, tokenURL, nil)
	for _, p := range proofs {
		r.Header.Add("DPoP", p)
	}
	return r
}

// outcome describes Verify's result in one line: "accepted", "no
// proof", or the *Error's code and description.
func outcome(p *DPoPProof, err error) string {
	var e *Error
	switch {
	case err == nil && p != nil && ValidJKT(p.JKT):
		return "accepted"
	case err == nil && p == nil:
		return "no proof"
	case errors.As(err, &e) && p == nil:
		return e.Code + ": " + e.Description
	}
	return fmt.Sprintf("unexpected: proof %+v, error %v", p, err)
}

// accessHash is the ath of token, computed as RFC 9449 §4.2 says.
func accessHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func TestDPoPVerify(t *testing.T) {
	f := newDPoPFixture(t)
	now := f.clock.Now()
	set := func(name string, v any) func(h, c map[string]any) {
		return func(h, c map[string]any) { c[name] = v }
	}
	drop := func(name string) func(h, c map[string]any) {
		return func(h, c map[string]any) { delete(c, name) }
	}
	header := func(name string, v any) func(h, c map[string]any) {
		return func(h, c map[string]any) { h[name] = v }
	}
	es := func(mod func(h, c map[string]any)) string { return f.proof(t, jose.ES256, mod) }

	stranger, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	// hugeRSA is a public key with an 8200-bit modulus; no private key
	// is needed, since the size is refused before the signature is
	// checked.
	hugeN := new(big.Int).SetBit(big.NewInt(1), 8199, 1)
	hugeRSA := &rsa.PublicKey{N: hugeN.Add(hugeN, big.NewInt(1)), E: 65537}
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte("a shared secret is not a proof of possession")
	const token = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"

	tests := []struct {
		name  string
		req   *http.Request
		token string
		want  string
	}{
		// Keys of every accepted algorithm.
		{"ES256", dpopRequest("POST", f.proof(t, jose.ES256, nil)), "", "accepted"},
		{"ES384", dpopRequest("POST", f.proof(t, jose.ES384, nil)), "", "accepted"},
		{"EdDSA", dpopRequest("POST", f.proof(t, jose.EdDSA, nil)), "", "accepted"},
		{"PS256", dpopRequest("POST", f.proof(t, jose.PS256, nil)), "", "accepted"},
		{"RS256", dpopRequest("POST", f.proof(t, jose.RS256, nil)), "", "accepted"},
		{"no DPoP header", dpopRequest("POST"), "", "no proof"},

		// §4.3 item 1, and the size bound.
		{"two DPoP headers", dpopRequest("POST", es(nil), es(nil)), "", "more than one DPoP header field"},
		{"empty header", dpopRequest("POST", ""), "", "DPoP header field is empty"},
		{"oversized header", dpopRequest("POST", strings.Repeat("a", 8<<10+1)), "", "larger than 8192 bytes"},
		{"largest header size still parsed", dpopRequest("POST", strings.Repeat("a", 8<<10)), "", "not a JWT in compact serialization"},

		// §4.3 item 2: a JWS in compact serialization.
		{"JWE", dpopRequest("POST", "eyJhbGciOiJSU0EtT0FFUCJ9.a.b.c.d"), "", "not an encrypted one"},
		{"JSON serialization", dpopRequest("POST", `{"payload":"e30","protected":"e30","signature":""}`), "", "not a JWT in compact serialization"},
		{"header not JSON", dpopRequest("POST", "bm90IGpzb24.e30.c2ln"), "", "header is not a base64url-encoded JSON object"},
		{"payload not base64url", dpopRequest("POST", part(es(nil), 1, "e30!")), "", "not a well-formed JWS"},
		{"signature not base64url", dpopRequest("POST", part(es(nil), 2, "c2ln!")), "", "not a well-formed JWS"},
		{"no signature", dpopRequest("POST", part(es(nil), 2, "")), "", "signature does not verify"},

		// §4.3 item 4: typ.
		{"typ JWT", dpopRequest("POST", es(header("typ", "JWT"))), "", "typ must be dpop+jwt"},
		{"typ in capitals", dpopRequest("POST", es(header("typ", "DPOP+JWT"))), "", "typ must be dpop+jwt"},
		{"no typ", dpopRequest("POST", es(func(h, c map[string]any) { delete(h, "typ") })), "", "typ must be dpop+jwt"},

		// §4.3 item 5: alg.
		{"alg none", dpopRequest("POST", part(es(header("alg", "none")), 2, "")), "", "alg none is refused"},
		{"HS256 with an oct key", dpopRequest("POST", signJWS(t, "HS256", secret,
			map[string]any{"typ": "dpop+jwt", "alg": "HS256", "jwk": map[string]any{"kty": "oct", "k": base64.RawURLEncoding.EncodeToString(secret)}},
			map[string]any{"jti": "hs", "htm": "POST", "htu": tokenURL, "iat": now.Unix()})), "", "alg HS256 is refused"},
		{"alg ES512", dpopRequest("POST", es(header("alg", "ES512"))), "", "alg must be one of ES256, ES384, EdDSA, PS256, RS256"},
		{"no alg", dpopRequest("POST", es(func(h, c map[string]any) { delete(h, "alg") })), "", "alg must be one of"},

		// No JWS extensions.
		{"b64 false", dpopRequest("POST", es(header("b64", false))), "", "must not carry a b64 header"},
		{"crit", dpopRequest("POST", es(func(h, c map[string]any) { h["crit"] = []string{"exp"}; h["exp"] = 1 })), "", "crit header names extensions"},

		// §4.2, §4.3 items 6 and 7: jwk, public, of alg's kind.
		{"no jwk", dpopRequest("POST", es(func(h, c map[string]any) { delete(h, "jwk") })), "", "has no jwk header"},
		{"jwk not an object", dpopRequest("POST", es(header("jwk", "key"))), "", "jwk is not a JSON object"},
		{"private key in jwk", dpopRequest("POST", es(header("jwk", jwkJSON(t, dpopKey(t, jose.ES256))))), "", "jwk holds a private key"},
		{"private RSA key in jwk", dpopRequest("POST", f.proof(t, jose.RS256, header("jwk", jwkJSON(t, dpopKey(t, jose.RS256))))), "", "jwk holds a private key"},
		{"symmetric key in jwk", dpopRequest("POST", es(header("jwk", map[string]any{"kty": "oct", "k": "c2VjcmV0"}))), "", "jwk is a symmetric key"},
		{"EC point not on the curve", dpopRequest("POST", es(header("jwk", map[string]any{
			"kty": "EC", "crv": "P-256",
			"x": base64.RawURLEncoding.EncodeToString(make([]byte, 32)), "y": base64.RawURLEncoding.EncodeToString(make([]byte, 32)),
		}))), "", "jwk is not a valid public key"},
		{"ES256 with a P-384 key", dpopRequest("POST", f.proof(t, jose.ES384, header("alg", "ES256"))), "", "jwk is not a key for alg ES256"},
		{"EdDSA with an EC key", dpopRequest("POST", es(header("alg", "EdDSA"))), "", "jwk is not a key for alg EdDSA"},
		{"RS256 with a 1024-bit key", dpopRequest("POST", signJWS(t, "RS256", weak,
			map[string]any{"typ": "dpop+jwt", "alg": "RS256", "jwk": jwkJSON(t, weak.Public())},
			map[string]any{"jti": "weak", "htm": "POST", "htu": tokenURL, "iat": now.Unix()})), "", "RSA key of 1024 bits; at least 2048 are required"},
		// go-jose reads no RSA key above 4096 bits (MaxRSAModulusBits):
		// verifying costs the square of the modulus's size, and an 8 KiB
		// proof could otherwise carry one of 20,000 bits, from anyone.
		{"RS256 with an 8200-bit key", dpopRequest("POST", signJWS(t, "RS256", weak,
			map[string]any{"typ": "dpop+jwt", "alg": "RS256", "jwk": jwkJSON(t, hugeRSA)},
			map[string]any{"jti": "huge", "htm": "POST", "htu": tokenURL, "iat": now.Unix()})), "", "jwk is not a valid public key"},
		{"signed by another key than jwk", dpopRequest("POST", es(header("jwk", jwkJSON(t, stranger.Public())))), "", "signature does not verify with its jwk"},

		// §4.3 item 3: the required claims, of the right JSON types.
		{"no jti", dpopRequest("POST", es(drop("jti"))), "", "has no jti claim"},
		{"no htm", dpopRequest("POST", es(drop("htm"))), "", "has no htm claim"},
		{"no htu", dpopRequest("POST", es(drop("htu"))), "", "has no htu claim"},
		{"no iat", dpopRequest("POST", es(drop("iat"))), "", "has no iat claim"},
		{"jti a number", dpopRequest("POST", es(set("jti", 7))), "", "jti claim must be a string"},
		{"htm null", dpopRequest("POST", es(set("htm", nil))), "", "htm claim must be a string"},
		{"htu an array", dpopRequest("POST", es(set("htu", []string{tokenURL}))), "", "htu claim must be a string"},
		{"iat a string", dpopRequest("POST", es(set("iat", fmt.Sprint(now.Unix())))), "", "iat claim must be a number"},
		{"claims not an object", dpopRequest("POST", signJWS(t, "ES256", dpopKey(t, jose.ES256),
			map[string]any{"typ": "dpop+jwt", "alg": "ES256", "jwk": jwkJSON(t, dpopKey(t, jose.ES256).Public())}, nil)), "", "payload is not a JSON object of claims"},
		{"claim names are case-sensitive", dpopRequest("POST", es(func(h, c map[string]any) { c["JTI"] = c["jti"]; delete(c, "jti") })), "", "has no jti claim"},
		{"empty jti", dpopRequest("POST", es(set("jti", ""))), "", "jti is empty"},
		{"jti of 256 bytes", dpopRequest("POST", es(set("jti", strings.Repeat("j", 256)))), "", "accepted"},
		{"jti of 257 bytes", dpopRequest("POST", es(set("jti", strings.Repeat("j", 257)))), "", "jti is longer than 256 bytes"},
		{"NUL in jti", dpopRequest("POST", es(set("jti", "a\x00b"))), "", "jti contains a NUL character"},

		// §4.3 item 8: htm.
		{"htm GET on a POST", dpopRequest("POST", es(set("htm", "GET"))), "", "htm does not match the request method POST"},
		{"htm in lower case", dpopRequest("POST", es(set("htm", "post"))), "", "htm does not match the request method POST"},
		{"htm GET on a GET", dpopRequest("GET", es(set("htm", "GET"))), "", "accepted"},

		// §4.3 item 9: htu, normalised, without query and fragment.
		{"htu another endpoint", dpopRequest("POST", es(set("htu", issuer+"/par"))), "", "htu does not match " + tokenURL},
		{"htu another host", dpopRequest("POST", es(set("htu", "https://id.example.com/token"))), "", "htu does not match"},
		{"htu http", dpopRequest("POST", es(set("htu", "http://id.example.no/token"))), "", "htu does not match"},
		{"htu another port", dpopRequest("POST", es(set("htu", "https://id.example.no:8443/token"))), "", "htu does not match"},
		{"htu with a trailing slash", dpopRequest("POST", es(set("htu", tokenURL+"/"))), "", "htu does not match"},
		{"htu relative", dpopRequest("POST", es(set("htu", "/token"))), "", "htu is not an absolute http or https URI"},
		{"htu not http", dpopRequest("POST", es(set("htu", "ftp://id.example.no/token"))), "", "htu is not an absolute http or https URI"},
		{"htu malformed", dpopRequest("POST", es(set("htu", "https://id.example.no/%zz"))), "", "htu is not an absolute http or https URI"},
		{"htu with query and fragment", dpopRequest("POST", es(set("htu", tokenURL+"?client_id=x#top"))), "", "accepted"},
		{"htu in capitals with the default port", dpopRequest("POST", es(set("htu", "HTTPS://ID.Example.NO:443/token"))), "", "accepted"},
		{"htu with an encoded unreserved character", dpopRequest("POST", es(set("htu", "https://id.example.no/%74oken"))), "", "accepted"},
		{"htu with dot segments", dpopRequest("POST", es(set("htu", "https://id.example.no/a/./../token"))), "", "accepted"},

		// §4.3 item 11: iat within MaxAge (60 s) + Leeway (5 s) before
		// now, at most Leeway after.
		{"iat 64 s ago", dpopRequest("POST", es(set("iat", now.Add(-64*time.Second).Unix()))), "", "accepted"},
		{"iat 65 s ago", dpopRequest("POST", es(set("iat", now.Add(-65*time.Second).Unix()))), "", "too old"},
		{"iat an hour ago", dpopRequest("POST", es(set("iat", now.Add(-time.Hour).Unix()))), "", "too old"},
		{"iat negative", dpopRequest("POST", es(set("iat", -1e300))), "", "too old"},
		{"iat 5 s ahead", dpopRequest("POST", es(set("iat", now.Add(5*time.Second).Unix()))), "", "accepted"},
		{"iat 6 s ahead", dpopRequest("POST", es(set("iat", now.Add(6*time.Second).Unix()))), "", "issued in the future"},
		{"iat far ahead", dpopRequest("POST", es(set("iat", 1e300))), "", "issued in the future"},
		{"iat with a fraction", dpopRequest("POST", es(set("iat", float64(now.Unix())-0.5))), "", "accepted"},

		// §4.3 item 12: ath, with an access token.
		{"ath right", dpopRequest("GET", es(func(h, c map[string]any) { c["htm"] = "GET"; c["ath"] = accessHash(token) })), token, "accepted"},
		{"ath missing", dpopRequest("GET", es(set("htm", "GET"))), token, "has no ath claim"},
		{"ath of another token", dpopRequest("GET", es(func(h, c map[string]any) { c["htm"] = "GET"; c["ath"] = accessHash(token + "x") })), token, "ath does not match the access token"},
		{"ath the token itself", dpopRequest("GET", es(func(h, c map[string]any) { c["htm"] = "GET"; c["ath"] = token })), token, "ath does not match the access token"},
		{"ath not a string", dpopRequest("GET", es(func(h, c map[string]any) { c["htm"] = "GET"; c["ath"] = 1 })), token, "ath claim must be a string"},
		{"ath without an access token is ignored", dpopRequest("POST", es(set("ath", "anything"))), "", "accepted"},

		// Without Nonces no nonce is required; a proof may carry one
		// anyway, which is not looked at (TestDPoPNonceRequired has the
		// rest).
		{"nonce ignored", dpopRequest("POST", es(set("nonce", "n-0S6_WzA2Mj"))), "", "accepted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := outcome(f.v.Verify(tt.req, tokenURL, tt.token))
			if !strings.Contains(got, tt.want) {
				t.Errorf("Verify: %s, want %q", got, tt.want)
			}
		})
	}
}

// TestDPoPProofFields: a verified proof reports its jti, iat and the
// RFC 7638 thumbprint of its key, computed here by hand: SHA-256 over
// the required members in lexicographic order, no whitespace (§3.2,
// §3.3), base64url without padding.
func TestDPoPProofFields(t *testing.T) {
	f := newDPoPFixture(t)
	key := dpopKey(t, jose.ES256).(*ecdsa.PrivateKey)
	pub, err := key.PublicKey.ECDH()
	if err != nil {
		t.Fatal(err)
	}
	point := pub.Bytes() // 0x04 || x || y (SEC 1 §2.3.3)
	b64 := base64.RawURLEncoding.EncodeToString
	canonical := fmt.Sprintf(`{"crv":"P-256","kty":"EC","x":"%s","y":"%s"}`, b64(point[1:33]), b64(point[33:65]))
	sum := sha256.Sum256([]byte(canonical))
	wantJKT := b64(sum[:])

	iat := f.clock.Now().Add(-10 * time.Second)
	p, err := f.v.Verify(dpopRequest("POST", f.proof(t, jose.ES256, func(h, c map[string]any) {
		c["jti"] = "e1j3V_bKic8-LAEB"
		c["iat"] = iat.Unix()
	})), tokenURL, "")
	if err != nil {
		t.Fatal(err)
	}
	want := DPoPProof{JKT: wantJKT, ID: "e1j3V_bKic8-LAEB", IssuedAt: iat}
	if p.JKT != want.JKT || p.ID != want.ID || !p.IssuedAt.Equal(want.IssuedAt) {
		t.Errorf("proof = %+v, want %+v", *p, want)
	}
}

// RFC 7638 §3.1: the example RSA key and its thumbprint.
const (
	rfc7638Key = `{"kty":"RSA",
 "n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
 "e":"AQAB",
 "alg":"RS256",
 "kid":"2011-04-29"}`
	rfc7638Thumbprint = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
)

func TestJWKThumbprintRFC7638Vector(t *testing.T) {
	var k jose.JSONWebKey
	if err := k.UnmarshalJSON([]byte(rfc7638Key)); err != nil {
		t.Fatal(err)
	}
	got, err := jwkThumbprint(&k)
	if err != nil {
		t.Fatal(err)
	}
	if got != rfc7638Thumbprint {
		t.Errorf("thumbprint = %s, want %s", got, rfc7638Thumbprint)
	}
	if !ValidJKT(got) {
		t.Error("RFC 7638 thumbprint judged malformed")
	}
}

func TestValidJKT(t *testing.T) {
	tests := []struct {
		s    string
		want bool
	}{
		{rfc7638Thumbprint, true},
		{strings.Repeat("A", 43), true},
		{"", false},
		{rfc7638Thumbprint[:42], false},
		{rfc7638Thumbprint + "A", false},
		{rfc7638Thumbprint + "=", false},
		// 43 characters carry 258 bits; the last two must be zero.
		{rfc7638Thumbprint[:42] + "t", false},
		{strings.Replace(rfc7638Thumbprint, "-", "+", 1), false},
		{strings.Replace(rfc7638Thumbprint, "_", "/", 1), false},
		{strings.Repeat("A", 42) + " ", false},
	}
	for _, tt := range tests {
		if got := ValidJKT(tt.s); got != tt.want {
			t.Errorf("ValidJKT(%q) = %v, want %v", tt.s, got, tt.want)
		}
	}
}

// TestDPoPReplay: a proof is accepted once (RFC 9449 §11.1); the jti is
// remembered per key, and only for proofs that pass every other check.
func TestDPoPReplay(t *testing.T) {
	f := newDPoPFixture(t)
	jti := func(id string) func(h, c map[string]any) {
		return func(h, c map[string]any) { c["jti"] = id }
	}
	proof := f.proof(t, jose.ES256, jti("once"))
	steps := []struct {
		name  string
		proof string
		want  string
	}{
		{"first use", proof, "accepted"},
		{"second use", proof, "DPoP proof was already used"},
		{"same jti, new signature", f.proof(t, jose.ES256, jti("once")), "DPoP proof was already used"},
		{"same jti, another key", f.proof(t, jose.EdDSA, jti("once")), "accepted"},
		{"refused proof", f.proof(t, jose.ES256, func(h, c map[string]any) { c["jti"] = "later"; c["htm"] = "PUT" }), "htm does not match"},
		{"its jti is still unused", f.proof(t, jose.ES256, jti("later")), "accepted"},
	}
	for _, s := range steps {
		got := outcome(f.v.Verify(dpopRequest("POST", s.proof), tokenURL, ""))
		if !strings.Contains(got, s.want) {
			t.Errorf("%s: %s, want %q", s.name, got, s.want)
		}
	}
	// Past iat+MaxAge+Leeway the proof is too old before it is a replay.
	f.clock.Add(65 * time.Second)
	if got := outcome(f.v.Verify(dpopRequest("POST", proof), tokenURL, "")); !strings.Contains(got, "too old") {
		t.Errorf("after the window: %s, want too old", got)
	}
}

// TestDPoPBeforeReplayHorizon: with a replay cache that began
// remembering at a restart (flowmem), a proof made before the restart's

// TestDPoPCheckSpendsNothing: Check takes a proof without spending its
// jti, as often as it is asked; Record spends it once.
func TestDPoPCheckSpendsNothing(t *testing.T) {
	f := newDPoPFixture(t)
	proof := f.proof(t, jose.ES256, nil)
	for range 2 {
		if got := outcome(f.v.Check(dpopRequest("POST", proof), tokenURL, "")); got != "accepted" {
			t.Fatalf("Check: %s", got)
		}
	}
	p, err := f.v.Check(dpopRequest("POST", proof), tokenURL, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.v.Record(context.Background(), p); err != nil {
		t.Fatalf("first Record: %v", err)
	}
	if got := outcome(nil, f.v.Record(context.Background(), p)); !strings.Contains(got, "already used") {
		t.Errorf("second Record: %s", got)
	}
	if got := outcome(f.v.Verify(dpopRequest("POST", proof), tokenURL, "")); !strings.Contains(got, "already used") {
		t.Errorf("Verify after Record: %s", got)
	}
}

// second is refused: it could have been used before.
func TestDPoPBeforeReplayHorizon(t *testing.T) {
	f := newDPoPFixture(t)
	restart := t0.Add(-9500 * time.Millisecond) // its second began at t0 − 10 s
	f.v.Replay = flowmem.New(flowmem.Options{Since: restart, Now: f.clock.Now})
	tests := []struct {
		name string
		iat  time.Time
		want string
	}{
		{"issued after the restart", t0, "accepted"},
		{"issued in the restart's second", t0.Add(-10 * time.Second), "accepted"},
		{"issued before the restart", t0.Add(-11 * time.Second), "made before this server restarted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := f.proof(t, jose.ES256, func(h, c map[string]any) { c["iat"] = tt.iat.Unix() })
			got := outcome(f.v.Verify(dpopRequest("POST", p), tokenURL, ""))
			if !strings.Contains(got, tt.want) {
				t.Errorf("Verify: %s, want %q", got, tt.want)
			}
		})
	}
}

// brokenReplay is a replay cache whose store is down.
type brokenReplay struct{}

var _ store.ReplayCache = brokenReplay{}

func (brokenReplay) Remember(context.Context, string, time.Time, time.Time) error {
	return errors.New("database is locked")
}

func (brokenReplay) Remembered(context.Context, string, time.Time) (bool, error) {
	return false, errors.New("database is locked")
}

// TestDPoPInternalErrors: what is wrong with the server, not the proof,
// is an internal error, which never reaches the client as such.
func TestDPoPInternalErrors(t *testing.T) {
	f := newDPoPFixture(t)
	tests := []struct {
		name     string
		v        *DPoPVerifier
		endpoint string
	}{
		{"replay cache down", &DPoPVerifier{Replay: brokenReplay{}, Now: f.clock.Now}, tokenURL},
		{"no replay cache", &DPoPVerifier{Now: f.clock.Now}, tokenURL},
		{"endpoint URL malformed", f.v, "token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := tt.v.Verify(dpopRequest("POST", f.proof(t, jose.ES256, nil)), tt.endpoint, "")
			if p != nil || err == nil || !IsInternal(err) {
				t.Errorf("Verify = %+v, %v; want an internal error", p, err)
			}
		})
	}
}

func TestNormalizeHTU(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://id.example/token", "https://id.example/token"},
		{"HTTPS://ID.Example:443/token", "https://id.example/token"},
		{"https://id.example:/token", "https://id.example/token"},
		{"http://id.example:80/token", "http://id.example/token"},
		{"http://id.example:443/token", "http://id.example:443/token"},
		{"https://id.example:80/token", "https://id.example:80/token"},
		{"https://id.example", "https://id.example/"},
		{"https://id.example?x#y", "https://id.example/"},
		{"https://id.example/token?a=b&c#frag", "https://id.example/token"},
		{"https://id.example/Token", "https://id.example/Token"},
		{"https://id.example/%7e%41%2d", "https://id.example/~A-"},
		{"https://id.example/a%2fb%c3%a6", "https://id.example/a%2Fb%C3%A6"},
		{"https://id.example/a/./b/../../token", "https://id.example/token"},
		{"https://id.example/../token", "https://id.example/token"},
		{"https://id.example/a/%2E%2E/token", "https://id.example/token"},
		{"https://id.example/a//token", "https://id.example/a//token"},
		{"https://[2001:DB8::1]:443/token", "https://[2001:db8::1]/token"},
		{"https://user@id.example/token", "https://user@id.example/token"},
		{"/token", ""},
		{"//id.example/token", ""},
		{"https:///token", ""},
		{"https:id.example", ""},
		{"ftp://id.example/token", ""},
		{"https://id.example/%zz", ""},
		{"https://id.example:port/", ""},
		{"", ""},
	}
	for _, tt := range tests {
		got, _ := normalizeHTU(tt.in)
		if got != tt.want {
			t.Errorf("normalizeHTU(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestDPoPChallenge(t *testing.T) {
	tests := []struct {
		name string
		err  *Error
		want string
	}{
		{"no error", nil, `DPoP algs="ES256 ES384 EdDSA PS256 RS256"`},
		{"error", &Error{Code: CodeInvalidDPoPProof, Description: `DPoP proof "jti" was` + "\n already used\\"},
			`DPoP algs="ES256 ES384 EdDSA PS256 RS256", error="invalid_dpop_proof", error_description="DPoP proof jti was already used"`},
		{"no description", &Error{Code: CodeInvalidToken}, `DPoP algs="ES256 ES384 EdDSA PS256 RS256", error="invalid_token"`},
	}
	for _, tt := range tests {
		if got := DPoPChallenge(tt.err); got != tt.want {
			t.Errorf("%s: DPoPChallenge = %s, want %s", tt.name, got, tt.want)
		}
	}
}

// TestDPoPAlgs: the same asymmetric algorithms as client assertions.
func TestDPoPAlgs(t *testing.T) {
	got := slices.Sorted(slices.Values(DPoPAlgs()))
	want := slices.Sorted(slices.Values(AssertionAlgs()))
	if !slices.Equal(got, want) {
		t.Errorf("DPoPAlgs = %v, want the set %v", got, want)
	}
	keys := slices.Sorted(maps.Keys(dpopKeys))
	if !slices.Equal(got, keys) {
		t.Errorf("DPoPAlgs = %v, but the tests sign with %v", got, keys)
	}
}

// FuzzDPoPProof feeds arbitrary DPoP header values to Verify. It must
// never panic, and must answer a request with a DPoP header with a
// proof or an invalid_dpop_proof error, never an internal one.
//
// Its inputs are JWSs of hundreds of bytes and many tries run a
// signature check, so minimizing a new input can take all of
// -fuzzminimizetime (60 s by default); short runs do more with
// -fuzzminimizetime=5s.
func FuzzDPoPProof(f *testing.F) {
	fx := newDPoPFixture(f)
	const token = "access-token"
	for _, alg := range []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.EdDSA} {
		f.Add(fx.proof(f, alg, nil), "")
	}
	// RSA proofs with the key of RFC 7638 §3.1 and a signature that
	// does not verify: generating an RSA key would hold up every fuzzing
	// worker for seconds.
	for _, alg := range []string{"RS256", "PS256"} {
		sig := make([]byte, 256)
		rand.Read(sig)
		f.Add(part(signJWS(f, "none", nil,
			map[string]any{"typ": "dpop+jwt", "alg": alg, "jwk": json.RawMessage(rfc7638Key)},
			map[string]any{"jti": alg, "htm": "POST", "htu": tokenURL, "iat": t0.Unix()}),
			2, base64.RawURLEncoding.EncodeToString(sig)), "")
	}
	f.Add(fx.proof(f, jose.ES256, func(h, c map[string]any) { c["htm"] = "GET"; c["ath"] = accessHash(token) }), token)
	f.Add(fx.proof(f, jose.ES256, func(h, c map[string]any) { h["alg"] = "none" }), "")
	f.Add(fx.proof(f, jose.ES256, func(h, c map[string]any) { h["jwk"] = jwkJSON(f, dpopKey(f, jose.ES256)) }), "")
	f.Add(signJWS(f, "HS256", []byte("secret"), map[string]any{"typ": "dpop+jwt", "alg": "HS256", "jwk": map[string]any{"kty": "oct", "k": "c2VjcmV0"}},
		map[string]any{"jti": "x", "htm": "POST", "htu": tokenURL, "iat": t0.Unix()}), "")
	f.Add("eyJ0eXAiOiJkcG9wK2p3dCJ9.e30.", "")
	f.Add("eyJhbGciOiJSU0EtT0FFUCJ9.a.b.c.d", "")
	f.Add(`{"payload":"e30","signatures":[]}`, "")
	f.Add("", "")
	f.Add("....", token)
	f.Fuzz(func(t *testing.T, raw, accessToken string) {
		// A new replay cache each time, so that an input does the same
		// on every run, as the fuzzer expects.
		v := &DPoPVerifier{Replay: flowmem.New(flowmem.Options{Since: t0.Add(-time.Hour), Now: fx.clock.Now}), Now: fx.clock.Now}
		r := httptest.NewRequest(http.MethodPost, tokenURL, nil)
		r.Header.Set("DPoP", raw)
		p, err := v.Verify(r, tokenURL, accessToken)
		var e *Error
		if err != nil && (!errors.As(err, &e) || e.Code != CodeInvalidDPoPProof || p != nil) {
			t.Fatalf("Verify(%q) = %+v, %v; want an invalid_dpop_proof error", raw, p, err)
		}
		if err == nil && (p == nil || !ValidJKT(p.JKT)) {
			t.Fatalf("Verify(%q) = %+v, nil; want a proof with a thumbprint", raw, p)
		}
	})
}

// FuzzDPoPClaims feeds arbitrary payloads to the claims parser, which
// FuzzDPoPProof seldom reaches: a mutated proof fails its signature
// first.
func FuzzDPoPClaims(f *testing.F) {
	f.Add([]byte(`{"jti":"e1j3V_bKic8","htm":"POST","htu":"https://id.example.no/token","iat":1795262400}`))
	f.Add([]byte(`{"jti":"a\u0000b","htm":"POST","htu":"x","iat":1.5e9}`))
	f.Add([]byte(`{"jti":null,"htm":1,"htu":[],"iat":"0"}`))
	f.Add([]byte(`{"iat":-1e308}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		c, err := parseDPoPClaims(payload)
		var e *Error
		if err != nil && (!errors.As(err, &e) || e.Code != CodeInvalidDPoPProof) {
			t.Fatalf("parseDPoPClaims(%q): %v; want an invalid_dpop_proof error", payload, err)
		}
		if err == nil && (c.jti == "" || len(c.jti) > maxDPoPJTISize || strings.ContainsRune(c.jti, 0) || c.iat.IsZero()) {
			t.Fatalf("parseDPoPClaims(%q) = %+v; want a usable jti and iat", payload, c)
		}
	})
}

// FuzzNormalizeHTU: normalising is idempotent, and its result is an
// http or https URI without query or fragment.
func FuzzNormalizeHTU(f *testing.F) {
	for _, s := range []string{
		"https://id.example/token", "HTTPS://ID.Example:443/a/./b/../%7e%2f?q#f", "http://[::1]:80",
		"https://user:pass@id.example/", "https://id.example/a%", "//id.example", "https:opaque",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, ok := normalizeHTU(s)
		if !ok {
			return
		}
		again, ok := normalizeHTU(n)
		if !ok || again != n {
			t.Fatalf("normalizeHTU(%q) = %q, but normalizeHTU(%q) = %q, %v", s, n, n, again, ok)
		}
		if !strings.HasPrefix(n, "https://") && !strings.HasPrefix(n, "http://") || strings.ContainsAny(n, "?#") {
			t.Fatalf("normalizeHTU(%q) = %q", s, n)
		}
	})
}
