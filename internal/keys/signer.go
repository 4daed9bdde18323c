package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Algorithm is the signature algorithm Varde signs with unless a relying
// party registered another: ES256, with an ECDSA P-256 key.
const Algorithm = jose.ES256

// RS256 is the other algorithm Varde signs ID tokens and logout tokens
// with, for relying parties registered for it (OpenID Connect Core
// §15.1: RS256 is mandatory to implement), with an RSA key of at least
// MinRSABits.
const RS256 = jose.RS256

// Algorithms are the algorithms Varde signs with, the default first.
var Algorithms = []jose.SignatureAlgorithm{Algorithm, RS256}

// MinRSABits is the smallest RSA key a Signer takes (NIST SP 800-131A:
// 2048 bits); RSABits is the size Generate makes, for 128-bit security
// (NIST SP 800-57 Part 1 §5.6.1); MaxRSABits the largest it takes: a
// larger key makes every signature take seconds and is refused by some
// relying parties' libraries.
const (
	MinRSABits = 2048
	RSABits    = 3072
	MaxRSABits = 8192
)

// minRSAExponent is the smallest public exponent of an RSA key Varde
// signs with or publishes (FIPS 186-5 §5.4: odd, above 2^16). With a
// small one, such as 3, a relying party whose PKCS #1 v1.5 check is lax
// can be handed a forged signature (Bleichenbacher, 2006).
const minRSAExponent = 1<<16 + 1

// checkRSA says why pub is not an RSA key Varde signs with or publishes.
func checkRSA(pub *rsa.PublicKey) error {
	switch n := pub.N.BitLen(); {
	case n < MinRSABits:
		return fmt.Errorf("an RSA signing key must have at least %d bits, this one has %d", MinRSABits, n)
	case n > MaxRSABits:
		return fmt.Errorf("an RSA signing key may have at most %d bits, this one has %d", MaxRSABits, n)
	}
	if pub.E < minRSAExponent || pub.E%2 == 0 {
		return fmt.Errorf("an RSA signing key must have an odd public exponent of at least %d, as key generators make by default; "+
			"this one has public exponent %d", minRSAExponent, pub.E)
	}
	return nil
}

// Signer signs JWTs with one key, ECDSA P-256 (ES256) or RSA (RS256),
// identified by its RFC 7638 thumbprint.
type Signer struct {
	key  crypto.Signer
	rand io.Reader
	kid  string
	alg  jose.SignatureAlgorithm
	pub  jose.JSONWebKey
	// retired is set once a Set that holds this key as its local one
	// reads that an operator retired it; from then on it signs nothing.
	retired atomic.Bool
	// lapsed is set while a Set that holds this key as its local one
	// sees that its publication ran out (Set.Lapsed).
	lapsed atomic.Bool
	// publication is when the last Publish of a Set that holds this
	// key as its local one runs out, on that Set's clock: from then on
	// the Signer refuses to sign, whether or not the Set has looked.
	publication atomic.Pointer[publication]
}

// publication is until when a key is published, and the clock to
// compare it with.
type publication struct {
	until time.Time
	now   func() time.Time
}

// New wraps key, which must be an ECDSA P-256 crypto.Signer, which signs
// ES256, or an RSA one of MinRSABits to MaxRSABits with a public
// exponent of at least 65537, which signs RS256 (from a
// file, memory or a hardware module). rand feeds the signatures; nil
// means crypto/rand.
func New(key crypto.Signer, rnd io.Reader) (*Signer, error) {
	var alg jose.SignatureAlgorithm
	switch pub := key.Public().(type) {
	case *ecdsa.PublicKey:
		if pub.Curve != elliptic.P256() {
			return nil, errors.New("keys: an ECDSA signing key must be on curve P-256")
		}
		alg = Algorithm
	case *rsa.PublicKey:
		if err := checkRSA(pub); err != nil {
			return nil, fmt.Errorf("keys: %w", err)
		}
		alg = RS256
	default:
		return nil, errors.New("keys: signing key must be ECDSA P-256 or RSA")
	}
	if rnd == nil {
		rnd = rand.Reader
	}
	jwk := jose.JSONWebKey{Key: key.Public(), Algorithm: string(alg), Use: "sig"}
	// RFC 7638 §3: the thumbprint is over the required members only.
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("keys: thumbprint: %w", err)
	}
	jwk.KeyID = base64.RawURLEncoding.EncodeToString(tp)
	return &Signer{key: key, rand: rnd, kid: jwk.KeyID, alg: alg, pub: jwk}, nil
}

// Generate creates a fresh in-memory P-256 key (demo and tests).
func Generate(rnd io.Reader) (*Signer, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rnd)
	if err != nil {
		return nil, fmt.Errorf("keys: generate: %w", err)
	}
	return New(k, rnd)
}

// GenerateRSA creates a fresh in-memory RSA key of RSABits (demo and
// tests): `go test -run '^$' -bench GenerateRSA ./internal/keys/`
// measures how long that takes.
func GenerateRSA(rnd io.Reader) (*Signer, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	k, err := rsa.GenerateKey(rnd, RSABits)
	if err != nil {
		return nil, fmt.Errorf("keys: generate RSA: %w", err)
	}
	return New(k, rnd)
}

