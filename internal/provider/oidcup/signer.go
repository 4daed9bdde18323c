package oidcup

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"

	"github.com/go-jose/go-jose/v4"
)

// keySigner signs client assertions through a crypto.Signer, so the key
// can live in a hardware module. It implements jose.OpaqueSigner.
type keySigner struct {
	key  crypto.Signer
	alg  jose.SignatureAlgorithm
	pub  jose.JSONWebKey
	rand io.Reader
}

var _ jose.OpaqueSigner = (*keySigner)(nil)

// assertionAlg returns the JWS algorithm for key: want if it fits the
// key, else the key type's default. Only asymmetric algorithms exist
// here (RFC 7523 §3 item 9: a MAC would make the assertion a shared
// secret).
func assertionAlg(key crypto.Signer, want string) (jose.SignatureAlgorithm, error) {
	var fits []jose.SignatureAlgorithm
	switch pub := key.Public().(type) {
	case *ecdsa.PublicKey:
		switch pub.Curve {
		case elliptic.P256():
			fits = []jose.SignatureAlgorithm{jose.ES256}
		case elliptic.P384():
			fits = []jose.SignatureAlgorithm{jose.ES384}
		case elliptic.P521():
			fits = []jose.SignatureAlgorithm{jose.ES512}
		default:
			return "", errors.New("ECDSA key must be on P-256, P-384 or P-521")
		}
	case *rsa.PublicKey:
		if pub.N.BitLen() < 2048 {
			return "", errors.New("RSA key must have at least 2048 bits")
		}
		fits = []jose.SignatureAlgorithm{jose.RS256, jose.PS256}
	case ed25519.PublicKey:
		fits = []jose.SignatureAlgorithm{jose.EdDSA}
	default:
		return "", errors.New("key must be ECDSA, RSA or Ed25519")
	}
	if want == "" {
		return fits[0], nil
	}
	for _, a := range fits {
		if string(a) == want {
			return a, nil
		}
	}
	return "", fmt.Errorf("alg %q does not fit the key", want)
}

func newKeySigner(key crypto.Signer, alg jose.SignatureAlgorithm, kid string, rnd io.Reader) (*keySigner, error) {
	jwk, _, err := publicJWK(key, string(alg), kid)
	if err != nil {
		return nil, err
	}
	return &keySigner{key: key, alg: alg, pub: jwk, rand: rnd}, nil
}

// Public implements jose.OpaqueSigner.
func (s *keySigner) Public() *jose.JSONWebKey {
	k := s.pub
	return &k
}

// Algs implements jose.OpaqueSigner.
func (s *keySigner) Algs() []jose.SignatureAlgorithm { return []jose.SignatureAlgorithm{s.alg} }

// SignPayload implements jose.OpaqueSigner (RFC 7518 §3).
func (s *keySigner) SignPayload(payload []byte, alg jose.SignatureAlgorithm) ([]byte, error) {
	if alg != s.alg {
		return nil, jose.ErrUnsupportedAlgorithm
	}
	var h crypto.Hash
	switch alg {
	case jose.ES256, jose.RS256, jose.PS256:
		h = crypto.SHA256
	case jose.ES384:
		h = crypto.SHA384
	case jose.ES512:
		h = crypto.SHA512
	case jose.EdDSA:
		// Ed25519 signs the message itself (RFC 8037 §3.1).
		return s.key.Sign(s.rand, payload, crypto.Hash(0))
	default:
		return nil, jose.ErrUnsupportedAlgorithm
	}
	d := h.New()
	d.Write(payload)
	digest := d.Sum(nil)
	switch alg {
	case jose.PS256:
		// RFC 7518 §3.5: salt as long as the hash.
		return s.key.Sign(s.rand, digest, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: h})
	case jose.RS256:
		return s.key.Sign(s.rand, digest, h)
	}
	der, err := s.key.Sign(s.rand, digest, h)
	if err != nil {
		return nil, err
	}
	// RFC 7518 §3.4: ECDSA signatures are R || S, each as long as the
	// curve's order, not ASN.1.
	var rs struct{ R, S *big.Int }
	rest, err := asn1.Unmarshal(der, &rs)
	if err != nil || len(rest) != 0 || rs.R == nil || rs.S == nil {
		return nil, errors.New("signer returned a malformed ECDSA signature")
	}
	size := (s.key.Public().(*ecdsa.PublicKey).Curve.Params().BitSize + 7) / 8
	if rs.R.Sign() < 0 || rs.S.Sign() < 0 || rs.R.BitLen() > size*8 || rs.S.BitLen() > size*8 {
		return nil, errors.New("signer returned an out-of-range ECDSA signature")
	}
	out := make([]byte, 2*size)
	rs.R.FillBytes(out[:size])
	rs.S.FillBytes(out[size:])
	return out, nil
}
