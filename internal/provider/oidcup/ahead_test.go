package oidcup

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/assurance"
)

// signedAhead is an upstream that takes pushed requests, and its
// provider "fake" at Varde authenticating with private_key_jwt.
func signedAhead(t *testing.T) (*varde, *fakeUpstream, *Provider) {
	v := newVarde(t)
	f := newFakeUpstream(t, v.clock)
	cfg := f.config(v, "fake")
	cfg.AuthMethod, cfg.ClientSecret, cfg.ClientKey, cfg.UsePAR = AuthPrivateKeyJWT, "", ecKey(t), true
	p := v.add(cfg)
	f.with(func(f *fakeUpstream) { f.assertionKey = &p.ClientJWKS().Keys[0] })
	return v, f, p
}

// waitAhead waits until p holds n assertions signed ahead.
func waitAhead(t *testing.T, p *Provider, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		p.ahead.mu.Lock()
		got, signing := len(p.ahead.ready), p.ahead.signing
		p.ahead.mu.Unlock()
		if got == n && !signing {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d assertions signed ahead, want %d", got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestAssertionsSignedAhead: once Start has sent the browser to the
// upstream, the client assertions of the next requests are signed in
// the background; the token request and the next push each take one,
// each once, and one older than aheadMaxAge is never sent.
func TestAssertionsSignedAhead(t *testing.T) {
	v, f, p := signedAhead(t)
	start := v.startURL("fake", "a", assurance.Substantial, "", "")
	t0 := v.clock.Now()

	// First login: its push signs its own; Start then signs two ahead,
	// and the callback, five seconds on, takes the older.
	b := v.newBrowser()
	callback := b.callbackURL(start)
	waitAhead(t, p, aheadWant)
	v.clock.Add(5 * time.Second)
	if path, body := b.login(callback); path != "/finished" {
		t.Fatalf("first login ended at %s: %.200s", path, body)
	}
	// Second login: its push takes the other; the callback comes later
	// than aheadMaxAge after Start signed the two it leaves, so it
	// signs its own.
	b = v.newBrowser()
	t1 := v.clock.Now()
	callback = b.callbackURL(start)
	waitAhead(t, p, aheadWant)
	v.clock.Add(aheadMaxAge + time.Second)
	t2 := v.clock.Now()
	if path, body := b.login(callback); path != "/finished" {
		t.Fatalf("second login ended at %s: %.200s", path, body)
	}

	var got []string
	jtis := map[any]bool{}
	f.with(func(f *fakeUpstream) {
		for _, c := range f.assertions {
			got = append(got, c["endpoint"].(string)+"@"+time.Unix(int64(c["iat"].(float64)), 0).Sub(t0.Truncate(time.Second)).String())
			jtis[c["jti"]] = true
		}
	})
	want := []string{
		"par@0s", "token@0s", // the first push, and the token request signed ahead at Start
		"par@0s", // the second push, signed ahead at the first Start
		"token@" + t2.Truncate(time.Second).Sub(t0.Truncate(time.Second)).String(), // too old: signed at the callback
	}
	if t1.Sub(t0) != 5*time.Second || len(got) != len(want) {
		t.Fatalf("assertions %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("assertions %v, want %v", got, want)
		}
	}
	if len(jtis) != len(got) {
		t.Errorf("%d distinct jti in %d assertions", len(jtis), len(got))
	}
}

// TestAheadTakenOnce: assertions signed ahead go to one request each,
// however many take at once, and none once it is older than
// aheadMaxAge or dated after now.
func TestAheadTakenOnce(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	var s aheadSet
	if n := s.claim(now); n != aheadWant {
		t.Fatalf("an empty set wants %d, want %d", n, aheadWant)
	}
	if n := s.claim(now); n != 0 {
		t.Fatalf("a set being signed for wants %d more, want 0", n)
	}
	s.release([]signedAssertion{
		{jws: "too-old", at: now.Add(-aheadMaxAge - time.Second)},
		{jws: "a", at: now.Add(-aheadMaxAge)}, {jws: "b", at: now}, {jws: "c", at: now},
		{jws: "future", at: now.Add(time.Second)},
	})
	taken := make(chan string, 8)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if a, ok := s.take(now); ok {
				taken <- a
			}
		})
	}
	wg.Wait()
	close(taken)
	got := map[string]int{}
	for a := range taken {
		got[a]++
	}
	if len(got) != 3 || got["a"] != 1 || got["b"] != 1 || got["c"] != 1 {
		t.Fatalf("taken %v, want a, b and c once each", got)
	}
	if n := s.claim(now); n != aheadWant {
		t.Fatalf("an emptied set wants %d, want %d", n, aheadWant)
	}
}

// TestAheadDatedByTheWallClock: an assertion signed ahead is dated by
// the wall clock its iat and exp are written in, not by the process's
// monotonic clock. On Linux the monotonic clock stands still while the
// host sleeps (a suspended or migrated VM) and does not follow a step
// of the wall clock, so an assertion dated by it could be sent after
// its exp by the eID's clock, or with an iat in what is now the
// future, the two cases usable is there to refuse. Neither can be
// staged in a test, so what is checked is that the date kept has no
// monotonic reading (time.Time.String writes one as "m=±…"), which
// makes every comparison with it one of wall clocks.
func TestAheadDatedByTheWallClock(t *testing.T) {
	_, _, p := signedAhead(t)
	p.now = time.Now
	p.signAhead()
	p.ahead.mu.Lock()
	defer p.ahead.mu.Unlock()
	if len(p.ahead.ready) != aheadWant {
		t.Fatalf("%d assertions signed ahead, want %d", len(p.ahead.ready), aheadWant)
	}
	for _, a := range p.ahead.ready {
		if s := a.at.String(); strings.Contains(s, " m=") {
			t.Errorf("assertion dated %s: a monotonic reading, not the wall clock its claims are in", s)
		}
	}
}