// ParsePEM parses the first private key block in raw: an ECDSA P-256
// private key in PKCS #8 ("PRIVATE KEY") or SEC 1 ("EC PRIVATE KEY"), or
// an RSA one in PKCS #8 or PKCS #1 ("RSA PRIVATE KEY"); New says which
// it takes. A
// node reads its key file with config.ReadSecretFile first. An encrypted
// key, or a private key of another type, is refused as such: the file
// is kept safe by its mode, or the key by a hardware module.
func ParsePEM(raw []byte) (*Signer, error) {
	for {
		var b *pem.Block
		b, raw = pem.Decode(raw)
		if b == nil {
			return nil, errors.New("no private key PEM block")
		}
		// RFC 5958 §3 (PKCS #8 encrypted) and RFC 1421 §4.6.1.1 (the
		// Proc-Type header of OpenSSL's older encrypted keys).
		if b.Type == "ENCRYPTED PRIVATE KEY" || strings.Contains(b.Headers["Proc-Type"], "ENCRYPTED") {
			return nil, fmt.Errorf("%s is encrypted: Varde reads an unencrypted key, kept in a file only its user can read (mode 0600)", b.Type)
		}
		var key any
		var err error
		switch b.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(b.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(b.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(b.Bytes)
		default:
			if strings.HasSuffix(b.Type, "PRIVATE KEY") {
				return nil, fmt.Errorf("%s is not a key Varde reads: a signing key is ECDSA P-256 or RSA, "+
					"in a PRIVATE KEY (PKCS #8), EC PRIVATE KEY (SEC 1) or RSA PRIVATE KEY (PKCS #1) PEM block", b.Type)
			}
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", b.Type, err)
		}
		cs, ok := key.(crypto.Signer)
		if !ok {
			return nil, errors.New("key cannot sign")
		}
		return New(cs, nil)
	}
}

// KID returns the key ID: the base64url SHA-256 JWK thumbprint (RFC 7638).
func (s *Signer) KID() string { return s.kid }

// Alg returns the algorithm the key signs with: ES256 or RS256.
func (s *Signer) Alg() jose.SignatureAlgorithm { return s.alg }

// PublicJWK returns the public key as a JWK with kid, alg and use.
func (s *Signer) PublicJWK() jose.JSONWebKey { return s.pub }

// Public implements jose.OpaqueSigner.
func (s *Signer) Public() *jose.JSONWebKey {
	k := s.pub
	return &k
}

// Algs implements jose.OpaqueSigner.
func (s *Signer) Algs() []jose.SignatureAlgorithm { return []jose.SignatureAlgorithm{s.alg} }

// SignPayload implements jose.OpaqueSigner: it asks the crypto.Signer
// for a signature over SHA-256(payload): for ES256 an ASN.1 one, which
// it converts to the fixed-size R || S form JWS requires (RFC 7518
// §3.4); for RS256 an RSASSA-PKCS1-v1_5 one, which JWS takes as it is
// (RFC 7518 §3.3).
func (s *Signer) SignPayload(payload []byte, alg jose.SignatureAlgorithm) ([]byte, error) {
	if alg != s.alg {
		return nil, jose.ErrUnsupportedAlgorithm
	}
	h := crypto.SHA256.New()
	h.Write(payload)
	sig, err := s.key.Sign(s.rand, h.Sum(nil), crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("keys: sign: %w", err)
	}
	if s.alg == RS256 {
		// RFC 8017 §8.2.1: the signature is as long as the modulus.
		if want := s.pub.Key.(*rsa.PublicKey).Size(); len(sig) != want {
			return nil, fmt.Errorf("keys: signer returned an RSA signature of %d bytes, not %d", len(sig), want)
		}
		return sig, nil
	}
	return esSignature(sig)
}

// esSignature converts an ASN.1 ECDSA P-256 signature to R || S.
func esSignature(der []byte) ([]byte, error) {
	var rs struct{ R, S *big.Int }
	rest, err := asn1.Unmarshal(der, &rs)
	if err != nil || len(rest) != 0 || rs.R == nil || rs.S == nil {
		return nil, errors.New("keys: signer returned a malformed ECDSA signature")
	}
	// FIPS 186-5 §6.4.2: r and s are in [1, n-1]. FillBytes would write
	// a negative value's magnitude, and panic on one wider than 32 bytes.
	n := elliptic.P256().Params().N
	if rs.R.Sign() <= 0 || rs.S.Sign() <= 0 || rs.R.Cmp(n) >= 0 || rs.S.Cmp(n) >= 0 {
		return nil, errors.New("keys: signer returned an out-of-range ECDSA signature: r and s must be in [1, n-1] of P-256")
	}
	out := make([]byte, 64)
	rs.R.FillBytes(out[:32])
	rs.S.FillBytes(out[32:])
	return out, nil
}

// SignJWT signs claims (marshalled with encoding/json) as a JWT with
// header typ "JWT" and kid.
func (s *Signer) SignJWT(claims any) (string, error) {
	return s.SignTyped(claims, "JWT")
}

// SignTyped signs claims as a JWS with the given typ header (for example
// "logout+jwt").
// It refuses with ErrRetired once a Set holding s as its local key has
// read that the key was retired: nothing signed with it verifies anywhere;
// and with ErrLapsed once the key's publication by that Set ran out,
// PublishTTL after its last Publish, until a Publish succeeds.
func (s *Signer) SignTyped(claims any, typ string) (string, error) {
	if s.retired.Load() {
		return "", fmt.Errorf("%w (kid %s): give this node a new signing key", ErrRetired, s.kid)
	}
	if p := s.publication.Load(); s.lapsed.Load() || (p != nil && !p.now().Before(p.until)) {
		return "", fmt.Errorf("%w (kid %s): publishing it again failed for longer than the publish TTL; "+
			"other nodes' JWKS no longer list it", ErrLapsed, s.kid)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("keys: marshal claims: %w", err)
	}
	opts := (&jose.SignerOptions{}).WithType(jose.ContentType(typ))
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: s.alg, Key: s}, opts)
	if err != nil {
		return "", fmt.Errorf("keys: %w", err)
	}
	jws, err := sig.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("keys: %w", err)
	}
	return jws.CompactSerialize()
}

var _ jose.OpaqueSigner = (*Signer)(nil)
