package oidc

import (
	"sync"
	"time"

	"github.com/varde-eid/varde/internal/keys"
)

// keylessRetryAfter is how long SettleLeftoverEnds leaves an end it
// passed over for want of an RSA key before trying it again: its
// clients may have been registered for ES256 meanwhile, which this node
// can sign. maxKeylessEnds bounds how many such ends a node remembers
// (some 100 bytes each); those beyond are tried, and reported, every
// round, as they were before a node remembered any.
const (
	keylessRetryAfter = maxEndRetryAfter
	maxKeylessEnds    = 10000
)

// keylessEnds remembers, in the node's memory, the session ends it
// passed over because a client in the session wants RS256 ID tokens and
// the node has no RSA key (ErrNoRSAKey, ADR 32): in a cluster where no
// node has the key they stay pending, and every housekeeping round
// would otherwise try each of them again and warn of it. It is
// forgotten when the node's RSA key changes. The zero value is ready to
// use.
type keylessEnds struct {
	mu sync.Mutex
	// signer is the RSA signer the ends were passed over with (nil).
	signer *keys.Signer
	// retry holds, by session ID, when each end is tried again.
	retry map[string]time.Time
}

// startRound forgets every end remembered if the node's RSA signer is
// no longer the one they were passed over with.
func (k *keylessEnds) startRound(signer *keys.Signer) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if signer != k.signer {
		k.signer, k.retry = signer, nil
	}
}

// waiting reports whether the end of session id was passed over and is
// not yet to be tried again at now.
func (k *keylessEnds) waiting(id string, now time.Time) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	at, ok := k.retry[id]
	return ok && now.Before(at)
}

// passOver remembers that the end of session id was passed over at now,
// and reports whether that is news: false for an end remembered
// already, tried again and passed over again.
func (k *keylessEnds) passOver(id string, now time.Time) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, ok := k.retry[id]; ok {
		k.retry[id] = now.Add(keylessRetryAfter)
		return false
	}
	if len(k.retry) >= maxKeylessEnds {
		return true
	}
	if k.retry == nil {
		k.retry = map[string]time.Time{}
	}
	k.retry[id] = now.Add(keylessRetryAfter)
	return true
}

// count is how many ends are remembered.
func (k *keylessEnds) count() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.retry)
}

// forget forgets the end of session id, tried again with another
// outcome than ErrNoRSAKey.
func (k *keylessEnds) forget(id string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.retry, id)
}

// keepOnly forgets the ends not among pending, every end left pending,
// after a round that read them all: those settled, or given up on, by
// another node.
func (k *keylessEnds) keepOnly(pending map[string]bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for id := range k.retry {
		if !pending[id] {
			delete(k.retry, id)
		}
	}
}
