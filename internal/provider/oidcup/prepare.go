package oidcup

import (
	"context"
	"sync"
	"time"

	"github.com/varde-eid/varde/internal/provider"
)

// Pushing early. When a relying party's pushed request names this
// upstream in provider_hint, the broker calls Prepare, and the upstream
// authorization request is pushed while the relying party is still
// sending the browser to Varde; Start then only redirects. The upstream's
// PAR round trip leaves the person's path.
//
// What is pushed early is kept in this node's memory, per attempt, and
// used at most once. It is wasted, and expires at the upstream unused,
// when the person never arrives, when a single sign-on session at Varde
// makes the login unnecessary, when the browser's visit reaches another
// node, or when the attempt no longer fits (its level, locale or login
// hint changed, say because the upstream's health changed the level the
// broker asks for). Start then pushes afresh, as without Prepare.
const (
	// maxPrepared bounds the early pushes kept at once; while that many
	// are waiting, Prepare does nothing.
	maxPrepared = 4096
	// maxPreparedAge bounds how long an early push is kept: the browser
	// follows the relying party's redirect at once, so one that has not
	// arrived by then most likely never will.
	maxPreparedAge = 30 * time.Second
)

// prepared is an authorization request pushed early for one attempt.
// The fields after done are set before done is closed, and read after.
type prepared struct {
	attempt provider.Attempt
	done    chan struct{}

	ok         bool
	secrets    secrets
	requestURI string
	// until is when it stops being used: at most half the request_uri's
	// lifetime after it was pushed (so the upstream still accepts it when
	// the browser gets there), and at most maxPreparedAge.
	until time.Time
}

// preparedSet holds the early pushes of one provider.
type preparedSet struct {
	mu sync.Mutex
	m  map[string]*prepared
}

// Prepare implements provider.Preparer: with Config.PushEarly, for an
// upstream whose requests are pushed, it pushes attempt a's request in
// the background, within Timeouts.Request. A failure is only logged:
// Start pushes again, and reports what goes wrong then.
func (p *Provider) Prepare(ctx context.Context, a provider.Attempt) {
	if !p.cfg.PushEarly || a.ID == "" {
		return
	}
	if m, ok := p.meta.peek(); ok && !p.canPush(m) {
		// Known not to take pushed requests: nothing to do ahead.
		return
	}
	now := p.now()
	e := &prepared{attempt: a, done: make(chan struct{})}
	p.prep.mu.Lock()
	if len(p.prep.m) >= maxPrepared {
		p.prep.sweep(now)
	}
	_, dup := p.prep.m[a.ID]
	full := len(p.prep.m) >= maxPrepared
	if !dup && !full {
		if p.prep.m == nil {
			p.prep.m = make(map[string]*prepared)
		}
		p.prep.m[a.ID] = e
	}
	p.prep.mu.Unlock()
	if dup || full {
		return
	}
	ctx = context.WithoutCancel(ctx)
	go func() {
		defer close(e.done)
		ctx, cancel := context.WithTimeout(ctx, p.t.Request)
		defer cancel()
		m, err := p.discovery(ctx)
		if err != nil || !p.canPush(m) {
			return
		}
		sec, err := p.newSecrets()
		if err != nil {
			return
		}
		sent := p.now()
		uri, lifetime, rej := p.push(ctx, m, p.authParams(a, sec))
		if rej != nil {
			p.log.DebugContext(ctx, "early push failed", "provider", p.cfg.ID, "reason", rej.reason, "err", rej.msg)
			return
		}
		e.ok, e.secrets, e.requestURI = true, sec, uri
		e.until = sent.Add(min(lifetime/2, maxPreparedAge))
	}()
}

// takePrepared removes and returns the early push for attempt a, waiting
// for it if it is still under way; nil if there is none, it failed, it
// no longer fits a, or it is too old.
func (p *Provider) takePrepared(ctx context.Context, a provider.Attempt) *prepared {
	p.prep.mu.Lock()
	e := p.prep.m[a.ID]
	delete(p.prep.m, a.ID)
	p.prep.mu.Unlock()
	if e == nil {
		return nil
	}
	select {
	case <-e.done:
	case <-ctx.Done():
		return nil
	}
	if !e.ok || e.attempt != a || !p.now().Before(e.until) {
		return nil
	}
	return e
}

// sweep drops the early pushes that are finished and can no longer be
// used. The caller holds s.mu.
func (s *preparedSet) sweep(now time.Time) {
	for id, e := range s.m {
		select {
		case <-e.done:
			if !e.ok || !now.Before(e.until) {
				delete(s.m, id)
			}
		default:
		}
	}
}

// canPush says whether a request can be pushed early: requests to this
// upstream are pushed and it has an endpoint to push them to (without
// one Start reports the misconfiguration).
func (p *Provider) canPush(m *metadata) bool {
	return p.pushes(m) && m.PAREndpoint != ""
}
