package oidcup

import (
	"net/http"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/assurance"
	"github.com/varde-eid/varde/internal/provider"
)

// pushingEarly is an upstream that requires PAR, and its provider "fake"
// at Varde with PushEarly.
func pushingEarly(t *testing.T) (*varde, *fakeUpstream, *Provider) {
	v := newVarde(t)
	f := newFakeUpstream(t, v.clock)
	f.with(func(f *fakeUpstream) { f.requirePAR = true })
	cfg := f.config(v, "fake")
	cfg.PushEarly = true
	return v, f, v.add(cfg)
}

// TestPushEarly: a request pushed early (Prepare) is what Start sends
// the browser with, once; whatever no longer fits, is too old or failed
// is pushed afresh, and the login works either way.
func TestPushEarly(t *testing.T) {
	v, f, p := pushingEarly(t)
	ctx := t.Context()
	// prepare runs Prepare and waits until the upstream has answered it.
	prepare := func(a provider.Attempt) {
		t.Helper()
		before := f.parCalls.Load()
		p.Prepare(ctx, a)
		deadline := time.Now().Add(5 * time.Second)
		for f.parCalls.Load() == before {
			if time.Now().After(deadline) {
				t.Fatal("Prepare pushed nothing")
			}
			time.Sleep(time.Millisecond)
		}
	}
	start := func(a provider.Attempt) string {
		return v.startURL("fake", a.ID, a.MinLevel, a.Locale, a.LoginHint)
	}
	// pushes runs fn and returns how many PAR requests it made.
	pushes := func(fn func()) int64 {
		before := f.parCalls.Load()
		fn()
		return f.parCalls.Load() - before
	}
	a := provider.Attempt{ID: "a1", Locale: "nb", MinLevel: assurance.Substantial, LoginHint: "kari"}

	prepare(a)
	if n := pushes(func() { loginWorks(t, v, start(a)) }); n != 0 {
		t.Errorf("Start pushed %d more requests after an early push", n)
	}
	f.with(func(f *fakeUpstream) {
		if f.lastAuth.Get("ui_locales") != "nb" || f.lastAuth.Get("login_hint") != "kari" ||
			f.lastAuth.Get("acr_values") != fakeSubstantial+" "+fakeHigh {
			t.Errorf("the early push asked for %v", f.lastAuth)
		}
	})
	// Used once: the same attempt started again pushes afresh.
	if n := pushes(func() { loginWorks(t, v, start(a)) }); n != 1 {
		t.Errorf("a second Start pushed %d requests, want 1", n)
	}

	// The attempt changed between Prepare and Start: what was pushed
	// early is not used, and the upstream is asked for what Start wants.
	for _, tc := range []struct {
		name   string
		change func(*provider.Attempt)
		param  string
	}{
		{"level", func(a *provider.Attempt) { a.MinLevel = assurance.High }, "acr_values"},
		{"locale", func(a *provider.Attempt) { a.Locale = "en" }, "ui_locales"},
		{"login hint", func(a *provider.Attempt) { a.LoginHint = "ola" }, "login_hint"},
	} {
		early := provider.Attempt{ID: "a-" + tc.name, Locale: "nb", MinLevel: assurance.Substantial, LoginHint: "kari"}
		prepare(early)
		now := early
		tc.change(&now)
		if n := pushes(func() { loginWorks(t, v, start(now)) }); n != 1 {
			t.Errorf("%s changed: Start pushed %d requests, want 1", tc.name, n)
		}
		want := p.authParams(now, secrets{}).Get(tc.param)
		f.with(func(f *fakeUpstream) {
			if got := f.lastAuth.Get(tc.param); got != want {
				t.Errorf("%s changed: the upstream got %s=%q, want %q", tc.name, tc.param, got, want)
			}
		})
	}

	// Too old: pushed more than maxPreparedAge before the browser came.
	old := provider.Attempt{ID: "a-old", Locale: "nb", MinLevel: assurance.Substantial}
	prepare(old)
	v.clock.Add(maxPreparedAge)
	if n := pushes(func() { loginWorks(t, v, start(old)) }); n != 1 {
		t.Errorf("after %s: Start pushed %d requests, want 1", maxPreparedAge, n)
	}

	// The early push failed: Start pushes again, and the login works.
	failed := provider.Attempt{ID: "a-failed", Locale: "nb", MinLevel: assurance.Substantial}
	f.with(func(f *fakeUpstream) { f.parStatus = http.StatusInternalServerError })
	prepare(failed)
	f.with(func(f *fakeUpstream) { f.parStatus = 0 })
	if n := pushes(func() { loginWorks(t, v, start(failed)) }); n != 1 {
		t.Errorf("after a failed early push: Start pushed %d requests, want 1", n)
	}
	if got := v.reasons(); len(got) != 0 {
		t.Errorf("a failed early push was audited: %v", got)
	}

	// The browser arrives while the early push is under way: Start waits
	// for it rather than pushing twice.
	f.with(func(f *fakeUpstream) { f.parDelay = 200 * time.Millisecond })
	slow := provider.Attempt{ID: "a-slow", Locale: "nb", MinLevel: assurance.Substantial}
	if n := pushes(func() {
		p.Prepare(ctx, slow)
		loginWorks(t, v, start(slow))
	}); n != 1 {
		t.Errorf("Start during an early push: %d requests in all, want 1", n)
	}
	f.with(func(f *fakeUpstream) { f.parDelay = 0 })

	if left := kept(p); left != 0 {
		t.Errorf("%d early pushes kept after their attempts started", left)
	}
}

