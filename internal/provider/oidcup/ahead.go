package oidcup

import (
	"slices"
	"sync"
	"time"
)

// Client assertions signed ahead. With private_key_jwt every request to
// the upstream's PAR and token endpoints carries a client assertion
// (RFC 7523), and two of them are on the person's path: the pushed
// request that the authorization endpoint waits for (Prepare, or Start
// itself), and the callback's token request. Each signature is
// tens of microseconds, more with a key in a hardware module.
//
// So once Start has sent the browser to the upstream, while the person
// is there and this login asks nothing of the node, it signs up to
// aheadWant assertions in the background (signAhead), and the next
// requests take them (takeAhead): this login's token request, and the
// next login's push. Each is taken once, so each jti is still used once
// (RFC 7523 §3 item 7), and an assertion is taken only while it is at
// most aheadMaxAge old: it then has most of its minute left, for the
// request's own time and a clock at the upstream that runs ahead. One
// that is older is dropped, and the request signs one as before.
//
// They are kept in this node's memory only, never in the store (where a
// shared store would hold a credential for the upstream's token
// endpoint) and never logged. An assertion names no login, so one
// signed at one login's Start serves whichever request comes next: on a
// busy node, the callback of a person who took a minute at the upstream
// takes one that a later login's Start signed. Where Starts are more
// than aheadMaxAge apart, each signs aheadWant that are never sent.
const (
	// aheadWant is how many assertions Start keeps signed ahead: one for
	// its login's token request and one for the next login's push.
	aheadWant = 2
	// aheadMaxAge is how long after it was signed an assertion signed
	// ahead is used: at most a sixth of assertionLifetime, so that more
	// than Timeouts.Token (by default) and the upstream's usual clock
	// leeway are left of it.
	aheadMaxAge = assertionLifetime / 6
)

// signedAssertion is a client assertion and when it was signed (its
// iat), by the wall clock alone: the upstream reads iat and exp by its
// own wall clock, while the process's monotonic clock, which Go would
// otherwise compare by, stands still while the host sleeps and does
// not follow a step of the wall clock. Dated by it, an assertion
// signed before a suspend or a correction of the clock could be sent
// after its exp, or with an iat in what is now the future.
type signedAssertion struct {
	jws string
	at  time.Time
}

// aheadSet holds one provider's assertions signed ahead, oldest first.
type aheadSet struct {
	mu      sync.Mutex
	ready   []signedAssertion
	signing bool
}

// usable says whether an assertion signed at `at` may be sent now: not
// signed in what is now the future (the clock went back), and at most
// aheadMaxAge old, by the wall clock (at has no monotonic reading).
func usable(at, now time.Time) bool {
	return !now.Before(at) && now.Sub(at) <= aheadMaxAge
}

// take removes and returns the oldest usable assertion, dropping those
// too old; false if there is none.
func (s *aheadSet) take(now time.Time) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.ready) > 0 {
		a := s.ready[0]
		s.ready[0] = signedAssertion{}
		s.ready = s.ready[1:]
		if usable(a.at, now) {
			return a.jws, true
		}
	}
	return "", false
}

// claim drops the assertions too old and returns how many more are
// wanted, marking the set as being signed for; 0 if none are wanted or
// another signAhead is at it.
func (s *aheadSet) claim(now time.Time) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.signing {
		return 0
	}
	s.ready = slices.DeleteFunc(s.ready, func(a signedAssertion) bool { return !usable(a.at, now) })
	n := aheadWant - len(s.ready)
	if n > 0 {
		s.signing = true
	}
	return max(n, 0)
}

// release ends a claim, keeping what was signed.
func (s *aheadSet) release(signed []signedAssertion) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ready = append(s.ready, signed...)
	s.signing = false
}

// takeAhead returns an assertion signed ahead, if one is usable now.
func (p *Provider) takeAhead() (string, bool) {
	if p.jws == nil {
		return "", false
	}
	return p.ahead.take(p.now())
}

// signAhead signs the assertions Start keeps ahead (private_key_jwt
// only). It runs in the background; a failure is logged at debug level,
// and the requests then sign their own, reporting what fails.
func (p *Provider) signAhead() {
	n := p.ahead.claim(p.now())
	if n == 0 {
		return
	}
	signed := make([]signedAssertion, 0, n)
	for range n {
		at := p.now().Round(0) // the wall clock only (signedAssertion)
		jws, err := p.signAssertion(at)
		if err != nil {
			p.log.Debug("client assertion not signed ahead", "provider", p.cfg.ID, "err", err)
			break
		}
		signed = append(signed, signedAssertion{jws: jws, at: at})
	}
	p.ahead.release(signed)
}
