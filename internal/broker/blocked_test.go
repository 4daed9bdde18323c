package broker_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/assurance"
	"github.com/varde-eid/varde/internal/broker"
	"github.com/varde-eid/varde/internal/provider"
	"github.com/varde-eid/varde/internal/store"
)

// TestFinishRefusesABlockedPerson: whichever way a blocked person comes
// in (a provider's own person, as the passkey provider reports one; an
// eID's identifier; their account), the login starts no session, goes
// to a page that says the Varde ID is blocked and who lifts it (403),
// and is audited with reason person_blocked. Nothing reaches the
// relying party but, if the person goes back, access_denied.
func TestFinishRefusesABlockedPerson(t *testing.T) {
	tests := []struct {
		name    string
		attempt string
		res     provider.Result
	}{
		{"the provider's own person", "r1", provider.Result{Provider: "strong", PersonID: "p1", Level: assurance.High}},
		// A person carried with the result is the check only if it is
		// the one the result names.
		{"the provider's own person, carried as someone else", "r1", provider.Result{Provider: "strong", PersonID: "p1",
			Person: &store.Person{ID: "p2"}, Level: assurance.High}},
		{"an eID's identifier", "r1", provider.Result{Provider: "strong", Level: assurance.High, GivenName: "Someone Else",
			Identifiers: []store.Identifier{{Scheme: "no:fnr", Value: "010180 12371"}}}},
		{"an account login", broker.AccountAttempt, provider.Result{Provider: "strong", PersonID: "p1", Level: assurance.High}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.request(t, "r1")
			if _, err := f.st.BlockPerson(context.Background(), "p1", "stolen phone", f.now, nil); err != nil {
				t.Fatal(err)
			}
			next, err, w := finish(f, tt.attempt, tt.res)
			must(t, err)
			if want := "/login?err=blocked&req=" + tt.attempt; next != want {
				t.Fatalf("next = %q, want %q", next, want)
			}
			if len(sessionCookies(w)) != 0 {
				t.Errorf("a session was started: %v", w.Result().Cookies())
			}
			ev := f.events(t)
			last := ev[len(ev)-1]
			if last.Type != broker.EventAuthentication || last.Result != store.ResultFailure ||
				last.Reason != broker.ReasonPersonBlocked || last.PersonID != "p1" {
				t.Errorf("audit = %+v", last)
			}
			page := f.get(next)
			body := page.Body.String()
			if page.Code != http.StatusForbidden || !strings.Contains(body, "Your Varde ID is blocked") ||
				!strings.Contains(body, "contact the help desk") {
				t.Errorf("page %d: %.600s", page.Code, body)
			}
			cancel := strings.Contains(body, `action="/authorize/cancel?req=r1"`)
			if cancel != (tt.attempt != broker.AccountAttempt) {
				t.Errorf("back to the service offered: %v, want it only for a service's login", cancel)
			}
			if strings.Contains(body, "/login/start") {
				t.Error("the page offers ways to log in")
			}
			if p, err := f.st.GetPerson(context.Background(), "p1"); err != nil || p.GivenName != "Ola" {
				t.Errorf("the refused login changed the person: %+v, %v", p, err)
			}
		})
	}
}

// TestLinkRefusesABlockedPerson: a link begun before the person was
// blocked adds nothing, and says why.
func TestLinkRefusesABlockedPerson(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	b := loggedIn(t, f, "p1", assurance.High)
	attempt := linkAttempt(t, f, b, "weak")
	if _, err := f.st.BlockPerson(ctx, "p1", "stolen phone", f.now, nil); err != nil {
		t.Fatal(err)
	}
	next, err := finishIn(f, b, attempt, provider.Result{Provider: "weak", Identifiers: []store.Identifier{dnr}, Level: assurance.Substantial})
	must(t, err)
	linkRefusedAsBlocked(t, f, next)
}

// linkRefusedAsBlocked checks that a link that ended at next added
// nothing, was audited as refused for a blocked person, and says so.
func linkRefusedAsBlocked(t *testing.T, f *fixture, next string) {
	t.Helper()
	if next != "/account/link/refused?why=blocked" {
		t.Fatalf("next = %q", next)
	}
	if _, err := f.st.GetPersonByIdentifier(context.Background(), dnr.Scheme, dnr.Value); err == nil {
		t.Error("the identifier was linked to a blocked person")
	}
	if ev := lastEvent(t, f); ev.Type != "link" || ev.Result != store.ResultFailure || ev.Reason != broker.ReasonPersonBlocked {
		t.Errorf("audit = %+v", ev)
	}
	if page := f.get(next); page.Code != http.StatusForbidden || !strings.Contains(page.Body.String(), "Your Varde ID is blocked") {
		t.Errorf("page %d: %.400s", page.Code, page.Body.String())
	}
}

// blockOnLookup is the store, in which the help desk blocks person the
// first time the broker looks an identifier up: after the link checked
// the block, before it writes.
type blockOnLookup struct {
	store.Persons
	blocks store.PersonBlocks
	person string
	now    time.Time
	done   bool
}

func (s *blockOnLookup) GetPersonByIdentifier(ctx context.Context, scheme, value string) (*store.Person, error) {
	if !s.done {
		s.done = true
		if _, err := s.blocks.BlockPerson(ctx, s.person, "stolen phone", s.now, nil); err != nil {
			return nil, err
		}
	}
	return s.Persons.GetPersonByIdentifier(ctx, scheme, value)
}

// TestLinkRefusesAPersonBlockedMeanwhile: a block that lands after the
// link looked and before it writes still stops it: the store refuses
// the write, and the person gets the same page and audit reason as for
// a block the link saw.
func TestLinkRefusesAPersonBlockedMeanwhile(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	b := loggedIn(t, f, "p1", assurance.High)
	attempt := linkAttempt(t, f, b, "weak")
	f.b.Persons = &blockOnLookup{Persons: f.st, blocks: f.st, person: "p1", now: f.now}
	next, err := finishIn(f, b, attempt, provider.Result{Provider: "weak", Identifiers: []store.Identifier{dnr}, Level: assurance.Substantial})
	must(t, err)
	if p, err := f.st.GetPerson(ctx, "p1"); err != nil || !p.Blocked() {
		t.Fatalf("the block did not land: %+v, %v", p, err)
	}
	linkRefusedAsBlocked(t, f, next)
}
