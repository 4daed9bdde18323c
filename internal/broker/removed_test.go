package broker_test

import (
	"context"
	"errors"
	"net/http/httptest"
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
// person has when it commits, which this one is not yet: so the
// session's own write reads whether the number still finds the person
// (store.Session.WayIn), and stores nothing if not. No session outlives
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
			next, err, w := finish(f, attempt, res)
			if err != nil || next != "/login?err=failed&req="+attempt {
				t.Fatalf("a login by a number removed meanwhile: %q, %v", next, err)
			}
			storedNothing(t, f, w, "identifier_removed")
			if _, err := f.st.GetPersonByIdentifier(ctx, intruder.Scheme, intruder.Value); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("the removed number: %v", err)
			}
		})
	}
}

// TestLoginWithAWayInTakenAwayMeanwhile: a provider that keeps its
// persons names the way in its login used (a passkey), which the person
// no longer holds when the session is written: taken away as the login
// finished. The session's own write refuses it, so nothing of the
// session is stored, not even for a moment; the login goes back to the
// login page saying it did not work, and is audited so.
func TestLoginWithAWayInTakenAwayMeanwhile(t *testing.T) {
	for name, attempt := range map[string]string{"for a service": "r1", "to the account page": broker.AccountAttempt} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			f.request(t, "r1")
			res := provider.Result{Provider: "weak", PersonID: "p1", Level: assurance.Substantial,
				WayIn: store.WayIn{Passkey: []byte("a passkey removed meanwhile")}}
			next, err, w := finish(f, attempt, res)
			if err != nil || next != "/login?err=failed&req="+attempt {
				t.Fatalf("a login with a way in taken away meanwhile: %q, %v", next, err)
			}
			storedNothing(t, f, w, "way_in_removed")
		})
	}
}

// storedNothing checks that a login refused because its way in went as
// it finished left no session of p1's, gave the browser no session
// cookie, stored no event of a login that succeeded (a session exists if
// and only if its event does), and was audited as a failure with reason
// why, naming the person.
func storedNothing(t *testing.T, f *fixture, w *httptest.ResponseRecorder, why string) {
	t.Helper()
	if live, err := f.st.ListPersonSessions(context.Background(), "p1", time.Now()); err != nil || len(live) != 0 {
		t.Errorf("the person's sessions after it: %v, %v; want none", live, err)
	}
	for _, c := range w.Result().Cookies() {
		if c.Name == f.b.Sessions.CookieName() && c.Value != "" {
			t.Errorf("the browser was given a session cookie")
		}
	}
	logins := f.eventsOf(t, broker.EventAuthentication)
	for _, e := range logins {
		if e.Result == store.ResultSuccess {
			t.Errorf("a login's success was stored: %+v", e)
		}
	}
	if len(logins) == 0 {
		t.Fatal("no login audited")
	}
	if last := logins[len(logins)-1]; last.Result != store.ResultFailure || last.Reason != why || last.PersonID != "p1" {
		t.Errorf("audit = %+v", last)
	}
}
