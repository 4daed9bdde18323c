package broker_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

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
			if len(w.Result().Cookies()) != 0 {
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
	if next != "/account/link/refused?why=blocked" {
		t.Fatalf("next = %q", next)
	}
	if _, err := f.st.GetPersonByIdentifier(ctx, dnr.Scheme, dnr.Value); err == nil {
		t.Error("the identifier was linked to a blocked person")
	}
	if ev := lastEvent(t, f); ev.Type != "link" || ev.Result != store.ResultFailure || ev.Reason != broker.ReasonPersonBlocked {
		t.Errorf("audit = %+v", ev)
	}
	if page := f.get(next); page.Code != http.StatusForbidden || !strings.Contains(page.Body.String(), "Your Varde ID is blocked") {
		t.Errorf("page %d: %.400s", page.Code, page.Body.String())
	}
}
