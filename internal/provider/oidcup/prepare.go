package oidcup

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/varde-eid/varde/internal/provider"
	"github.com/varde-eid/varde/internal/store"
)

// Pushing early. When a relying party's pushed request names this
// upstream in provider_hint, the broker calls Prepare, and the upstream
// authorization request is pushed while the relying party is still
// sending the browser to Varde; Start then only redirects. The upstream's
// PAR round trip leaves the person's path.
//
// What is pushed early is kept in this node's memory, per attempt, and
// used at most once. When nodes share the store (Deps.SharedChallenges),
// it is also stored there (Challenges, under pushedKey), because the
// browser's visit usually reaches another node than the relying party's
// PAR did; that node takes it from the store. The store then decides who
// uses it: the node that takes it, this one included (see takePrepared).
// It is wasted, and expires at the upstream unused, when the person
// never arrives, when a single sign-on session at Varde makes the login
// unnecessary, when the attempt no longer fits (its level, locale or
// login hint changed, say because the upstream's health changed the
// level the broker asks for), or when the browser reaches another node
// before the push is stored. Start then pushes afresh, as without
// Prepare.
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
	// the browser gets there), and at most maxPreparedAge. It is by the
	// wall clock alone, the clock the upstream counts expires_in by: the
	// process's monotonic clock, which Go would otherwise compare by,
	// stands still while the host sleeps and does not follow a step of
	// the wall clock, and a push kept by it could be sent after its
	// request_uri expired at the upstream.
	until time.Time
}

// storedPush is an early push as it is stored for the other nodes, as
// JSON under pushedKey, until its until. It holds the login's nonce and
// PKCE verifier, as the login state Start stores (loginState) does: the
// store holds no new kind of secret, and whoever can read one can read
// the other.
type storedPush struct {
	// Attempt is the attempt it was pushed for, all of it, so that it is
	// used only for the same attempt (every field compared, as Start
	// compares this node's).
	Attempt    provider.Attempt `json:"a"`
	State      string           `json:"s"`
	Nonce      string           `json:"n"`
	Verifier   string           `json:"v"`
	RequestURI string           `json:"r"`
	Until      time.Time        `json:"u"`
}

// pushedKey is where the early push for attempt id is stored: per
// provider, and in a namespace of its own, so that it is never taken for
// a login state (loginKey, stateKey) or another provider's.
//
// The attempt ID is no secret: it is Varde's ID for the relying party's
// pushed request, in the request_uri the relying party sends the
// browser with and in the login page's address. The key needs none,
// though. Only Start reads the store under it, and Start runs for any
// browser sent to the login with the attempt, pushing afresh when
// nothing is stored: what a browser gets through the key it would get
// anyway. What Start takes is bound to the browser it serves by the
// key of the login state it stores (loginKey, of the state and the
// browser cookie), under which only that browser's callback finds it,
// and of its secrets only the state ever reaches a browser. The hash
// only gives keys of one length and alphabet, as loginKey's.
func (p *Provider) pushedKey(attemptID string) string {
	sum := sha256.Sum256([]byte("oidcup-pushed\x00" + p.cfg.ID + "\x00" + attemptID))
	return "upstream-pushed:" + base64.RawURLEncoding.EncodeToString(sum[:])
}

// preparedSet holds the early pushes of one provider.
type preparedSet struct {
	mu sync.Mutex
	m  map[string]*prepared
}

// Prepare implements provider.Preparer: with Config.PushEarly, for an
// upstream whose requests are pushed, it pushes attempt a's request in
// the background, within Timeouts.Request, and with
// Deps.SharedChallenges stores it for the other nodes. A failure is only
// logged: Start pushes again, and reports what goes wrong then.
func (p *Provider) Prepare(ctx context.Context, a provider.Attempt) {
	if !p.cfg.PushEarly || a.ID == "" {
		return
	}
	if a.LoginHint != "" && p.cfg.ForwardLoginHint {
		// The hint goes only to the upstream the person logs in with,
		// once the browser is here (Config.ForwardLoginHint): the route
		// may change before it arrives, or the person never come.
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
		sent := p.now().Round(0) // the wall clock only (prepared.until)
		uri, lifetime, rej := p.push(ctx, m, p.authParams(a, sec))
		if rej != nil {
			p.log.DebugContext(ctx, "early push failed", "provider", p.cfg.ID, "reason", rej.reason, "err", rej.msg)
			return
		}
		until := sent.Add(min(lifetime/2, maxPreparedAge))
		// Stored before done is closed, so that a Start here that waits
		// for it takes it from the store after it is there.
		if p.shared && !p.storePush(ctx, a, sec, uri, until) {
			// Not usable here either: it may be in the store all the
			// same (a write can fail after it is made), and only the
			// store can say whether another node used it.
			return
		}
		e.ok, e.secrets, e.requestURI, e.until = true, sec, uri, until
	}()
}

