package oidcup

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/assurance"
	"github.com/varde-eid/varde/internal/sqlitetest"
	"github.com/varde-eid/varde/internal/store"
	"github.com/varde-eid/varde/internal/store/flowmem"
)

// unavailablePage reports whether the answer is the page for a
// store that could not be reached: 503 with Retry-After, with the
// phrases (title, nothing lost, what to do) of its language.
func unavailablePage(resp *http.Response, body string, phrases ...string) bool {
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "30" {
		return false
	}
	for _, p := range phrases {
		if !strings.Contains(body, p) {
			return false
		}
	}
	return true
}

var (
	restartNB = []string{"får ikke tak i opplysningene", "Ingenting er tapt", "start innloggingen på nytt"}
	restartEN = []string{"reach our records", "Nothing was lost", "start the login again"}
)

// A callback whose login state cannot be taken, because another process
// holds the store's lock past the busy timeout, says to start the login
// again in a minute (503), not that Varde failed. Nothing was taken:
// once the store answers, the same callback finishes the login.
func TestCallbackStateStoreUnavailable(t *testing.T) {
	v := newVarde(t)
	f := newFakeUpstream(t, v.clock)
	v.add(f.config(v, "fake"))
	b := newBrowser(t)
	cb := b.callbackURL(v.startURL("fake", "a", assurance.Substantial, "nb", ""))
	release := sqlitetest.LockWrites(t, v.db)
	resp, body := b.get(cb)
	release()
	// The state is not read: the page is in the browser's language
	// (none here, so Norwegian).
	if !unavailablePage(resp, body, restartNB...) {
		t.Errorf("callback with the store locked: %d, Retry-After %q: %.400s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	if n, m := v.fin.counts(); n != 0 || m != 0 {
		t.Errorf("Finish %d, Fail %d times, want neither", n, m)
	}
	if resp, _ := b.get(cb); resp.Request.URL.Path != "/finished" {
		t.Errorf("the same callback once the store answers ended at %s", resp.Request.URL.Path)
	}
}

// A login the broker cannot finish because its store could not be
// reached says so, in the login's language (English here), and to start again: the
// state is used and the code redeemed, so the callback cannot be used
// again.
func TestCallbackFinishStoreUnavailable(t *testing.T) {
	v := newVarde(t)
	f := newFakeUpstream(t, v.clock)
	v.add(f.config(v, "fake"))
	v.fin.mu.Lock()
	v.fin.failFinish = func() error {
		// The broker's write, to a store another process holds locked.
		release := sqlitetest.LockWrites(t, v.db)
		defer release()
		err := v.db.Remember(context.Background(), "finish", time.Now().Add(time.Hour), time.Now())
		if !store.Unavailable(err) {
			t.Errorf("the broker's write with the store locked: %v, want store.ErrUnavailable", err)
		}
		return err
	}
	v.fin.mu.Unlock()
	b := newBrowser(t)
	cb := b.callbackURL(v.startURL("fake", "a", assurance.Substantial, "en", ""))
	resp, body := b.get(cb)
	if !unavailablePage(resp, body, restartEN...) {
		t.Errorf("finish with the store locked: %d, Retry-After %q: %.400s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	v.fin.mu.Lock()
	v.fin.failFinish = nil
	v.fin.mu.Unlock()
	if resp, _ := b.get(cb); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("the used callback again: %d, want 400", resp.StatusCode)
	}
}

// A login that cannot start because its state cannot be stored says to
// try again in a minute (503), in the login's language, and fails
// nothing at the broker: the upstream is not to blame, and the same
// start works once the store answers.
func TestStartStoreUnavailable(t *testing.T) {
	v := newVarde(t)
	f := newFakeUpstream(t, v.clock)
	v.add(f.config(v, "fake"))
	start := v.startURL("fake", "a", assurance.Substantial, "en", "")
	release := sqlitetest.LockWrites(t, v.db)
	resp, body := newBrowser(t).get(start)
	release()
	if !unavailablePage(resp, body, "reach our records", "Nothing was lost", "Try again in a minute") {
		t.Errorf("start with the store locked: %d, Retry-After %q: %.400s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	if n, m := v.fin.counts(); n != 0 || m != 0 {
		t.Errorf("Finish %d, Fail %d times, want neither", n, m)
	}
	loginWorks(t, v, start)
}

// TestStartWhenFlowStateIsFull: a node whose memory for upstream logins
// is full (a flood of starts, which anyone with a login's ID can make;
// ADR 10, 24) tells the person it is busy: 503 "try again in a minute"
// with Retry-After, as the passkey ceremonies say it. It pushes nothing
// to the upstream first (a flood must not become one at the eID), fails
// nothing at the broker (the login is not the person's or the eID's
// failure, and is not over) and neither logs nor audits it, since a
// flood would fill both. Once there is room, the same start works.
func TestStartWhenFlowStateIsFull(t *testing.T) {
	v := newVarde(t)
	v.chal = flowmem.Over(v.db, flowmem.New(flowmem.Options{MaxChallenges: 2, Now: v.clock.Now}))
	f := newFakeUpstream(t, v.clock)
	f.requirePAR = true
	v.add(f.config(v, "fake"))
	// Two starts, left at the upstream, fill it.
	stay := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for i := range 2 {
		resp, err := stay.Get(v.startURL("fake", fmt.Sprint("fill-", i), assurance.Substantial, "en", ""))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("start %d: %d", i, resp.StatusCode)
		}
	}
	pushed, events, logged := f.parCalls.Load(), len(v.auditEvents()), len(v.logs.String())
	start := v.startURL("fake", "a", assurance.Substantial, "en", "")
	resp, body := newBrowser(t).get(start)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "60" ||
		!strings.Contains(body, "It is very busy right now") || !strings.Contains(body, "Try again in a minute") {
		t.Errorf("start with the flow state full: %d, Retry-After %q: %.400s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	if n, m := v.fin.counts(); n != 0 || m != 0 {
		t.Errorf("Finish %d, Fail %d times, want neither", n, m)
	}
	if n := f.parCalls.Load(); n != pushed {
		t.Errorf("%d requests pushed to the upstream for a start that could not be kept", n-pushed)
	}
	if n := len(v.auditEvents()); n != events {
		t.Errorf("%d audit events for a busy node, want none", n-events)
	}
	if more := v.logs.String()[logged:]; strings.Contains(more, "level=WARN") || strings.Contains(more, "level=ERROR") {
		t.Errorf("a busy node logged:\n%s", more)
	}
	v.clock.Add(DefaultLoginTimeout + time.Second)
	loginWorks(t, v, start)
}
