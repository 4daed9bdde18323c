package oidcup

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// TestCachedPolicy walks one cached value through its life: fetched
// when missing, served while fresh, refreshed when old, refetched on
// demand at most once per interval, served stale while fetches fail,
// and a failing source not asked again until the interval has passed.
func TestCachedPolicy(t *testing.T) {
	var c cached[int]
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const maxAge, interval = time.Hour, 30 * time.Second
	fetches, next, failing := 0, 0, false
	fetch := func() (int, error) {
		fetches++
		if failing {
			return 0, errors.New("down")
		}
		next++
		return next, nil
	}
	for _, step := range []struct {
		name       string
		at         time.Duration
		force      bool
		invalidate bool
		failing    bool
		wantVal    int
		usable     bool
		wantErr    bool
		fetches    int
	}{
		{name: "first use fetches", at: 0, wantVal: 1, usable: true, fetches: 1},
		{name: "fresh is served", at: time.Minute, wantVal: 1, usable: true, fetches: 1},
		{name: "forced soon after a good unforced fetch", at: 10 * time.Second, force: true, wantVal: 2, usable: true, fetches: 2},
		{name: "forced too soon after a forced fetch", at: 20 * time.Second, force: true, wantVal: 2, usable: true, fetches: 2},
		{name: "forced after the interval", at: 2 * time.Minute, force: true, wantVal: 3, usable: true, fetches: 3},
		{name: "invalidated refetches after the interval", at: 3 * time.Minute, invalidate: true, wantVal: 4, usable: true, fetches: 4},
		{name: "aged out refreshes", at: 3*time.Minute + maxAge, wantVal: 5, usable: true, fetches: 5},
		{name: "aged out while failing serves stale", at: 3*time.Minute + 2*maxAge, failing: true, wantVal: 5, usable: true, wantErr: true, fetches: 6},
		{name: "failing source not asked again at once", at: 3*time.Minute + 2*maxAge + time.Second, failing: true, wantVal: 5, usable: true, wantErr: true, fetches: 6},
		{name: "forced while failing not asked again at once", at: 3*time.Minute + 2*maxAge + 2*time.Second, force: true, failing: true, wantVal: 5, usable: true, wantErr: true, fetches: 6},
		{name: "asked again after the interval", at: 3*time.Minute + 2*maxAge + time.Minute, wantVal: 6, usable: true, fetches: 7},
	} {
		failing = step.failing
		if step.invalidate {
			c.invalidate()
		}
		v, usable, err := c.get(context.Background(), fetchPolicy{now: t0.Add(step.at), maxAge: maxAge, minInterval: interval, force: step.force}, fetch)
		if v != step.wantVal || usable != step.usable || (err != nil) != step.wantErr || fetches != step.fetches {
			t.Fatalf("%s: got %d usable=%v err=%v after %d fetches; want %d usable=%v err=%v after %d",
				step.name, v, usable, err, fetches, step.wantVal, step.usable, step.wantErr, step.fetches)
		}
	}

	// Without any value, a failure is not retried within the interval
	// either: logins fail fast while the upstream is down.
	var empty cached[int]
	failing, fetches = true, 0
	for i, at := range []time.Duration{0, time.Second, interval} {
		_, usable, err := empty.get(context.Background(), fetchPolicy{now: t0.Add(at), maxAge: maxAge, minInterval: interval}, fetch)
		if usable || err == nil || fetches != []int{1, 1, 2}[i] {
			t.Fatalf("empty cache at %v: usable=%v err=%v fetches=%d", at, usable, err, fetches)
		}
	}
}

