package keytest

import (
	"crypto/rand"
	"crypto/rsa"
	"sync"
	"testing"

	"github.com/varde-eid/varde/internal/keys"
)

// rsaKey is the RSA key every node of the test binary signs with.
var rsaKey = sync.OnceValues(func() (*rsa.PrivateKey, error) { return rsa.GenerateKey(rand.Reader, keys.RSABits) })

// RSASigner is a Signer of its own over the test binary's RSA key, for
// one node: a key retired or lapsed in one test is so in that test's
// Signer alone.
func RSASigner(tb testing.TB) *keys.Signer {
	tb.Helper()
	k, err := rsaKey()
	if err != nil {
		tb.Fatal(err)
	}
	s, err := keys.New(k, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}