// TestPushEarlyOff: without PushEarly, or for an upstream whose requests
// are not pushed, Prepare sends nothing, and once the upstream's
// metadata says so it keeps nothing either.
func TestPushEarlyOff(t *testing.T) {
	v := newVarde(t)
	f := newFakeUpstream(t, v.clock)
	off := v.add(f.config(v, "off"))
	cfg := f.config(v, "front")
	cfg.PushEarly = true // but the upstream takes requests in the front channel
	front := v.add(cfg)
	for _, p := range []*Provider{off, front} {
		a := provider.Attempt{ID: "a-" + p.cfg.ID, MinLevel: assurance.Substantial}
		p.Prepare(t.Context(), a)
		loginWorks(t, v, v.startURL(p.cfg.ID, a.ID, a.MinLevel, "", ""))
	}
	if n := f.parCalls.Load(); n != 0 {
		t.Errorf("%d PAR requests, want none", n)
	}
	// Once the upstream's metadata is known, Prepare does not even start.
	front.Prepare(t.Context(), provider.Attempt{ID: "a-front-2", MinLevel: assurance.Substantial})
	if n := kept(front); n != 0 {
		t.Errorf("Prepare for an upstream known not to take pushed requests kept %d entries", n)
	}
}

// TestPreparedBound: no more than maxPrepared early pushes are kept;
// finished ones too old to use make room.
func TestPreparedBound(t *testing.T) {
	v, f, p := pushingEarly(t)
	p.prep.m = map[string]*prepared{}
	for i := range maxPrepared {
		p.prep.m[string(rune(i))] = &prepared{done: make(chan struct{})}
	}
	p.Prepare(t.Context(), provider.Attempt{ID: "one too many", MinLevel: assurance.Substantial})
	if len(p.prep.m) != maxPrepared {
		t.Errorf("%d early pushes kept, want at most %d", len(p.prep.m), maxPrepared)
	}
	loginWorks(t, v, v.startURL("fake", "one too many", assurance.Substantial, "", ""))
	if n := f.parCalls.Load(); n != 1 {
		t.Errorf("%d PAR requests, want only Start's", n)
	}

	now := time.Now()
	var s preparedSet
	s.m = map[string]*prepared{}
	done := make(chan struct{})
	close(done)
	s.m["used-up"] = &prepared{done: done, ok: true, until: now.Add(-time.Second)}
	s.m["failed"] = &prepared{done: done}
	s.m["fresh"] = &prepared{done: done, ok: true, until: now.Add(time.Second)}
	s.m["under way"] = &prepared{done: make(chan struct{})}
	s.sweep(now)
	if _, ok := s.m["fresh"]; !ok || len(s.m) != 2 {
		t.Errorf("after sweep: %v, want fresh and under way", s.m)
	}
	if _, ok := s.m["under way"]; !ok {
		t.Error("sweep dropped an early push under way")
	}
}

// kept is how many early pushes p holds.
func kept(p *Provider) int {
	p.prep.mu.Lock()
	defer p.prep.mu.Unlock()
	return len(p.prep.m)
}
