package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"strings"
	"sync"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

func TestSignJWTVerifiesWithPublicJWK(t *testing.T) {
	s, err := Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := s.SignJWT(map[string]any{"sub": "x", "n": 1})
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	h := parsed.Headers[0]
	if h.KeyID != s.KID() || h.Algorithm != "ES256" || h.ExtraHeaders["typ"] != "JWT" {
		t.Fatalf("header = %+v", h)
	}
	jwk := s.PublicJWK()
	var claims struct {
		Sub string `json:"sub"`
	}
	if err := parsed.Claims(jwk.Key, &claims); err != nil || claims.Sub != "x" {
		t.Fatalf("claims %+v, %v", claims, err)
	}
	// A different key must not verify it.
	other, _ := Generate(rand.Reader)
	ojwk := other.PublicJWK()
	if err := parsed.Claims(ojwk.Key, &claims); err == nil {
		t.Fatal("verified with the wrong key")
	}
}

// testRSAKey is one RSA key of MinRSABits for the package's tests,
// made once: a key of RSABits takes a while to make.
var testRSAKey = func() func(t *testing.T) *rsa.PrivateKey {
	var once sync.Once
	var key *rsa.PrivateKey
	var err error
	return func(t *testing.T) *rsa.PrivateKey {
		t.Helper()
		once.Do(func() { key, err = rsa.GenerateKey(rand.Reader, MinRSABits) })
		if err != nil {
			t.Fatal(err)
		}
		return key
	}
}()

// An RSA key signs RS256 (OpenID Connect Core §15.1), verifiable with
// its public JWK, which says alg RS256 and use sig; it signs nothing
// else.
func TestRSASignerSignsRS256(t *testing.T) {
	s, err := New(testRSAKey(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := s.SignTyped(map[string]any{"sub": "x"}, "logout+jwt")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.ES256}); err == nil {
		t.Fatal("an RS256 token parsed as ES256")
	}
	parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	h := parsed.Headers[0]
	if h.KeyID != s.KID() || h.Algorithm != "RS256" || h.ExtraHeaders["typ"] != "logout+jwt" {
		t.Fatalf("header = %+v", h)
	}
	jwk := s.PublicJWK()
	if jwk.Algorithm != "RS256" || jwk.Use != "sig" || jwk.KeyID == "" || !jwk.IsPublic() || s.Alg() != RS256 {
		t.Fatalf("public JWK = %+v, alg %s", jwk, s.Alg())
	}
	var claims struct {
		Sub string `json:"sub"`
	}
	if err := parsed.Claims(jwk.Key, &claims); err != nil || claims.Sub != "x" {
		t.Fatalf("claims %+v, %v", claims, err)
	}
	if _, err := s.SignPayload([]byte("x"), jose.ES256); !errors.Is(err, jose.ErrUnsupportedAlgorithm) {
		t.Fatalf("RSA key asked for ES256: err = %v", err)
	}
	ec, _ := Generate(rand.Reader)
	if _, err := ec.SignPayload([]byte("x"), jose.RS256); !errors.Is(err, jose.ErrUnsupportedAlgorithm) {
		t.Fatalf("EC key asked for RS256: err = %v", err)
	}
}

// BenchmarkGenerateRSA measures what a node that makes its RSA key at
// start (a demo, an issuer on localhost) waits for it.
func BenchmarkGenerateRSA(b *testing.B) {
	for b.Loop() {
		if _, err := GenerateRSA(rand.Reader); err != nil {
			b.Fatal(err)
		}
	}
}

// rsaExponent3Key is an RSA key of MinRSABits whose public exponent is
// 3, which Go's crypto/rsa and x509 accept and no key generator of
// today makes.
func rsaExponent3Key(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	// p ≡ 2 (mod 3), so that 3 is coprime to p-1 and has an inverse.
	prime := func() *big.Int {
		for {
			p, err := rand.Prime(rand.Reader, MinRSABits/2)
			if err != nil {
				t.Fatal(err)
			}
			if new(big.Int).Mod(p, big.NewInt(3)).Int64() == 2 {
				return p
			}
		}
	}
	one := big.NewInt(1)
	for {
		p, q := prime(), prime()
		n := new(big.Int).Mul(p, q)
		if p.Cmp(q) == 0 || n.BitLen() != MinRSABits {
			continue
		}
		phi := new(big.Int).Mul(new(big.Int).Sub(p, one), new(big.Int).Sub(q, one))
		k := &rsa.PrivateKey{PublicKey: rsa.PublicKey{N: n, E: 3}, D: new(big.Int).ModInverse(big.NewInt(3), phi), Primes: []*big.Int{p, q}}
		k.Precompute()
		if err := k.Validate(); err != nil {
			t.Fatal(err)
		}
		return k
	}
}

