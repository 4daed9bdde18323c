package loadgen

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"

	"github.com/descope/virtualwebauthn"
)

// NewCredential returns a software passkey (P-256) whose COSE key is
// well-formed. virtualwebauthn encodes the public key coordinates with
// big.Int.Bytes, which drops leading zero octets, so about one key in 128
// has a 31-byte coordinate; RFC 9053 §7.1.1 says leading zero octets MUST
// be preserved, and Varde rightly refuses such a key. This draws keys until
// both coordinates fill 32 bytes.
func NewCredential() virtualwebauthn.Credential {
	for {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		if len(k.X.Bytes()) != 32 || len(k.Y.Bytes()) != 32 {
			continue
		}
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			panic(err)
		}
		return virtualwebauthn.NewCredentialWithImportedKey(virtualwebauthn.KeyTypeEC2, der)
	}
}
