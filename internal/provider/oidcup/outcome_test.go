package oidcup

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/assurance"
	"github.com/varde-eid/varde/internal/provider"
	"github.com/varde-eid/varde/internal/store"
)

// unansweredChallenges is the real store whose writes of login state
// get no answer, as a COMMIT whose connection closed does: each is
// carried out, and the caller is told its outcome is unknown. put and
// take choose which.
type unansweredChallenges struct {
	store.Challenges
	put, take bool
}

func (u unansweredChallenges) PutChallenge(ctx context.Context, id string, data []byte, expiresAt time.Time) error {
	if err := u.Challenges.PutChallenge(ctx, id, data, expiresAt); err != nil || !u.put {
		return err
	}
	return fmt.Errorf("commit: %w", store.ErrOutcomeUnknown)
}

func (u unansweredChallenges) TakeChallenge(ctx context.Context, id string, now time.Time) ([]byte, error) {
	data, err := u.Challenges.TakeChallenge(ctx, id, now)
	if err != nil || !u.take {
		return data, err
	}
	return nil, fmt.Errorf("commit: %w", store.ErrOutcomeUnknown)
}

// A login whose state's write got no answer, at its start or when its
// callback takes it, is audited as outcome_unknown rather than as a
// defect ("internal"), and is the node's failure at the broker
// (node_error), not the upstream's; the person starts again, which is
// safe whether or not the write was stored.
func TestLoginStateOutcomeUnknown(t *testing.T) {
	for _, c := range []struct {
		name      string
		put, take bool
	}{
		{"start", true, false},
		{"callback", false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := newVarde(t)
			v.chal = unansweredChallenges{Challenges: v.db, put: c.put, take: c.take}
			f := newFakeUpstream(t, v.clock)
			v.add(f.config(v, "fake"))
			b := newBrowser(t)
			start := v.startURL("fake", "a", assurance.Substantial, "en", "")
			var resp *http.Response
			if c.put {
				resp, _ = b.get(start)
			} else {
				resp, _ = b.get(b.callbackURL(start))
			}
			if resp.StatusCode == http.StatusServiceUnavailable {
				t.Errorf("answered 503, as if nothing had been written")
			}
			if reasons := v.reasons(); !slices.Contains(reasons, provider.ReasonOutcomeUnknown) || slices.Contains(reasons, ReasonInternal) {
				t.Errorf("audited %v, want %s and not %s", reasons, provider.ReasonOutcomeUnknown, ReasonInternal)
			}
			v.fin.mu.Lock()
			fails := slices.Clone(v.fin.fails)
			v.fin.mu.Unlock()
			for _, f := range fails {
				if f.reason != provider.ReasonNodeError {
					t.Errorf("the broker heard %q, want %q", f.reason, provider.ReasonNodeError)
				}
			}
		})
	}
}
