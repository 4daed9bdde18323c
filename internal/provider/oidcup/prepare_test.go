package oidcup

import (
	"context"
	"errors"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/assurance"
	"github.com/varde-eid/varde/internal/pgtest"
	"github.com/varde-eid/varde/internal/provider"
	"github.com/varde-eid/varde/internal/store"
	"github.com/varde-eid/varde/internal/store/sqlstore"
)

// TestMain runs the tests through pgtest, for the nodes over PostgreSQL.
func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// pushingEarly is an upstream that requires PAR, and its provider "fake"
// at Varde with PushEarly, on a single node: its challenge store is a
// pushStore.
func pushingEarly(t *testing.T) (*varde, *fakeUpstream, *Provider) {
	v := newVarde(t)
	v.chal = &pushStore{Challenges: v.db}
	f := newFakeUpstream(t, v.clock)
	f.with(func(f *fakeUpstream) { f.requirePAR = true })
	cfg := f.config(v, "fake")
	cfg.PushEarly = true
	return v, f, v.add(cfg)
}

// TestHintedNotPushedEarly: an upstream that is given login hints
// (ForwardLoginHint) is not pushed a hinted request early, when the
// person may yet log in elsewhere or not at all; it gets the hint with
// the push Start makes once the browser has come for a login there. An
// attempt without a hint is pushed early as before.
func TestHintedNotPushedEarly(t *testing.T) {
	v := newVarde(t)
	f := newFakeUpstream(t, v.clock)
	f.with(func(f *fakeUpstream) { f.requirePAR = true })
	cfg := f.config(v, "fake")
	cfg.PushEarly, cfg.ForwardLoginHint = true, true
	p := v.add(cfg)
	hinted := provider.Attempt{ID: "a-hinted", Locale: "nb", MinLevel: assurance.Substantial, LoginHint: "kari", Hinted: true}
	p.Prepare(t.Context(), hinted)
	// Whatever Prepare would push has been pushed once the early push
	// of an unhinted attempt, prepared after it, is answered.
	plain := provider.Attempt{ID: "a-plain", Locale: "nb", MinLevel: assurance.Substantial, Hinted: true}
	p.Prepare(t.Context(), plain)
	deadline := time.Now().Add(10 * time.Second)
	for f.parCalls.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("Prepare pushed nothing for an attempt without a hint")
		}
		time.Sleep(time.Millisecond)
	}
	p.prep.mu.Lock()
	_, hintedKept := p.prep.m[hinted.ID]
	p.prep.mu.Unlock()
	if hintedKept {
		t.Fatal("a hinted attempt was prepared")
	}
	before := f.parCalls.Load()
	loginWorks(t, v, v.startURL("fake", hinted.ID, hinted.MinLevel, hinted.Locale, hinted.LoginHint))
	if n := f.parCalls.Load() - before; n != 1 {
		t.Errorf("Start pushed %d requests for the hinted attempt, want 1", n)
	}
	f.with(func(f *fakeUpstream) {
		if f.lastAuth.Get("login_hint") != "kari" {
			t.Errorf("the upstream the person logs in with got %v", f.lastAuth)
		}
	})
	if n := f.parCalls.Load(); n != 2 {
		t.Errorf("%d pushed requests in all, want 2: one early without a hint, one at Start with it", n)
	}
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
	a := provider.Attempt{ID: "a1", Locale: "nb", MinLevel: assurance.Substantial, LoginHint: "kari", Hinted: true}

	prepare(a)
	if n := pushes(func() { loginWorks(t, v, start(a)) }); n != 0 {
		t.Errorf("Start pushed %d more requests after an early push", n)
	}
	f.with(func(f *fakeUpstream) {
		// Without ForwardLoginHint the upstream never sees the hint.
		if f.lastAuth.Get("ui_locales") != "nb" || f.lastAuth.Has("login_hint") ||
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
		early := provider.Attempt{ID: "a-" + tc.name, Locale: "nb", MinLevel: assurance.Substantial, LoginHint: "kari", Hinted: true}
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
	old := provider.Attempt{ID: "a-old", Locale: "nb", MinLevel: assurance.Substantial, Hinted: true}
	prepare(old)
	v.clock.Add(maxPreparedAge)
	if n := pushes(func() { loginWorks(t, v, start(old)) }); n != 1 {
		t.Errorf("after %s: Start pushed %d requests, want 1", maxPreparedAge, n)
	}

	// The early push failed: Start pushes again, and the login works.
	failed := provider.Attempt{ID: "a-failed", Locale: "nb", MinLevel: assurance.Substantial, Hinted: true}
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
	slow := provider.Attempt{ID: "a-slow", Locale: "nb", MinLevel: assurance.Substantial, Hinted: true}
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
	// A single node keeps them in memory only.
	if ps := v.chal.(*pushStore); ps.puts.Load() != 0 || ps.takes.Load() != 0 {
		t.Errorf("a single node put %d early pushes in the store and looked for %d there", ps.puts.Load(), ps.takes.Load())
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
		a := provider.Attempt{ID: "a-" + p.cfg.ID, MinLevel: assurance.Substantial, Hinted: true}
		p.Prepare(t.Context(), a)
		loginWorks(t, v, v.startURL(p.cfg.ID, a.ID, a.MinLevel, "", ""))
	}
	if n := f.parCalls.Load(); n != 0 {
		t.Errorf("%d PAR requests, want none", n)
	}
	// Once the upstream's metadata is known, Prepare does not even start.
	front.Prepare(t.Context(), provider.Attempt{ID: "a-front-2", MinLevel: assurance.Substantial, Hinted: true})
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
	p.Prepare(t.Context(), provider.Attempt{ID: "one too many", MinLevel: assurance.Substantial, Hinted: true})
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

// pushStore is a challenge store that counts the early pushes put in it
// and looked for in it (keys under pushedKey), and can fail either; other
// challenges, such as login state, it keeps as the store below does.
type pushStore struct {
	store.Challenges
	failPut, failTake bool
	puts, takes       atomic.Int64
}

func isPushKey(id string) bool { return strings.HasPrefix(id, "upstream-pushed:") }

func (s *pushStore) PutChallenge(ctx context.Context, id string, data []byte, expiresAt time.Time) error {
	if isPushKey(id) {
		s.puts.Add(1)
		if s.failPut {
			return errors.New("store down")
		}
	}
	return s.Challenges.PutChallenge(ctx, id, data, expiresAt)
}

func (s *pushStore) TakeChallenge(ctx context.Context, id string, now time.Time) ([]byte, error) {
	if isPushKey(id) {
		s.takes.Add(1)
		if s.failTake {
			return nil, errors.New("store down")
		}
	}
	return s.Challenges.TakeChallenge(ctx, id, now)
}

// nodes are two Varde nodes, a and b, over one store (Deps.SharedChallenges),
// as nodes over one PostgreSQL database are, with the provider "fake"
// (PushEarly) for an upstream that requires PAR. Both have the same
// configuration, whose callback is node a's: the upstream sends every
// browser back there, and the login state is found in the store
// whichever node's Start put it there.
type nodes struct {
	t      *testing.T
	a, b   *varde
	f      *fakeUpstream
	pa, pb *Provider
}

// newNodes makes a node b beside node a, over db (a's store or another
// handle on its database).
func newNodes(t *testing.T, a *varde, db *sqlstore.DB) *nodes {
	a.shared = true
	b := a.node(db)
	f := newFakeUpstream(t, a.clock)
	f.with(func(f *fakeUpstream) { f.requirePAR = true })
	cfg := f.config(a, "fake")
	cfg.PushEarly = true
	return &nodes{t: t, a: a, b: b, f: f, pa: a.add(cfg), pb: b.add(cfg)}
}

// prepare runs Prepare at p and waits until it is done, stored included;
// it must have pushed once.
func (n *nodes) prepare(p *Provider, a provider.Attempt) {
	n.t.Helper()
	before := n.f.parCalls.Load()
	p.Prepare(n.t.Context(), a)
	p.prep.mu.Lock()
	e := p.prep.m[a.ID]
	p.prep.mu.Unlock()
	if e == nil {
		n.t.Fatal("Prepare kept nothing")
	}
	select {
	case <-e.done:
	case <-time.After(5 * time.Second):
		n.t.Fatal("Prepare did not finish")
	}
	if k := n.f.parCalls.Load() - before; k != 1 {
		n.t.Fatalf("Prepare pushed %d requests, want 1", k)
	}
}

// pushes runs a login for attempt a starting at node v, which must
// work, and returns how many requests it pushed to the upstream.
func (n *nodes) pushes(v *varde, a provider.Attempt) int64 {
	n.t.Helper()
	before := n.f.parCalls.Load()
	loginWorks(n.t, n.a, v.startURL("fake", a.ID, a.MinLevel, a.Locale, a.LoginHint))
	return n.f.parCalls.Load() - before
}

// TestPushEarlyAcrossNodes: a request pushed early at the node the
// relying party pushed to serves the login at the node the browser
// reaches, once; what no longer fits or is too old is pushed afresh. The
// nodes share one handle on a SQLite file (one node per file: the
// handle stands for the shared database), or hold one each on a
// PostgreSQL database.
func TestPushEarlyAcrossNodes(t *testing.T) {
	t.Run("one store", func(t *testing.T) {
		v := newVarde(t)
		pushEarlyAcrossNodes(t, newNodes(t, v, v.db))
	})
	t.Run("postgres", func(t *testing.T) {
		dsn := pgtest.NewDatabase(t)
		open := func() *sqlstore.DB {
			db, err := sqlstore.OpenPostgres(t.Context(), dsn)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return db
		}
		pushEarlyAcrossNodes(t, newNodes(t, newVardeOn(t, open()), open()))
	})
}

func pushEarlyAcrossNodes(t *testing.T, n *nodes) {
	for _, way := range []struct {
		name   string
		at     *Provider
		to, by *varde // the node the browser reaches, the other
	}{
		{"a to b", n.pa, n.b, n.a},
		{"b to a", n.pb, n.a, n.b},
	} {
		a := provider.Attempt{ID: "a-" + way.name, Locale: "nb", MinLevel: assurance.Substantial, LoginHint: "kari", Hinted: true}
		n.prepare(way.at, a)
		if k := n.pushes(way.to, a); k != 0 {
			t.Errorf("%s: Start pushed %d more requests after an early push at the other node", way.name, k)
		}
		n.f.with(func(f *fakeUpstream) {
			if f.lastAuth.Get("ui_locales") != "nb" || f.lastAuth.Has("login_hint") ||
				f.lastAuth.Get("acr_values") != fakeSubstantial+" "+fakeHigh {
				t.Errorf("%s: the early push asked for %v", way.name, f.lastAuth)
			}
		})
		// Used once: started again at either node, the node that pushed
		// it early too, it is pushed afresh.
		for _, v := range []*varde{way.by, way.to} {
			if k := n.pushes(v, a); k != 1 {
				t.Errorf("%s: started again, Start pushed %d requests, want 1", way.name, k)
			}
		}
	}

	// Used at the node that pushed it early: the other cannot use it
	// after.
	here := provider.Attempt{ID: "a-here", Locale: "nb", MinLevel: assurance.Substantial, Hinted: true}
	n.prepare(n.pa, here)
	if k := n.pushes(n.a, here); k != 0 {
		t.Errorf("Start at the node that pushed early pushed %d requests", k)
	}
	if k := n.pushes(n.b, here); k != 1 {
		t.Errorf("used at node a, then started at node b: %d requests, want 1", k)
	}

	// The attempt changed between Prepare and Start.
	for _, tc := range []struct {
		name   string
		change func(*provider.Attempt)
		param  string
	}{
		{"level", func(a *provider.Attempt) { a.MinLevel = assurance.High }, "acr_values"},
		{"locale", func(a *provider.Attempt) { a.Locale = "en" }, "ui_locales"},
		{"login hint", func(a *provider.Attempt) { a.LoginHint = "ola" }, "login_hint"},
	} {
		early := provider.Attempt{ID: "a-" + tc.name, Locale: "nb", MinLevel: assurance.Substantial, LoginHint: "kari", Hinted: true}
		n.prepare(n.pa, early)
		now := early
		tc.change(&now)
		if k := n.pushes(n.b, now); k != 1 {
			t.Errorf("%s changed: Start pushed %d requests, want 1", tc.name, k)
		}
		want := n.pb.authParams(now, secrets{}).Get(tc.param)
		n.f.with(func(f *fakeUpstream) {
			if got := f.lastAuth.Get(tc.param); got != want {
				t.Errorf("%s changed: the upstream got %s=%q, want %q", tc.name, tc.param, got, want)
			}
		})
	}

	// Too old.
	old := provider.Attempt{ID: "a-old", Locale: "nb", MinLevel: assurance.Substantial, Hinted: true}
	n.prepare(n.pa, old)
	n.a.clock.Add(maxPreparedAge)
	if k := n.pushes(n.b, old); k != 1 {
		t.Errorf("after %s: Start pushed %d requests, want 1", maxPreparedAge, k)
	}
	if got := n.a.reasons(); len(got) != 0 {
		t.Errorf("audited %v", got)
	}
}

// TestPushEarlyStoreFails: a shared store that fails to keep an early
// push, or to give it back, fails no login: Start pushes afresh, at
// either node, and the failure is logged, not audited.
func TestPushEarlyStoreFails(t *testing.T) {
	for _, tc := range []struct {
		name   string
		s      *pushStore
		logged string
	}{
		{"put", &pushStore{failPut: true}, "early push not stored"},
		{"take", &pushStore{failTake: true}, "early push not taken"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := newVarde(t)
			tc.s.Challenges = v.db
			v.chal = tc.s
			n := newNodes(t, v, v.db)
			for _, at := range []struct {
				name string
				v    *varde
			}{{"a", n.a}, {"b", n.b}} {
				a := provider.Attempt{ID: "a-" + at.name, Locale: "nb", MinLevel: assurance.Substantial, Hinted: true}
				n.prepare(n.pa, a)
				if k := n.pushes(at.v, a); k != 1 {
					t.Errorf("Start at node %s pushed %d requests, want 1", at.name, k)
				}
			}
			if tc.s.puts.Load() != 2 {
				t.Errorf("%d early pushes put in the store, want 2", tc.s.puts.Load())
			}
			if got := v.reasons(); len(got) != 0 {
				t.Errorf("audited %v", got)
			}
			if !strings.Contains(v.logs.String(), "level=WARN msg=\""+tc.logged) {
				t.Errorf("no warning %q logged", tc.logged)
			}
		})
	}
}

// TestUnhintedStartAsksNoStore: on nodes over one store, a login whose
// relying party named no provider (not Hinted) cannot have been pushed
// early anywhere, so Start does not look in the store for a push: such
// a login costs the database nothing more.
func TestUnhintedStartAsksNoStore(t *testing.T) {
	v := newVarde(t)
	s := &pushStore{Challenges: v.db}
	v.chal = s
	n := newNodes(t, v, v.db)
	before := n.f.parCalls.Load()
	loginWorks(t, n.a, n.b.startURL("fake", "a-unhinted", assurance.Substantial, "nb", "")+"&unhinted=1")
	if k := n.f.parCalls.Load() - before; k != 1 {
		t.Errorf("Start pushed %d requests, want 1", k)
	}
	if s.takes.Load() != 0 {
		t.Errorf("Start looked in the store %d times for an early push no one asked for", s.takes.Load())
	}
	// A hinted one at the same node does look.
	loginWorks(t, n.a, n.b.startURL("fake", "a-hinted", assurance.Substantial, "nb", ""))
	if s.takes.Load() != 1 {
		t.Errorf("a hinted Start looked in the store %d times, want 1", s.takes.Load())
	}
}

// TestPushEarlyDatedByTheWallClock: how long a request pushed early is
// used is kept by the wall clock, the clock the upstream reads its
// request_uri's expires_in by, not by the process's monotonic clock.
// On Linux the monotonic clock stands still while the host sleeps and
// does not follow a step of the wall clock, so a push kept by it could
// be sent to the upstream after its request_uri expired there, and the
// login fail at the eID. Neither can be staged in a test, so what is
// checked is that the time kept has no monotonic reading
// (time.Time.String writes one as "m=±…"), which makes every comparison
// with it one of wall clocks (as TestAheadDatedByTheWallClock).
func TestPushEarlyDatedByTheWallClock(t *testing.T) {
	_, f, p := pushingEarly(t)
	p.now = time.Now
	a := provider.Attempt{ID: "a-wall", Locale: "nb", MinLevel: assurance.Substantial, Hinted: true}
	p.Prepare(t.Context(), a)
	p.prep.mu.Lock()
	e := p.prep.m[a.ID]
	p.prep.mu.Unlock()
	if e == nil {
		t.Fatal("Prepare kept nothing")
	}
	<-e.done
	if !e.ok || f.parCalls.Load() != 1 {
		t.Fatalf("the early push failed (%d pushed requests)", f.parCalls.Load())
	}
	if s := e.until.String(); strings.Contains(s, " m=") {
		t.Errorf("early push kept until %s: a monotonic reading, not the wall clock the upstream's expires_in is in", s)
	}
}