// TestCachedSourceMoved: a value held from another source than the one
// asked for is fetched at once, even just after a fetch; a failing new
// source is asked again only after the interval, and the old value is
// still served meanwhile.
func TestCachedSourceMoved(t *testing.T) {
	var c cached[string]
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const maxAge, interval = time.Hour, 30 * time.Second
	fetches, failing := 0, false
	for _, step := range []struct {
		name    string
		at      time.Duration
		source  string
		failing bool
		wantVal string
		wantErr bool
		fetches int
	}{
		{name: "first source", at: 0, source: "a", wantVal: "a", fetches: 1},
		{name: "moved just after a fetch", at: time.Second, source: "b", failing: true, wantVal: "a", wantErr: true, fetches: 2},
		{name: "failing new source not asked again at once", at: 2 * time.Second, source: "b", failing: true, wantVal: "a", wantErr: true, fetches: 2},
		{name: "nor within the interval", at: interval, source: "b", failing: true, wantVal: "a", wantErr: true, fetches: 2},
		{name: "asked again after the interval", at: interval + time.Second, source: "b", wantVal: "b", fetches: 3},
		{name: "moved back is fetched at once", at: interval + 2*time.Second, source: "a", wantVal: "a", fetches: 4},
	} {
		failing = step.failing
		v, usable, err := c.get(context.Background(), fetchPolicy{now: t0.Add(step.at), maxAge: maxAge, minInterval: interval, source: step.source}, func() (string, error) {
			fetches++
			if failing {
				return "", errors.New("down")
			}
			return step.source, nil
		})
		if v != step.wantVal || !usable || (err != nil) != step.wantErr || fetches != step.fetches {
			t.Fatalf("%s: got %q usable=%v err=%v after %d fetches; want %q err=%v after %d",
				step.name, v, usable, err, fetches, step.wantVal, step.wantErr, step.fetches)
		}
	}
}

// TestCachedForcedNotGivenOlderFetch: a forced get (a login's refetch on
// a new kid) that waits for a fetch begun before it asked (a health
// probe's) is not given that fetch's value, which may predate a key
// rotation: it fetches itself. Unforced gets share the result as before.
func TestCachedForcedNotGivenOlderFetch(t *testing.T) {
	var c cached[string]
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const maxAge, interval = time.Hour, 30 * time.Second
	if v, _, err := c.get(context.Background(), fetchPolicy{now: t0, maxAge: maxAge, minInterval: interval}, func() (string, error) { return "k1", nil }); v != "k1" || err != nil {
		t.Fatalf("first fetch: %q %v", v, err)
	}
	inProbe, release := make(chan struct{}), make(chan struct{})
	probeDone := make(chan string)
	go func() {
		v, _, _ := c.get(context.Background(), fetchPolicy{now: t0.Add(time.Second), force: true}, func() (string, error) {
			close(inProbe)
			<-release
			return "k1", nil // what the upstream held when the probe asked
		})
		probeDone <- v
	}()
	<-inProbe
	var loginFetches atomic.Int32
	loginDone := make(chan string)
	go func() {
		v, _, _ := c.get(context.Background(), fetchPolicy{now: t0.Add(2 * time.Second), maxAge: maxAge, minInterval: interval, force: true}, func() (string, error) {
			loginFetches.Add(1)
			return "k2", nil // rotated after the probe asked
		})
		loginDone <- v
	}()
	time.Sleep(100 * time.Millisecond) // the login waits for the probe's fetch
	close(release)
	if v := <-probeDone; v != "k1" {
		t.Fatalf("probe got %q", v)
	}
	if v := <-loginDone; v != "k2" || loginFetches.Load() != 1 {
		t.Fatalf("login got %q after %d fetches of its own, want k2 after 1", v, loginFetches.Load())
	}
	// An unforced get shares what a fetch in flight gives.
	inFetch, release2 := make(chan struct{}), make(chan struct{})
	go func() {
		_, _, _ = c.get(context.Background(), fetchPolicy{now: t0.Add(3 * time.Second), force: true}, func() (string, error) {
			close(inFetch)
			<-release2
			return "k3", nil
		})
	}()
	<-inFetch
	c.invalidate()
	sharedDone := make(chan string)
	go func() {
		v, _, _ := c.get(context.Background(), fetchPolicy{now: t0.Add(time.Hour), maxAge: maxAge, minInterval: time.Nanosecond}, func() (string, error) {
			return "own", nil
		})
		sharedDone <- v
	}()
	time.Sleep(100 * time.Millisecond)
	close(release2)
	if v := <-sharedDone; v != "k3" {
		t.Fatalf("unforced get got %q, want the shared k3", v)
	}
}