// storePush stores an early push for the other nodes, within
// Timeouts.Request; false if that failed, which is only logged.
func (p *Provider) storePush(ctx context.Context, a provider.Attempt, sec secrets, uri string, until time.Time) bool {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.t.Request)
	defer cancel()
	raw, err := json.Marshal(storedPush{Attempt: a, State: sec.state, Nonce: sec.nonce, Verifier: sec.verifier, RequestURI: uri, Until: until})
	if err == nil {
		err = p.chal.PutChallenge(ctx, p.pushedKey(a.ID), raw, until)
	}
	if err != nil {
		p.log.WarnContext(ctx, "early push not stored for other nodes; not used", "provider", p.cfg.ID, "err", err)
		return false
	}
	return true
}

// takePrepared removes and returns the early push for attempt a, waiting
// for it if it is still under way here; nil if there is none, it failed,
// it no longer fits a, or it is too old. m is the upstream's metadata.
//
// When nodes share the store, a push is used only by the Start that
// takes it from the store, at this node or another (RFC 9126 §4: the
// client MUST use a request_uri only once); this node's copy says only
// that it is worth asking. So the take is on the person's path, one
// write to the shared store, rather than done afterwards in the
// background: only the store knows whether another node used it. Say
// the browser reached another node, which took it, and the person,
// back at the login page within seconds, chooses the eID again at this
// node; or two Starts of one attempt run at two nodes at once. A take
// afterwards would have let both use it. The write costs far less than
// the round trip to the eID it saves.
func (p *Provider) takePrepared(ctx context.Context, a provider.Attempt, m *metadata) *prepared {
	p.prep.mu.Lock()
	e := p.prep.m[a.ID]
	delete(p.prep.m, a.ID)
	p.prep.mu.Unlock()
	if e == nil {
		if !p.shared || !p.cfg.PushEarly || !a.Hinted || a.ID == "" || !p.canPush(m) {
			return nil
		}
		// Perhaps pushed early at another node: the relying party named
		// a provider when it pushed (Hinted), so Prepare was called
		// somewhere. A login without a hint costs the store nothing.
		return p.takeStored(ctx, a)
	}
	select {
	case <-e.done:
	case <-ctx.Done():
		return nil
	}
	if !e.ok || e.attempt != a || !p.now().Before(e.until) {
		// What the store may hold for a is this same push: it does not
		// fit either, and is left to expire.
		return nil
	}
	if p.shared {
		return p.takeStored(ctx, a)
	}
	return e
}

// takeStored takes the early push for attempt a from the store, made at
// this node or another; nil if there is none, it no longer fits a, or it
// is too old. A store that fails is logged and Start pushes afresh: it
// never fails a login.
func (p *Provider) takeStored(ctx context.Context, a provider.Attempt) *prepared {
	now := p.now()
	raw, err := p.chal.TakeChallenge(ctx, p.pushedKey(a.ID), now)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	var s storedPush
	if err == nil {
		err = json.Unmarshal(raw, &s)
	}
	if err != nil {
		p.log.WarnContext(ctx, "early push not taken from the store; pushing afresh", "provider", p.cfg.ID, "err", err)
		return nil
	}
	if s.Attempt != a || !now.Before(s.Until) || s.RequestURI == "" {
		return nil
	}
	return &prepared{attempt: s.Attempt, ok: true, secrets: secrets{state: s.State, nonce: s.Nonce, verifier: s.Verifier},
		requestURI: s.RequestURI, until: s.Until}
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