// publicOnly is a crypto.Signer that holds only a public key, as a
// hardware module presents one: New reads nothing else.
type publicOnly struct{ pub crypto.PublicKey }

func (p publicOnly) Public() crypto.PublicKey { return p.pub }
func (p publicOnly) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, errors.New("public key only")
}

// An RSA key with a small public exponent (FIPS 186-5 §5.4: e > 2^16)
// or a modulus past MaxRSABits is refused: the first leaves relying
// parties whose PKCS #1 v1.5 check is lax open to forged signatures
// (Bleichenbacher's e = 3 attack), the second makes every signature
// take seconds and is refused by some relying parties' libraries.
func TestNewRefusesWeakOrHugeRSAKeys(t *testing.T) {
	huge := new(big.Int).Lsh(big.NewInt(1), MaxRSABits) // MaxRSABits+1 bits
	huge.Add(huge, big.NewInt(1))
	tests := []struct {
		name    string
		key     crypto.Signer
		wantErr string
	}{
		{"exponent 3", rsaExponent3Key(t), "public exponent 3"},
		{"even exponent", publicOnly{&rsa.PublicKey{N: testRSAKey(t).N, E: 65538}}, "public exponent 65538"},
		{"modulus past MaxRSABits", publicOnly{&rsa.PublicKey{N: huge, E: 65537}}, "at most"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if s, err := New(tt.key, nil); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New = %v, %v; want an error saying %q", s, err, tt.wantErr)
			}
		})
	}
	// Through a key file as well.
	pemE3 := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaExponent3Key(t))})
	if _, err := ParsePEM(pemE3); err == nil || !strings.Contains(err.Error(), "public exponent 3") {
		t.Fatalf("ParsePEM of an e = 3 key: %v", err)
	}
}

func TestKIDIsRFC7638Thumbprint(t *testing.T) {
	// RFC 7638 §3.1 over an EC key: the thumbprint covers crv, kty, x, y
	// only, so adding kid/alg/use must not change it.
	s, _ := Generate(rand.Reader)
	jwk := s.PublicJWK()
	raw, _ := json.Marshal(jwk)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	if m["kid"] != s.KID() || m["alg"] != "ES256" || m["use"] != "sig" || m["d"] != nil {
		t.Fatalf("jwk = %s", raw)
	}
	bare := jose.JSONWebKey{Key: jwk.Key}
	tp, _ := bare.Thumbprint(crypto.SHA256)
	if base64.RawURLEncoding.EncodeToString(tp) != s.KID() {
		t.Fatalf("kid %q", s.KID())
	}
}

func TestParsePEM(t *testing.T) {
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	_, edk, _ := ed25519.GenerateKey(rand.Reader)
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(p256)
	sec1, _ := x509.MarshalECPrivateKey(p256)
	pkcs8384, _ := x509.MarshalPKCS8PrivateKey(p384)
	pkcs8ed, _ := x509.MarshalPKCS8PrivateKey(edk)
	rsaKey := testRSAKey(t)
	pkcs1rsa := x509.MarshalPKCS1PrivateKey(rsaKey)
	pkcs8rsa, _ := x509.MarshalPKCS8PrivateKey(rsaKey)
	rsa1024, _ := rsa.GenerateKey(rand.Reader, 1024)
	pkcs1small := x509.MarshalPKCS1PrivateKey(rsa1024)
	legacy := map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-256-CBC,00112233445566778899AABBCCDDEEFF"}
	tests := []struct {
		name, typ string
		headers   map[string]string
		der       []byte
		want      crypto.Signer
		wantErr   string
	}{
		{"pkcs8 p256", "PRIVATE KEY", nil, pkcs8, p256, ""},
		{"sec1 p256", "EC PRIVATE KEY", nil, sec1, p256, ""},
		{"pkcs1 rsa", "RSA PRIVATE KEY", nil, pkcs1rsa, rsaKey, ""},
		{"pkcs8 rsa", "PRIVATE KEY", nil, pkcs8rsa, rsaKey, ""},
		{"rsa 1024 refused", "RSA PRIVATE KEY", nil, pkcs1small, nil, "at least 2048 bits, this one has 1024"},
		{"p384 refused", "PRIVATE KEY", nil, pkcs8384, nil, "P-256"},
		{"ed25519 refused", "PRIVATE KEY", nil, pkcs8ed, nil, "P-256 or RSA"},
		{"no key block", "CERTIFICATE", nil, []byte{1, 2}, nil, "no private key"},
		{"garbage", "PRIVATE KEY", nil, []byte{1, 2, 3}, nil, "parse"},
		{"encrypted pkcs8 refused", "ENCRYPTED PRIVATE KEY", nil, []byte{1, 2, 3}, nil, "ENCRYPTED PRIVATE KEY is encrypted"},
		{"encrypted sec1 refused", "EC PRIVATE KEY", legacy, []byte{1, 2, 3}, nil, "EC PRIVATE KEY is encrypted"},
		{"garbage rsa", "RSA PRIVATE KEY", nil, []byte{1, 2, 3}, nil, "parse RSA PRIVATE KEY"},
		{"dsa refused", "DSA PRIVATE KEY", nil, []byte{1, 2, 3}, nil, "DSA PRIVATE KEY is not a key Varde reads"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParsePEM(pem.EncodeToMemory(&pem.Block{Type: tt.typ, Headers: tt.headers, Bytes: tt.der}))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want, _ := New(tt.want, nil)
			if s.KID() != want.KID() || s.Alg() != want.Alg() {
				t.Fatalf("kid %s != %s", s.KID(), want.KID())
			}
		})
	}
}

