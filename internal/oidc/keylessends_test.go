package oidc

import (
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/keys"
)

// TestKeylessEndsBounded: a node remembers at most maxKeylessEnds ends
// passed over for want of an RSA key; one more is reported as news
// every time, as before a node remembered any, rather than grow its
// memory without end. All are forgotten when the node's RSA key
// changes, and each is tried again after keylessRetryAfter.
func TestKeylessEndsBounded(t *testing.T) {
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	var k keylessEnds
	k.startRound(nil)
	for i := range maxKeylessEnds {
		if !k.passOver(fmt.Sprintf("s-%d", i), now) {
			t.Fatalf("end %d passed over the first time: not news", i)
		}
	}
	if k.passOver("s-0", now) {
		t.Error("an end remembered, passed over again: news")
	}
	for range 2 {
		if !k.passOver("s-more", now) {
			t.Error("an end beyond the bound, passed over again: not news, want reported each time")
		}
	}
	if n := k.count(); n != maxKeylessEnds {
		t.Errorf("%d ends remembered, want %d", n, maxKeylessEnds)
	}
	if !k.waiting("s-1", now.Add(keylessRetryAfter-time.Second)) || k.waiting("s-1", now.Add(keylessRetryAfter)) {
		t.Errorf("an end remembered is to wait until %v, and no longer", keylessRetryAfter)
	}
	if k.waiting("s-more", now) {
		t.Error("an end beyond the bound waits")
	}
	k.startRound(nil)
	if n := k.count(); n != maxKeylessEnds {
		t.Errorf("a round with the same key: %d ends remembered, want %d", n, maxKeylessEnds)
	}
	key, err := rsa.GenerateKey(rand.Reader, keys.MinRSABits)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := keys.New(key, nil)
	if err != nil {
		t.Fatal(err)
	}
	k.startRound(signer)
	if n := k.count(); n != 0 || k.waiting("s-1", now) {
		t.Errorf("after the node's RSA key changed: %d ends remembered, want none", n)
	}
}
