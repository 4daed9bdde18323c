package oidcup

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/health"
	"github.com/varde-eid/varde/internal/provider"
	"github.com/varde-eid/varde/internal/store"
)

// failingRandom is a random source that fails once off is set, as a
// node's might.
type failingRandom struct {
	r   io.Reader
	off *atomic.Bool
}

func (f failingRandom) Read(b []byte) (int, error) {
	if f.off.Load() {
		return 0, errors.New("random source failed")
	}
	return f.r.Read(b)
}

// unreachableChallenges is the real store, out of reach for writes of
// login state, as a PostgreSQL server that refuses connections is:
// nothing is written.
type unreachableChallenges struct{ store.Challenges }

func (u unreachableChallenges) PutChallenge(context.Context, string, []byte, time.Time) error {
	return fmt.Errorf("dial: %w", store.ErrUnavailable)
}

// TestVardeFailuresNotCountedAgainstUpstream: a login through an eID
// that failed on Varde's side — the store did not answer a write of its
// state (outcome_unknown) or could not be reached (store_unavailable),
// or the node's random source failed (internal) — is audited naming the
// component that failed (provider.DetailFault: where the login state is
// kept, or the node), so that the status page counts it there and not
// against the eID; however many such logins fail, the eID stays up and
// offered, and the broker heard only node_error.
func TestVardeFailuresNotCountedAgainstUpstream(t *testing.T) {
	for _, tc := range []struct {
		name     string
		deps     func(d *Deps, v *varde, randomOff *atomic.Bool)
		callback bool // the failure is at the callback, not the start
		reason   string
		fault    string
	}{
		{name: "start unanswered", reason: ReasonOutcomeUnknown, fault: "store",
			deps: func(d *Deps, v *varde, _ *atomic.Bool) {
				d.Challenges = unansweredChallenges{Challenges: v.db, put: true}
			}},
		{name: "callback unanswered", callback: true, reason: ReasonOutcomeUnknown, fault: "store",
			deps: func(d *Deps, v *varde, _ *atomic.Bool) {
				d.Challenges = unansweredChallenges{Challenges: v.db, take: true}
			}},
		{name: "store out of reach", reason: ReasonStoreUnavailable, fault: "store",
			deps: func(d *Deps, v *varde, _ *atomic.Bool) { d.Challenges = unreachableChallenges{v.db} }},
		{name: "state in memory", reason: ReasonOutcomeUnknown, fault: "node:a", deps: func(d *Deps, v *varde, _ *atomic.Bool) {
			d.Challenges, d.StateComponent, d.NodeComponent = unansweredChallenges{Challenges: v.db, put: true}, "node:a", "node:a"
		}},
		{name: "random source", reason: ReasonInternal, fault: "node:a", deps: func(d *Deps, v *varde, off *atomic.Bool) {
			d.Rand, d.NodeComponent = failingRandom{r: rand.Reader, off: off}, "node:a"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var randomOff atomic.Bool
			bk := newBrokeredWith(t, func(d *Deps, v *varde) {
				if tc.deps != nil {
					tc.deps(d, v, &randomOff)
				}
			})
			randomOff.Store(true)
			const logins = 12 // more than the health monitor's minimum to judge by
			for range logins {
				b := newBrowser(t)
				if tc.callback {
					b.get(b.callbackURL(bk.startURL()))
				} else {
					b.get(bk.startURL())
				}
			}
			if s := bk.mon.State("fake"); s != health.Up {
				t.Errorf("the eID is %s after %d logins failed on Varde's side, want up", s, logins)
			}
			if !bk.offered(t) {
				t.Errorf("the login page no longer offers the eID")
			}
			var faults []string
			for _, e := range bk.v.auditEvents() {
				if e.Type != "authentication" || e.Result != store.ResultFailure {
					continue
				}
				switch e.Details["method"] {
				case Method:
					if e.Reason != tc.reason || e.Details[provider.DetailFault] != tc.fault {
						t.Errorf("the eID's event: reason %q, fault %q; want %q, %q", e.Reason, e.Details[provider.DetailFault], tc.reason, tc.fault)
					}
					faults = append(faults, e.Details[provider.DetailFault])
				default:
					if e.Reason != provider.ReasonNodeError {
						t.Errorf("the broker's event: reason %q, want %q", e.Reason, provider.ReasonNodeError)
					}
				}
			}
			if len(faults) != logins || slices.Contains(faults, "") {
				t.Errorf("%d of %d logins audited with the component that failed: %q", len(faults), logins, faults)
			}
		})
	}
}