// The signer must only use the crypto.Signer interface, so a key in a
// hardware module works: wrap the key so nothing else is reachable.
type onlySigner struct{ k *ecdsa.PrivateKey }

func (o onlySigner) Public() crypto.PublicKey { return o.k.Public() }
func (o onlySigner) Sign(r io.Reader, d []byte, opts crypto.SignerOpts) ([]byte, error) {
	return o.k.Sign(r, d, opts)
}

func TestOpaqueCryptoSigner(t *testing.T) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s, err := New(onlySigner{k}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 20 { // R and S with leading zero bytes must still be 32 bytes each
		tok, err := s.SignTyped(map[string]string{"a": "b"}, "logout+jwt")
		if err != nil {
			t.Fatal(err)
		}
		parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.ES256})
		if err != nil {
			t.Fatal(err)
		}
		if parsed.Headers[0].ExtraHeaders["typ"] != "logout+jwt" {
			t.Fatalf("typ = %v", parsed.Headers[0].ExtraHeaders["typ"])
		}
		var out map[string]string
		if err := parsed.Claims(&k.PublicKey, &out); err != nil || out["a"] != "b" {
			t.Fatalf("verify: %v %v", out, err)
		}
	}
	if _, err := s.SignPayload([]byte("x"), jose.ES384); err == nil {
		t.Fatal("ES384 accepted")
	}
}

// derSigner is a faulty crypto.Signer (a hardware module's driver, say)
// that returns the ASN.1 signature it was given, whatever it is asked.
type derSigner struct {
	pub crypto.PublicKey
	der []byte
}

func (d derSigner) Public() crypto.PublicKey { return d.pub }
func (d derSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return d.der, nil
}

// TestSignRefusesOutOfRangeSignature: r and s outside [1, n-1] are
// refused with an error, not written as their magnitude into a JWS
// nobody can verify, nor allowed to panic.
func TestSignRefusesOutOfRangeSignature(t *testing.T) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	n := elliptic.P256().Params().N
	one := big.NewInt(1)
	wide := new(big.Int).Lsh(one, 256)
	for _, tc := range []struct {
		name string
		r, s *big.Int
	}{
		{"negative r", big.NewInt(-5), one},
		{"negative s", one, new(big.Int).Neg(n)},
		{"zero r", big.NewInt(0), one},
		{"zero s", one, big.NewInt(0)},
		{"r equal to n", n, one},
		{"s equal to n", one, n},
		{"r wider than 32 bytes", wide, one},
		{"s wider than 32 bytes", one, wide},
	} {
		t.Run(tc.name, func(t *testing.T) {
			der, err := asn1.Marshal(struct{ R, S *big.Int }{tc.r, tc.s})
			if err != nil {
				t.Fatal(err)
			}
			s, err := New(derSigner{pub: k.Public(), der: der}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if sig, err := s.SignPayload([]byte("x"), jose.ES256); err == nil || !strings.Contains(err.Error(), "out-of-range") {
				t.Errorf("SignPayload = %x, %v; want an out-of-range error", sig, err)
			}
			if tok, err := s.SignJWT(map[string]string{"a": "b"}); err == nil {
				t.Errorf("SignJWT = %s, want an error", tok)
			}
		})
	}
}
