package broker_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/assurance"
	"github.com/varde-eid/varde/internal/broker"
	"github.com/varde-eid/varde/internal/provider"
	"github.com/varde-eid/varde/internal/store"
)

// removedAfterLookup is the real store in which the help desk takes a
// number off its person (RemoveIdentifier, ADR 44) just after a login
// found the person by it, before the login's session is stored.
type removedAfterLookup struct {
	store.Store
	gone store.Identifier
	done bool
}

func (s *removedAfterLookup) GetPersonByIdentifier(ctx context.Context, scheme, value string) (*store.Person, error) {
	p, err := s.Store.GetPersonByIdentifier(ctx, scheme, value)
	if err == nil && !s.done && scheme == s.gone.Scheme && value == s.gone.Value {
		s.done = true
		if _, rerr := s.Store.RemoveIdentifier(ctx, p.ID, s.gone, time.Now(), nil); rerr != nil {
			return nil, rerr
		}
	}
	return p, err
}

// TestLoginByANumberRemovedMeanwhile: an eID login finds the person by
// a number the help desk removes at that moment, after the lookup and
// before the session is stored. The removal ends every session the
// person has when it commits, which this one is not yet: so the login
// reads again, once its session is stored, whether the number still
// finds the person, and ends the session if not. No session outlives
// the removal; the login goes back to the login page saying it did not
// work, and is audited so, naming the person.
func TestLoginByANumberRemovedMeanwhile(t *testing.T) {
	for name, attempt := range map[string]string{"for a service": "r1", "to the account page": broker.AccountAttempt} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			ctx := context.Background()
			f.request(t, "r1")
			intruder := dnr
			if _, err := f.st.LinkIdentifiers(ctx, "p1", []store.Identifier{intruder}, nil, "", f.now, nil); err != nil {
				t.Fatal(err)
			}
			f.b.Persons = &removedAfterLookup{Store: f.st, gone: intruder}
			res := provider.Result{Provider: "strong", Level: assurance.High, Identifiers: []store.Identifier{intruder}}
			next, err, _ := finish(f, attempt, res)
			if err != nil || next != "/login?err=failed&req="+attempt {
				t.Fatalf("a login by a number removed meanwhile: %q, %v", next, err)
			}
			if live, err := f.st.ListPersonSessions(ctx, "p1", time.Now()); err != nil || len(live) != 0 {
				t.Errorf("the person's sessions after it: %v, %v; want none", live, err)
			}
			ev := f.events(t)
			if last := ev[len(ev)-1]; last.Type != broker.EventAuthentication || last.Result != store.ResultFailure ||
				last.Reason != "identifier_removed" || last.PersonID != "p1" {
				t.Errorf("audit = %+v", last)
			}
			if _, err := f.st.GetPersonByIdentifier(ctx, intruder.Scheme, intruder.Value); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("the removed number: %v", err)
			}
		})
	}
}
