package loadgen

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"testing"
)

// BenchmarkLoginCrypto is the public-key work one complete login needs,
// and nothing else: the floor under what `varde bench` can reach. Every
// signature is ECDSA P-256 with SHA-256.
//
//	node:   verifies the client assertion at PAR and at the token
//	        endpoint, and the passkey assertion; signs the ID token.
//	client: signs two client assertions and the passkey assertion (the
//	        authenticator); verifies the ID token.
func BenchmarkLoginCrypto(b *testing.B) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	digest := sha256.Sum256(make([]byte, 600)) // a typical signing input
	sig, err := ecdsa.SignASN1(rand.Reader, key, digest[:])
	if err != nil {
		b.Fatal(err)
	}
	sign := func(b *testing.B) {
		if _, err := ecdsa.SignASN1(rand.Reader, key, digest[:]); err != nil {
			b.Fatal(err)
		}
	}
	verify := func(b *testing.B) {
		if !ecdsa.VerifyASN1(&key.PublicKey, digest[:], sig) {
			b.Fatal("signature does not verify")
		}
	}
	for _, bc := range []struct {
		name           string
		signs, verifys int
	}{
		{"node", 1, 3},
		{"client", 3, 1},
		{"both", 4, 4},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				for range bc.signs {
					sign(b)
				}
				for range bc.verifys {
					verify(b)
				}
			}
		})
	}
}
