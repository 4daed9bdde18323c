package broker_test

import (
	"context"
	"errors"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/assurance"
	"github.com/varde-eid/varde/internal/audit"
	"github.com/varde-eid/varde/internal/broker"
	"github.com/varde-eid/varde/internal/httpx"
	"github.com/varde-eid/varde/internal/provider"
	"github.com/varde-eid/varde/internal/session"
	"github.com/varde-eid/varde/internal/store"
	"github.com/varde-eid/varde/internal/store/sqlstore"
)

var dnr = store.Identifier{Scheme: "no:dnr", Value: "41018012365"}

// browser is a person's cookies at Varde.
type browser []*http.Cookie

func (b browser) req(method, target string, form url.Values) *http.Request {
	var r *http.Request
	if form != nil {
		r = httptest.NewRequest(method, target, strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		r = httptest.NewRequest(method, target, nil)
	}
	for _, c := range b {
		r.AddCookie(c)
	}
	return r
}

// loggedIn starts an account session for person at level and returns the
// browser holding it.
func loggedIn(t *testing.T, f *fixture, person string, level assurance.Level) browser {
	t.Helper()
	_, err, w := finish(f, broker.AccountAttempt, provider.Result{Provider: "strong", PersonID: person, Level: level})
	must(t, err)
	return browser(w.Result().Cookies())
}

// startLink posts the link form from the browser's account page and
// returns the response.
func startLink(t *testing.T, f *fixture, b browser, providerID string) *httptest.ResponseRecorder {
	t.Helper()
	token := broker.LinkCSRF(f.b, b.req(http.MethodGet, "/account", nil))
	w := httptest.NewRecorder()
	f.mux.ServeHTTP(w, b.req(http.MethodPost, "/account/link", url.Values{"csrf": {token}, "provider": {providerID}}))
	return w
}

// linkAttempt starts a link and returns the attempt ID the provider got.
func linkAttempt(t *testing.T, f *fixture, b browser, providerID string) string {
	t.Helper()
	w := startLink(t, f, b, providerID)
	loc, err := url.Parse(w.Header().Get("Location"))
	// Fresh: the eID's own single sign-on session, perhaps someone
	// else's, must not pass for the login that proves the link.
	if err != nil || loc.Path != "/started/"+providerID || loc.Query().Get("min") != "substantial" || loc.Query().Get("fresh") != "1" {
		t.Fatalf("link start: %d, Location %q", w.Code, w.Header().Get("Location"))
	}
	return loc.Query().Get("attempt")
}

func finishIn(f *fixture, b browser, attempt string, res provider.Result) (string, error) {
	return f.b.Finish(httptest.NewRecorder(), b.req(http.MethodGet, "/upstream/callback", nil), attempt, res)
}

// lastEventOf is the newest audit event of type typ.
func lastEventOf(t *testing.T, f *fixture, typ string) *store.AuditEvent {
	t.Helper()
	ev := f.eventsOf(t, typ)
	if len(ev) == 0 {
		t.Fatalf("no %s audit events", typ)
	}
	return ev[len(ev)-1]
}

func lastEvent(t *testing.T, f *fixture) *store.AuditEvent {
	t.Helper()
	ev := f.events(t)
	if len(ev) == 0 {
		t.Fatal("no audit events")
	}
	return ev[len(ev)-1]
}

// TestLinkAddsTheIdentifier: a person logged in at substantial or above
// links another provider; what it proves becomes theirs, so a later login
// through it alone is the same person. The link attempt is single use.
func TestLinkAddsTheIdentifier(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	b := loggedIn(t, f, "p1", assurance.High)
	infos, token := f.b.LinkOptions(b.req(http.MethodGet, "/account", nil))
	if len(infos) != 1 || infos[0].ID != "weak" || token == "" {
		t.Fatalf("link options %v, token %q", infos, token)
	}
	attempt := linkAttempt(t, f, b, "weak")
	res := provider.Result{Provider: "weak", Identifiers: []store.Identifier{dnr}, Level: assurance.Substantial, Method: "oidc"}
	next, err := finishIn(f, b, attempt, res)
	must(t, err)
	if next != "/account?done=linked" {
		t.Errorf("next = %q", next)
	}
	p, err := f.st.GetPersonByIdentifier(ctx, dnr.Scheme, dnr.Value)
	if err != nil || p.ID != "p1" {
		t.Fatalf("identifier holder %v, %v", p, err)
	}
	// It is kept as linked: through which eID and when, for the account
	// page's list of linked eIDs (ADR 57).
	if got := p.Identifiers[len(p.Identifiers)-1]; got.Value != dnr.Value || !got.Linked() || got.LinkedThrough != "weak" ||
		!got.LinkedAt.Equal(f.b.Now().UTC().Truncate(time.Microsecond)) {
		t.Errorf("linked identifier %+v, want linked through weak at %v", got, f.b.Now())
	}
	ev := lastEvent(t, f)
	if ev.Type != "link" || ev.Result != store.ResultSuccess || ev.PersonID != "p1" || ev.Provider != "weak" || ev.Level != "substantial" ||
		ev.Details["session_level"] != "high" || ev.Details["scheme"] != "no:dnr" || ev.Details["provider"] != "weak" {
		t.Errorf("audit = %+v", ev)
	}
	// The event names the session that linked, as a login's does, so
	// that only its account page announces the link.
	s, err := f.b.Sessions.Current(b.req(http.MethodGet, "/account", nil))
	must(t, err)
	if ev.Details["session"] != s.ID[:12] {
		t.Errorf("link event names session %q, want %q", ev.Details["session"], s.ID[:12])
	}
	for k, v := range ev.Details {
		if strings.Contains(v, dnr.Value) {
			t.Errorf("audit detail %s holds the identifier", k)
		}
	}

	// Single use: the same attempt cannot finish twice.
	if next, err := finishIn(f, b, attempt, res); err != nil || next != "/account/link/refused?why=expired" {
		t.Errorf("second finish: %q, %v", next, err)
	}
	// A later login through the linked provider alone is the same person.
	f.request(t, "r1")
	if got := sessionPerson(t, f, "r1", res); got != "p1" {
		t.Errorf("login through the linked provider: person %q", got)
	}
	// Linking it again changes nothing.
	next, err = finishIn(f, b, linkAttempt(t, f, b, "weak"), res)
	if err != nil || next != "/account?done=alreadylinked" {
		t.Errorf("relink: %q, %v", next, err)
	}
}

// TestLinkRefusesAnotherPersonsIdentifier: merging two persons is not
// offered; the refusal is audited and shown on a plain page.
func TestLinkRefusesAnotherPersonsIdentifier(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	must(t, f.st.CreatePerson(ctx, &store.Person{ID: "p2", WebAuthnID: []byte("p2-handle-0123456789012345678901"),
		Identifiers: []store.Identifier{dnr}, ProofingLevel: "substantial", CreatedAt: f.now}))
	b := loggedIn(t, f, "p1", assurance.High)
	next, err := finishIn(f, b, linkAttempt(t, f, b, "strong"), provider.Result{Provider: "strong",
		Identifiers: []store.Identifier{{Scheme: "no:fnr", Value: "01018012371"}, dnr}, Level: assurance.High})
	must(t, err)
	if next != "/account/link/refused?why=taken" {
		t.Errorf("next = %q", next)
	}
	if p, err := f.st.GetPersonByIdentifier(ctx, dnr.Scheme, dnr.Value); err != nil || p.ID != "p2" {
		t.Errorf("identifier moved: %v, %v", p, err)
	}
	if ev := lastEvent(t, f); ev.Type != "link" || ev.Result != store.ResultFailure || ev.Reason != "identifier_taken" || ev.PersonID != "p1" {
		t.Errorf("audit = %+v", ev)
	}
	w := f.get(next)
	if w.Code != http.StatusConflict || !strings.Contains(w.Body.String(), "another person") || !strings.Contains(w.Body.String(), `href="/account"`) {
		t.Errorf("refused page: %d\n%s", w.Code, w.Body.String())
	}
}

// TestLinkNeedsTheSameSession: the link finishes only in the session
// that started it.
func TestLinkNeedsTheSameSession(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	must(t, f.st.CreatePerson(ctx, &store.Person{ID: "p2", WebAuthnID: []byte("p2-handle-0123456789012345678901"), ProofingLevel: "high", CreatedAt: f.now}))
	b := loggedIn(t, f, "p1", assurance.High)
	res := provider.Result{Provider: "weak", Identifiers: []store.Identifier{dnr}, Level: assurance.Substantial}
	tests := []struct {
		name string
		in   browser
	}{
		{"another person's session", loggedIn(t, f, "p2", assurance.High)},
		{"the same person, logged in again", loggedIn(t, f, "p1", assurance.High)},
		{"no session", nil},
	}
	for _, tt := range tests {
		next, err := finishIn(f, tt.in, linkAttempt(t, f, b, "weak"), res)
		if err != nil || next != "/account/link/refused?why=session" {
			t.Errorf("%s: %q, %v", tt.name, next, err)
		}
		if ev := lastEvent(t, f); ev.Reason != "session_changed" || ev.PersonID != "p1" {
			t.Errorf("%s: audit %+v", tt.name, ev)
		}
	}
	if _, err := f.st.GetPersonByIdentifier(ctx, dnr.Scheme, dnr.Value); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("identifier linked after all: %v", err)
	}
	// A result from another provider than the one the link started with
	// does not finish it either.
	next, _ := finishIn(f, b, linkAttempt(t, f, b, "weak"), provider.Result{Provider: "strong", Identifiers: []store.Identifier{dnr}, Level: assurance.High})
	if next != "/account/link/refused?why=session" {
		t.Errorf("other provider: %q", next)
	}
}

// TestLinkNeedsSubstantialOnBothSides: a low session cannot start a
// link, and a low login cannot be linked.
func TestLinkNeedsSubstantialOnBothSides(t *testing.T) {
	f := newFixture(t)
	low := loggedIn(t, f, "p1", assurance.Low)
	// The account page offers no link to a low session, and the form
	// posted anyway is refused.
	if infos, token := f.b.LinkOptions(low.req(http.MethodGet, "/account", nil)); len(infos) != 0 || token != "" {
		t.Errorf("LinkOptions for a low session = %v, %q; want none", infos, token)
	}
	w := startLink(t, f, low, "weak")
	if loc := w.Header().Get("Location"); loc != "/account/link/refused?why=level" {
		t.Errorf("low session: %d, Location %q", w.Code, loc)
	}
	if ev := lastEvent(t, f); ev.Type != "link" || ev.Reason != "session_level" || ev.Details["session_level"] != "low" {
		t.Errorf("audit = %+v", ev)
	}
	if w := f.get("/account/link/refused?why=level"); w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "substantial") {
		t.Errorf("level page: %d", w.Code)
	}

	must(t, f.st.CreatePerson(context.Background(), &store.Person{ID: "p3", WebAuthnID: []byte("p3-handle-0123456789012345678901"),
		Identifiers: []store.Identifier{{Scheme: "no:fnr", Value: "02018012300"}}, ProofingLevel: "substantial", CreatedAt: f.now}))
	b := loggedIn(t, f, "p3", assurance.Substantial)
	next, err := finishIn(f, b, linkAttempt(t, f, b, "weak"), provider.Result{Provider: "weak", Identifiers: []store.Identifier{dnr}, Level: assurance.Low})
	if err != nil || next != "/account/link/refused?why=level" {
		t.Errorf("low login: %q, %v", next, err)
	}
	if ev := lastEvent(t, f); ev.Reason != "insufficient_level" || ev.Level != "low" || ev.Details["session_level"] != "substantial" {
		t.Errorf("audit = %+v", ev)
	}
	if _, err := f.st.GetPersonByIdentifier(context.Background(), dnr.Scheme, dnr.Value); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a low login was linked: %v", err)
	}
}

// TestLinkFormTooLarge: a link form over the body limit is answered 413
// with a page saying it was too large, in the person's language, not
// refused as a forgery for the token the unread form seemed to lack.
func TestLinkFormTooLarge(t *testing.T) {
	f := newFixture(t)
	b := loggedIn(t, f, "p1", assurance.High)
	_, token := f.b.LinkOptions(b.req(http.MethodGet, "/account", nil))
	for _, lang := range []string{"nb", "en", "da"} {
		r := b.req(http.MethodPost, "/account/link?lang="+lang, url.Values{"csrf": {token}, "provider": {"weak"}, "pad": {strings.Repeat("a", 2<<10)}})
		w := httptest.NewRecorder()
		httpx.LimitBody(1<<10, f.mux).ServeHTTP(w, r)
		if w.Code != http.StatusRequestEntityTooLarge || !strings.Contains(w.Body.String(), html.EscapeString(f.b.Pages.T(lang, "error.toolarge.title"))) {
			t.Errorf("%s: %d, want 413 saying the form was too large:\n%s", lang, w.Code, w.Body.String())
		}
	}
}

// TestLinkFormIsProtected: the form needs the session's CSRF token and a
// session; providers that keep their own persons, or cannot reach the
// link level, are not offered.
func TestLinkFormIsProtected(t *testing.T) {
	f := newFixture(t)
	b := loggedIn(t, f, "p1", assurance.High)
	w := httptest.NewRecorder()
	f.mux.ServeHTTP(w, b.req(http.MethodPost, "/account/link", url.Values{"csrf": {"forged"}, "provider": {"weak"}}))
	if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), `href="/account"`) {
		t.Errorf("forged token: %d, want 403 leading back to the account page, where the form is:\n%s", w.Code, w.Body.String())
	}
	w = httptest.NewRecorder()
	f.mux.ServeHTTP(w, browser(nil).req(http.MethodPost, "/account/link", url.Values{"provider": {"weak"}}))
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/account" {
		t.Errorf("no session: %d %q", w.Code, w.Header().Get("Location"))
	}
	if infos, token := f.b.LinkOptions(browser(nil).req(http.MethodGet, "/account", nil)); infos != nil || token != "" {
		t.Errorf("options without a session: %v %q", infos, token)
	}

	f.b.Providers = append(f.b.Providers, keeper{}, staticProvider{"lowly", assurance.Low})
	infos, _ := f.b.LinkOptions(b.req(http.MethodGet, "/account", nil))
	var ids []string
	for _, i := range infos {
		ids = append(ids, i.ID)
	}
	if strings.Join(ids, " ") != "weak" {
		t.Errorf("link options %v", ids)
	}
	if w := startLink(t, f, b, "keeper"); w.Code != http.StatusBadRequest {
		t.Errorf("linking a person-keeping provider: %d", w.Code)
	}
	if w := startLink(t, f, b, "lowly"); w.Code != http.StatusBadRequest {
		t.Errorf("linking a low provider: %d", w.Code)
	}
}

type keeper struct{}

func (keeper) Info() provider.Info {
	return provider.Info{ID: "keeper", Name: map[string]string{"en": "Keeper"}, MaxLevel: assurance.High}
}
func (keeper) Start(w http.ResponseWriter, r *http.Request, a provider.Attempt) {}
func (keeper) KeepsPersons() bool                                               { return true }

// TestLinkFailEndsTheAttempt: a provider's failure or the person's
// cancel ends the link attempt, audited.
func TestLinkFailEndsTheAttempt(t *testing.T) {
	f := newFixture(t)
	b := loggedIn(t, f, "p1", assurance.High)
	attempt := linkAttempt(t, f, b, "weak")
	if next := f.b.Fail(httptest.NewRecorder(), b.req(http.MethodGet, "/", nil), attempt, "weak", "cancelled"); next != "/account/link/refused?why=cancelled" {
		t.Errorf("next = %q", next)
	}
	if ev := lastEvent(t, f); ev.Type != "link" || ev.Reason != "cancelled" || ev.PersonID != "p1" {
		t.Errorf("audit = %+v", ev)
	}
	next, err := finishIn(f, b, attempt, provider.Result{Provider: "weak", Identifiers: []store.Identifier{dnr}, Level: assurance.Substantial})
	if err != nil || next != "/account/link/refused?why=expired" {
		t.Errorf("finish after fail: %q, %v", next, err)
	}
	if next := f.b.Fail(httptest.NewRecorder(), b.req(http.MethodGet, "/", nil), linkAttempt(t, f, b, "weak"), "weak", "upstream_error"); next != "/account/link/refused?why=failed" {
		t.Errorf("next = %q", next)
	}
}

// TestLinkNeedsARecentLogin: a session whose login is older than
// session.ReauthAfter (one left open on a shared computer) is offered no
// link and cannot start one, even with a link form it got while it was
// fresh: whoever found it could otherwise add their own eID and log in as
// its owner from then on. Nothing is linked, and the refusal is audited.
func TestLinkNeedsARecentLogin(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	b := loggedIn(t, f, "p1", assurance.High)
	_, token := f.b.LinkOptions(b.req(http.MethodGet, "/account", nil))
	if token == "" {
		t.Fatal("no link form right after the login")
	}
	f.now = f.now.Add(session.ReauthAfter + time.Minute)
	if infos, token := f.b.LinkOptions(b.req(http.MethodGet, "/account", nil)); len(infos) != 0 || token != "" {
		t.Errorf("link options for a stale session: %v, %q; want none", infos, token)
	}
	w := httptest.NewRecorder()
	f.mux.ServeHTTP(w, b.req(http.MethodPost, "/account/link", url.Values{"csrf": {token}, "provider": {"weak"}}))
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/account/link/refused?why=stale" {
		t.Fatalf("link from a stale session: %d, Location %q", w.Code, w.Header().Get("Location"))
	}
	if ev := lastEvent(t, f); ev.Type != "link" || ev.Reason != "reauth" || ev.PersonID != "p1" || ev.Result == store.ResultSuccess {
		t.Errorf("audit %+v", ev)
	}
	w = httptest.NewRecorder()
	f.mux.ServeHTTP(w, append(b, broker.NoticeCookieFor(f.b, "/account/link/refused?why=stale")).req(http.MethodGet, "/account/link/refused?why=stale", nil))
	if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "15") {
		t.Errorf("refusal page: %d\n%s", w.Code, w.Body.String())
	}
	if _, err := f.st.GetPersonByIdentifier(ctx, dnr.Scheme, dnr.Value); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("identifier linked after all: %v", err)
	}
}

// auditDown is the real store that cannot append an event on its own.
type auditDown struct{ store.Store }

func (auditDown) AppendAudit(context.Context, *store.AuditEvent) error {
	return errors.New("connection refused")
}

// TestLinkEndsOtherSessionsWithItsEvents: the link's event, the end of
// the other sessions and the event saying so are one write, so when
// events cannot be appended on their own, the sessions ended are
// audited all the same, and never the one without the other.
func TestLinkEndsOtherSessionsWithItsEvents(t *testing.T) {
	f := newFixture(t)
	loggedIn(t, f, "p1", assurance.High)
	b := loggedIn(t, f, "p1", assurance.High)
	f.b.Audit = &audit.Log{Store: auditDown{f.st}, Log: f.b.Log}
	res := provider.Result{Provider: "weak", Identifiers: []store.Identifier{dnr}, Level: assurance.Substantial}
	next, err := finishIn(f, b, linkAttempt(t, f, b, "weak"), res)
	if err != nil || next != "/account?done=linked" {
		t.Fatalf("link: %q, %v", next, err)
	}
	events := f.events(t)
	if len(events) < 2 {
		t.Fatalf("%d audit events, want the link's and the sessions ended", len(events))
	}
	link, ended := events[len(events)-2], events[len(events)-1]
	if link.Type != "link" || link.Result != store.ResultSuccess || link.Details["sessions_ended"] != "1" {
		t.Errorf("audit %+v, want the link with one session ended", link)
	}
	if ended.Type != "sessions_ended" || ended.Details["count"] != "1" || ended.Seq != link.Seq+1 {
		t.Errorf("last audit %+v, want one session ended, right after the link", ended)
	}
}

// linksWithoutAnswer is the real store whose link is stored and then
// gets no answer, as a COMMIT whose connection dropped.
type linksWithoutAnswer struct{ store.Store }

func (s linksWithoutAnswer) LinkIdentifiers(ctx context.Context, personID string, add []store.Identifier, raise []store.LevelChange, except string, now time.Time, events func([]store.LevelChange, int) []*store.AuditEvent) ([]*store.Session, error) {
	if _, err := s.Store.LinkIdentifiers(ctx, personID, add, raise, except, now, events); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("link identifiers: %w", store.ErrOutcomeUnknown)
}

// TestLinkOutcomeUnknown: when the link's write gets no answer, the
// audit trail says its outcome is unknown, not that it failed, as the
// link may be stored with its events.
func TestLinkOutcomeUnknown(t *testing.T) {
	f := newFixture(t)
	loggedIn(t, f, "p1", assurance.High)
	b := loggedIn(t, f, "p1", assurance.High)
	f.b.Persons = linksWithoutAnswer{f.st}
	res := provider.Result{Provider: "weak", Identifiers: []store.Identifier{dnr}, Level: assurance.Substantial}
	if _, err := finishIn(f, b, linkAttempt(t, f, b, "weak"), res); !errors.Is(err, store.ErrOutcomeUnknown) {
		t.Fatalf("link: %v, want its outcome unknown", err)
	}
	if ev := lastEvent(t, f); ev.Type != "link" || ev.Result != store.ResultFailure || ev.Reason != "outcome_unknown" {
		t.Errorf("last audit %+v, want the link of unknown outcome", ev)
	}
}

// TestLinkEndsOtherSessions: a link that adds a way in logs the person
// out everywhere else, as a change of passkeys does; the session that
// linked goes on.
func TestLinkEndsOtherSessions(t *testing.T) {
	f := newFixture(t)
	other := loggedIn(t, f, "p1", assurance.High)
	b := loggedIn(t, f, "p1", assurance.High)
	res := provider.Result{Provider: "weak", Identifiers: []store.Identifier{dnr}, Level: assurance.Substantial}
	next, err := finishIn(f, b, linkAttempt(t, f, b, "weak"), res)
	if err != nil || next != "/account?done=linked" {
		t.Fatalf("link: %q, %v", next, err)
	}
	if ev := lastEventOf(t, f, "link"); ev.Result != store.ResultSuccess || ev.Details["sessions_ended"] != "1" {
		t.Errorf("audit %+v, want one session ended", ev)
	}
	// The sessions ended are an event of their own, after the link's, as
	// after a change of passkeys: the person's recent activity shows it.
	if ev := lastEvent(t, f); ev.Type != "sessions_ended" || ev.Result != store.ResultSuccess || ev.PersonID != "p1" ||
		ev.Details["count"] != "1" || ev.Details["why"] != "ways_in_changed" {
		t.Errorf("last audit %+v, want one session ended", ev)
	}
	current := func(br browser) error {
		_, err := f.b.Sessions.Current(br.req(http.MethodGet, "/account", nil))
		return err
	}
	if err := current(other); !errors.Is(err, session.ErrNoSession) {
		t.Errorf("the other session after linking: %v, want it ended", err)
	}
	if err := current(b); err != nil {
		t.Errorf("the session that linked: %v", err)
	}

	// A store that cannot end the other sessions: nothing is linked, and
	// the link is audited as failed.
	other = loggedIn(t, f, "p1", assurance.High)
	b = loggedIn(t, f, "p1", assurance.High)
	if _, err := f.st.(*sqlstore.DB).Pools()["write"].Exec(`CREATE TRIGGER no_delete BEFORE DELETE ON sessions BEGIN SELECT RAISE(ABORT, 'disk says no'); END`); err != nil {
		t.Fatal(err)
	}
	cpr := store.Identifier{Scheme: "dk:cpr", Value: "0101801234"}
	res.Identifiers = []store.Identifier{cpr}
	if next, err := finishIn(f, b, linkAttempt(t, f, b, "weak"), res); err == nil {
		t.Fatalf("link: %q, want it failed", next)
	}
	if _, err := f.st.GetPersonByIdentifier(context.Background(), cpr.Scheme, cpr.Value); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("identifier linked though the other sessions were not ended: %v", err)
	}
	if ev := lastEvent(t, f); ev.Type != "link" || ev.Result != store.ResultFailure || ev.Reason != "internal" || ev.Details["sessions_ended"] != "" {
		t.Errorf("last audit %+v, want the link failed", ev)
	}
	if err := current(other); err != nil {
		t.Errorf("the other session after a failed link: %v", err)
	}
}

// TestLinkRefusalsAtTheStartAreAudited: a link that cannot start, for a
// provider that cannot be linked or one that is down, is an audit event
// like every other outcome; the event names no provider the browser
// made up.
func TestLinkRefusalsAtTheStartAreAudited(t *testing.T) {
	f := newFixture(t)
	f.b.Health = downMonitor(t, f, "weak")
	b := loggedIn(t, f, "p1", assurance.High)
	made := strings.Repeat("x", 4096)
	if w := startLink(t, f, b, made); w.Code != http.StatusBadRequest {
		t.Fatalf("link of an unknown provider: %d", w.Code)
	}
	ev := lastEvent(t, f)
	if ev.Type != "link" || ev.Result != store.ResultFailure || ev.Reason != "unknown_provider" || ev.PersonID != "p1" ||
		ev.Provider != "" || ev.Details["provider"] != "" {
		t.Errorf("audit of an unknown provider = %+v", ev)
	}
	if w := startLink(t, f, b, "weak"); w.Header().Get("Location") != "/account/link/refused?why=unavailable" {
		t.Fatalf("link of a provider that is down: %d, Location %q", w.Code, w.Header().Get("Location"))
	}
	ev = lastEvent(t, f)
	if ev.Type != "link" || ev.Result != store.ResultFailure || ev.Reason != "provider_down" || ev.PersonID != "p1" || ev.Provider != "weak" {
		t.Errorf("audit of a provider that is down = %+v", ev)
	}
}

// TestLinkForAPersonNoLongerStored: a session whose person the store no
// longer holds links nothing, and the event says so in its own words,
// not as a login that named nobody.
func TestLinkForAPersonNoLongerStored(t *testing.T) {
	f := newFixture(t)
	b := loggedIn(t, f, "gone", assurance.High)
	next, err := finishIn(f, b, linkAttempt(t, f, b, "weak"),
		provider.Result{Provider: "weak", Identifiers: []store.Identifier{dnr}, Level: assurance.Substantial})
	must(t, err)
	if next != "/account/link/refused?why=session" {
		t.Errorf("next = %q", next)
	}
	if ev := lastEvent(t, f); ev.Type != "link" || ev.Result != store.ResultFailure || ev.Reason != "person_not_found" || ev.PersonID != "gone" {
		t.Errorf("audit = %+v", ev)
	}
}

// TestLinkNeedsTheProofingLevel: a linked identifier reaches the person
// through every provider that proves it, so a login below the level the
// person was proofed at (a substantial eID of a person proofed at high,
// or whoever found such a session open) adds no way in: the account
// page offers none, and a form posted anyway is refused and audited.
// The person proofed at substantial links from a substantial login.
func TestLinkNeedsTheProofingLevel(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	b := loggedIn(t, f, "p1", assurance.Substantial)
	if infos, token := f.b.LinkOptions(b.req(http.MethodGet, "/account", nil)); len(infos) != 0 || token != "" {
		t.Errorf("link options below the proofing level: %v, %q; want none", infos, token)
	}
	if loc := startLink(t, f, b, "weak").Header().Get("Location"); loc != "/account/link/refused?why=proofing" {
		t.Errorf("link below the proofing level: Location %q", loc)
	}
	if ev := lastEvent(t, f); ev.Type != "link" || ev.Result != store.ResultFailure || ev.Reason != "below_proofing" ||
		ev.PersonID != "p1" || ev.Details["session_level"] != "substantial" {
		t.Errorf("audit = %+v", ev)
	}
	if w := f.get("/account/link/refused?why=proofing"); w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "verified at a higher level") {
		t.Errorf("proofing page: %d\n%s", w.Code, w.Body.String())
	}
	if _, err := f.st.GetPersonByIdentifier(ctx, dnr.Scheme, dnr.Value); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("identifier linked from a login below the proofing level: %v", err)
	}

	must(t, f.st.CreatePerson(ctx, &store.Person{ID: "p3", WebAuthnID: []byte("p3-handle-0123456789012345678901"),
		Identifiers: []store.Identifier{{Scheme: "no:fnr", Value: "02018012300"}}, ProofingLevel: "substantial", CreatedAt: f.now}))
	b = loggedIn(t, f, "p3", assurance.Substantial)
	next, err := finishIn(f, b, linkAttempt(t, f, b, "weak"), provider.Result{Provider: "weak", Identifiers: []store.Identifier{dnr}, Level: assurance.Substantial})
	if err != nil || next != "/account?done=linked" {
		t.Errorf("link at the proofing level: %q, %v", next, err)
	}
}

// TestLinkedIdentifierReachesTheLinkLevel: an identifier linked from a
// substantial session is the person's only as surely as that session,
// so a login through a high eID that proves it reaches substantial: a
// relying party that needs high refuses it, audited with the level the
// eID proved. Linked
// from a high session, the same eID logs the person in at high.
func TestLinkedIdentifierReachesTheLinkLevel(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	must(t, f.st.CreatePerson(ctx, &store.Person{ID: "p3", WebAuthnID: []byte("p3-handle-0123456789012345678901"),
		Identifiers: []store.Identifier{{Scheme: "no:fnr", Value: "02018012300"}}, ProofingLevel: "substantial", CreatedAt: f.now}))
	b := loggedIn(t, f, "p3", assurance.Substantial)
	res := provider.Result{Provider: "strong", Identifiers: []store.Identifier{dnr}, Level: assurance.High}
	next, err := finishIn(f, b, linkAttempt(t, f, b, "strong"), res)
	if err != nil || next != "/account?done=linked" {
		t.Fatalf("link: %q, %v", next, err)
	}
	p, err := f.st.GetPersonByIdentifier(ctx, dnr.Scheme, dnr.Value)
	must(t, err)
	if got := p.Identifiers[len(p.Identifiers)-1]; got.MaxLevel != "substantial" {
		t.Errorf("linked identifier %+v, want MaxLevel substantial", got)
	}

	f.request(t, "any")
	if s := finishSession(t, f, "any", res); s.PersonID != "p3" || s.Level != "substantial" {
		t.Errorf("login through the linked identifier: person %q at %q, want p3 at substantial", s.PersonID, s.Level)
	}
	f.request(t, "high", assurance.ACRHigh)
	if next, err, w := finish(f, "high", res); err != nil || next != "/login?err=level&req=high" || len(sessionCookies(w)) != 0 {
		t.Errorf("high login through the linked identifier: %q, %v", next, err)
	}
	if ev := lastEvent(t, f); ev.Type != broker.EventAuthentication || ev.Result != store.ResultFailure || ev.Reason != "insufficient_level" ||
		ev.PersonID != "p3" || ev.Level != "substantial" || ev.Details["proved_level"] != "high" {
		t.Errorf("audit = %+v", ev)
	}

	// Linked from a high session (p1 is proofed at high), it reaches high.
	other := store.Identifier{Scheme: "dk:cpr", Value: "0101801234"}
	b = loggedIn(t, f, "p1", assurance.High)
	res = provider.Result{Provider: "strong", Identifiers: []store.Identifier{other}, Level: assurance.High}
	if next, err := finishIn(f, b, linkAttempt(t, f, b, "strong"), res); err != nil || next != "/account?done=linked" {
		t.Fatalf("link from high: %q, %v", next, err)
	}
	f.request(t, "high2", assurance.ACRHigh)
	if s := finishSession(t, f, "high2", res); s.PersonID != "p1" || s.Level != "high" {
		t.Errorf("login through an identifier linked at high: person %q at %q", s.PersonID, s.Level)
	}
}

// TestRelinkFromAStrongerSessionRaisesTheLevel: an identifier linked
// from a substantial session, linked again from a high one, reaches
// high from then on.
func TestRelinkFromAStrongerSessionRaisesTheLevel(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	must(t, f.st.CreatePerson(ctx, &store.Person{ID: "p3", WebAuthnID: []byte("p3-handle-0123456789012345678901"),
		Identifiers: []store.Identifier{{Scheme: "no:fnr", Value: "02018012300"}}, ProofingLevel: "substantial", CreatedAt: f.now}))
	b := loggedIn(t, f, "p3", assurance.Substantial)
	res := provider.Result{Provider: "strong", Identifiers: []store.Identifier{dnr}, Level: assurance.High}
	if next, err := finishIn(f, b, linkAttempt(t, f, b, "strong"), res); err != nil || next != "/account?done=linked" {
		t.Fatalf("link: %q, %v", next, err)
	}
	// A login through the eID proofed with (fnr) at high. The raise
	// changes what a login through the identifier reaches, so the
	// person's other sessions, made under the old rule, end (ADR 9).
	// The raise and its events are one write: they are stored even when
	// events cannot be appended on their own.
	other := b
	b = loggedIn(t, f, "p3", assurance.High)
	kept := f.b.Audit
	f.b.Audit = &audit.Log{Store: auditDown{f.st}, Log: f.b.Log}
	if next, err := finishIn(f, b, linkAttempt(t, f, b, "strong"), res); err != nil || next != "/account?done=raised" {
		t.Fatalf("relink: %q, %v", next, err)
	}
	f.b.Audit = kept
	if _, err := (&audit.Log{Store: f.st}).Verify(ctx); err != nil {
		t.Errorf("chain: %v", err)
	}
	if ev := lastEventOf(t, f, "link"); ev.Result != store.ResultSuccess || ev.Details["raised_from"] != "substantial" ||
		ev.Details["sessions_ended"] != "1" {
		t.Errorf("audit = %+v, want raised_from substantial and one session ended", ev)
	}
	if ev := lastEvent(t, f); ev.Type != "sessions_ended" || ev.PersonID != "p3" || ev.Details["count"] != "1" {
		t.Errorf("last audit = %+v, want one session ended", ev)
	}
	if _, err := f.b.Sessions.Current(other.req(http.MethodGet, "/account", nil)); !errors.Is(err, session.ErrNoSession) {
		t.Errorf("the other session after the raise: %v, want it ended", err)
	}
	if _, err := f.b.Sessions.Current(b.req(http.MethodGet, "/account", nil)); err != nil {
		t.Errorf("the session that raised the level: %v", err)
	}
	p, err := f.st.GetPersonByIdentifier(ctx, dnr.Scheme, dnr.Value)
	must(t, err)
	if held, _ := heldOf(p, dnr); held.MaxLevel != "high" {
		t.Errorf("relinked identifier %+v, want MaxLevel high", held)
	}
	f.request(t, "high", assurance.ACRHigh)
	if s := finishSession(t, f, "high", res); s.PersonID != "p3" || s.Level != "high" {
		t.Errorf("login through the relinked identifier: person %q at %q, want p3 at high", s.PersonID, s.Level)
	}
}

func heldOf(p *store.Person, id store.Identifier) (store.Identifier, bool) {
	for _, h := range p.Identifiers {
		if h.Scheme == id.Scheme && h.Value == id.Value {
			return h, true
		}
	}
	return store.Identifier{}, false
}

// TestLinkWhyNot: when the account page can offer no link, the broker
// says why, so that the page can tell the person what to do.
func TestLinkWhyNot(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	must(t, f.st.CreatePerson(ctx, &store.Person{ID: "p3", WebAuthnID: []byte("p3-handle-0123456789012345678901"),
		Identifiers: []store.Identifier{{Scheme: "no:fnr", Value: "02018012300"}}, ProofingLevel: "substantial", CreatedAt: f.now}))
	high := loggedIn(t, f, "p1", assurance.High)
	if why := f.b.LinkWhyNot(high.req(http.MethodGet, "/account", nil)); why != "" {
		t.Errorf("why not, with links offered: %q", why)
	}
	if why := f.b.LinkWhyNot(browser(nil).req(http.MethodGet, "/account", nil)); why != "" {
		t.Errorf("why not, without a session: %q", why)
	}
	low := loggedIn(t, f, "p3", assurance.Low)
	if why := f.b.LinkWhyNot(low.req(http.MethodGet, "/account", nil)); why != broker.LinkWhyLevel {
		t.Errorf("why not, low session: %q", why)
	}
	below := loggedIn(t, f, "p1", assurance.Substantial)
	if why := f.b.LinkWhyNot(below.req(http.MethodGet, "/account", nil)); why != broker.LinkWhyLevel {
		t.Errorf("why not, below the proofing level: %q", why)
	}
	f.b.Health = downMonitor(t, f, "weak", "strong")
	if why := f.b.LinkWhyNot(high.req(http.MethodGet, "/account", nil)); why != broker.LinkWhyDown {
		t.Errorf("why not, every provider down: %q", why)
	}
	f.now = f.now.Add(session.ReauthAfter + time.Minute)
	if why := f.b.LinkWhyNot(high.req(http.MethodGet, "/account", nil)); why != broker.LinkWhyReauth {
		t.Errorf("why not, stale session: %q", why)
	}
}

// TestLinkOptionsLeaveOutTheLoginsProvider: the provider the person
// logged in with is not offered for linking, and when it is the only one
// that could be, the broker says so rather than that providers are down.
func TestLinkOptionsLeaveOutTheLoginsProvider(t *testing.T) {
	f := newFixture(t)
	b := loggedIn(t, f, "p1", assurance.High) // through "strong"
	infos, _ := f.b.LinkOptions(b.req(http.MethodGet, "/account", nil))
	if len(infos) != 1 || infos[0].ID != "weak" {
		t.Errorf("link options %v, want weak alone", infos)
	}
	f.b.Health = downMonitor(t, f, "weak")
	if why := f.b.LinkWhyNot(b.req(http.MethodGet, "/account", nil)); why != broker.LinkWhyDown {
		t.Errorf("why not, the other provider down: %q", why)
	}
	f.b.Health = nil
	f.b.Providers = []provider.Provider{staticProvider{"strong", assurance.High}}
	if infos, token := f.b.LinkOptions(b.req(http.MethodGet, "/account", nil)); len(infos) != 0 || token != "" {
		t.Errorf("link options %v, %q; want none", infos, token)
	}
	if why := f.b.LinkWhyNot(b.req(http.MethodGet, "/account", nil)); why != broker.LinkWhyNoOther {
		t.Errorf("why not, the login's provider the only one: %q", why)
	}
}

// TestLinkLevelPageNamesLinkLevel: the page for a link refused for its
// level names the level links are held to (LinkLevel) in the page's
// language, taken from the code, not written into the text.
func TestLinkLevelPageNamesLinkLevel(t *testing.T) {
	f := newFixture(t)
	for _, lang := range []string{"en", "nb", "da"} {
		name := f.b.Pages.T(lang, "account.level."+broker.LinkLevel.String())
		if msg := f.b.Pages.T(lang, "link.level.message"); strings.Contains(msg, name) || !strings.Contains(msg, "%s") {
			t.Errorf("%s: link.level.message %q writes the level into the text", lang, msg)
		}
		w := f.getIn("/account/link/refused?why=level&lang="+lang, lang)
		body := w.Body.String()
		if w.Code != http.StatusForbidden || !strings.Contains(body, name) || strings.Contains(body, "%!") || strings.Contains(body, "%s") {
			t.Errorf("%s: refused page %d does not name %q:\n%s", lang, w.Code, name, body)
		}
		// So with the time a link's login must be recent within.
		minutes := fmt.Sprint(int(session.ReauthAfter / time.Minute))
		if msg := f.b.Pages.T(lang, "link.stale.message"); !strings.Contains(msg, "%s") {
			t.Errorf("%s: link.stale.message %q writes the time into the text", lang, msg)
		}
		w = f.get("/account/link/refused?why=stale&lang=" + lang)
		if body := w.Body.String(); !strings.Contains(body, " "+minutes+" ") || strings.Contains(body, "%!") || strings.Contains(body, "%s") {
			t.Errorf("%s: stale page does not say %s minutes:\n%s", lang, minutes, body)
		}
	}
}

// TestLinkInternalErrorLeadsToTheAccount: a link that fails on Varde's
// side is started from the account page, not from a service, so the
// page leads back to the account and names no service to contact.
func TestLinkInternalErrorLeadsToTheAccount(t *testing.T) {
	f := newFixture(t)
	b := loggedIn(t, f, "p1", assurance.High)
	token := broker.LinkCSRF(f.b, b.req(http.MethodGet, "/account", nil))
	f.st.Close()
	w := httptest.NewRecorder()
	f.mux.ServeHTTP(w, b.req(http.MethodPost, "/account/link", url.Values{"csrf": {token}, "provider": {"weak"}}))
	body := w.Body.String()
	if w.Code != http.StatusInternalServerError || !strings.Contains(body, "Something went wrong on our side") {
		t.Fatalf("status %d, want 500 saying something went wrong:\n%s", w.Code, body)
	}
	if strings.Contains(body, "logging in to") || !strings.Contains(body, "try again from your account page") ||
		!strings.Contains(body, `<a class="button" href="/account">`) {
		t.Errorf("the page does not lead back to the account:\n%s", body)
	}
}

// TestLinkRefusalsNameNoProviderTheNodeLacks: the pages for a link
// refused for its level or for the account's proofing name no eID by
// example (a node may have no BankID, and a Danish one has none), only
// the level the new way must reach.
func TestLinkRefusalsNameNoProviderTheNodeLacks(t *testing.T) {
	f := newFixture(t)
	for _, lang := range []string{"en", "nb", "da"} {
		for _, why := range []string{"level", "proofing"} {
			w := f.getIn("/account/link/refused?why="+why, lang)
			body := w.Body.String()
			if w.Code != http.StatusForbidden || !strings.Contains(body, `lang="`+lang+`"`) {
				t.Fatalf("%s %s: status %d, want the refused page in %s:\n%s", lang, why, w.Code, lang, body)
			}
			if strings.Contains(body, "BankID") {
				t.Errorf("%s %s: the page names BankID, which this node does not have:\n%s", lang, why, body)
			}
		}
	}
}

// takenAfterCheck is the real store where another person takes the
// identifier taken once the link has checked that no one holds it.
type takenAfterCheck struct {
	store.Store
	taken store.Identifier
}

func (s takenAfterCheck) GetPersonByIdentifier(ctx context.Context, scheme, value string) (*store.Person, error) {
	p, err := s.Store.GetPersonByIdentifier(ctx, scheme, value)
	if scheme == s.taken.Scheme && value == s.taken.Value && errors.Is(err, store.ErrNotFound) {
		if err := s.Store.CreatePerson(ctx, &store.Person{ID: "p-other", WebAuthnID: []byte("p-other"), Identifiers: []store.Identifier{s.taken}}); err != nil {
			return nil, err
		}
	}
	return p, err
}

// TestLinkAllOrNone: a link of several identifiers, one of which
// someone else takes while it is being linked, links none of them and is
// audited as refused, with no sessions ended.
func TestLinkAllOrNone(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	other := loggedIn(t, f, "p1", assurance.High)
	b := loggedIn(t, f, "p1", assurance.High)
	cpr := store.Identifier{Scheme: "dk:cpr", Value: "0101801234"}
	f.b.Persons = takenAfterCheck{Store: f.st, taken: cpr}
	res := provider.Result{Provider: "weak", Identifiers: []store.Identifier{dnr, cpr}, Level: assurance.Substantial}
	next, err := finishIn(f, b, linkAttempt(t, f, b, "weak"), res)
	if err != nil || next != "/account/link/refused?why=taken" {
		t.Fatalf("link: %q, %v", next, err)
	}
	if _, err := f.st.GetPersonByIdentifier(ctx, dnr.Scheme, dnr.Value); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("identifier linked though the link was refused: %v", err)
	}
	if ev := lastEvent(t, f); ev.Type != "link" || ev.Result != store.ResultFailure || ev.Reason != "identifier_taken" {
		t.Errorf("last audit %+v, want the link refused as taken", ev)
	}
	if _, err := f.b.Sessions.Current(other.req(http.MethodGet, "/account", nil)); err != nil {
		t.Errorf("the other session after a refused link: %v", err)
	}
}

// TestNoPagePromisesSupport: Varde has no help desk of its own to name,
// so neither a link refused as another person's, nor a login refused
// for a conflict in its records, nor the reference under an error, tells
// the person to contact a support that may not exist, in nb, en and da.
func TestNoPagePromisesSupport(t *testing.T) {
	f := newFixture(t)
	f.request(t, "r1")
	for _, lang := range []string{"nb", "en", "da"} {
		pages := map[string]string{"error.reference": f.b.Pages.T(lang, "error.reference")}
		for _, path := range []string{"/account/link/refused?why=taken", "/login?req=r1&err=conflict"} {
			w := f.getIn(path, lang)
			pages[path] = w.Body.String()
		}
		for what, body := range pages {
			low := strings.ToLower(body)
			if strings.Contains(low, "support") || strings.Contains(low, "brukerstøtte") {
				t.Errorf("%s, %s promises a support:\n%s", lang, what, body)
			}
		}
	}
}

// TestErrorPagesNameTheHelpDesk: with a help desk configured, a refused
// link (which needs people to join two persons) and a login refused with
// an error name it, with its number as a tel: link, its page and its
// hours in the page's language; without one, the pages name none, in nb,
// en and da.
func TestErrorPagesNameTheHelpDesk(t *testing.T) {
	f := newFixture(t)
	f.request(t, "r1")
	get := func(path, lang string) string {
		w := f.getIn(path, lang)
		return w.Body.String()
	}
	hours := map[string]string{"nb": "Hverdager 8–16", "en": "Weekdays 8–16", "da": "Hverdage 8–16"}
	for _, lang := range []string{"nb", "en", "da"} {
		for _, tc := range []struct{ path, text string }{
			{"/account/link/refused?why=taken", "link.taken.next"},
			{"/login?req=r1&err=conflict", "login.err.conflict"},
		} {
			f.b.Pages.Support = nil
			if body := get(tc.path, lang); strings.Contains(body, `id="support"`) || strings.Contains(body, f.b.Pages.T(lang, "error.support.title")) {
				t.Errorf("%s %s: a help desk shown when none is configured:\n%s", lang, tc.path, body)
			}
			f.b.Pages.Support = &httpx.Support{URL: "https://help.example.no/eid", Phone: "+47 (800) 12-345", Hours: hours}
			body := get(tc.path, lang)
			for _, want := range []string{`id="support"`, f.b.Pages.T(lang, "error.support.title"),
				`href="tel:&#43;4780012345">&#43;47 (800) 12-345</a>`, `href="https://help.example.no/eid"`, hours[lang], f.b.Pages.T(lang, tc.text)} {
				if !strings.Contains(body, want) {
					t.Errorf("%s %s: the page lacks %q:\n%s", lang, tc.path, want, body)
				}
			}
		}
	}
	// The login page without an error names none.
	if body := get("/login?req=r1", "en"); strings.Contains(body, `id="support"`) {
		t.Errorf("the login page without an error names the help desk:\n%s", body)
	}
}

// TestLinkReachesNoMoreThanTheEIDProved: an identifier is the person's
// only as surely as the weaker of the two logins that linked it. An eID
// configured for high that proves an identifier at substantial, linked
// from a high session, adds it at substantial, and linked again so it
// never raises one added at substantial: a login through the eID at a
// lower level than it is configured for never raises what the
// identifier reaches.
func TestLinkReachesNoMoreThanTheEIDProved(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	b := loggedIn(t, f, "p1", assurance.High)
	res := provider.Result{Provider: "strong", Identifiers: []store.Identifier{dnr}, Level: assurance.Substantial}
	if next, err := finishIn(f, b, linkAttempt(t, f, b, "strong"), res); err != nil || next != "/account?done=linked" {
		t.Fatalf("link: %q, %v", next, err)
	}
	p, err := f.st.GetPersonByIdentifier(ctx, dnr.Scheme, dnr.Value)
	must(t, err)
	if held, _ := heldOf(p, dnr); held.MaxLevel != "substantial" {
		t.Errorf("identifier linked through a substantial login: %+v, want MaxLevel substantial", held)
	}
	f.request(t, "high", assurance.ACRHigh)
	high := provider.Result{Provider: "strong", Identifiers: []store.Identifier{dnr}, Level: assurance.High}
	if next, err, _ := finish(f, "high", high); err != nil || next != "/login?err=level&req=high" {
		t.Errorf("high login through an identifier linked at substantial: %q, %v", next, err)
	}

	// Linked again from a high session through a substantial login: no
	// raise.
	b = loggedIn(t, f, "p1", assurance.High)
	if next, err := finishIn(f, b, linkAttempt(t, f, b, "strong"), res); err != nil || next != "/account?done=alreadylinked" {
		t.Errorf("relink through a substantial login: %q, %v", next, err)
	}
	p, err = f.st.GetPersonByIdentifier(ctx, dnr.Scheme, dnr.Value)
	must(t, err)
	if held, _ := heldOf(p, dnr); held.MaxLevel != "substantial" {
		t.Errorf("identifier relinked through a substantial login: %+v, want MaxLevel substantial", held)
	}
	// Through a high login, it is raised.
	if next, err := finishIn(f, b, linkAttempt(t, f, b, "strong"), high); err != nil || next != "/account?done=raised" {
		t.Errorf("relink through a high login: %q, %v", next, err)
	}
}

// TestLinkAddsNoSecondNumberOfAScheme: a person holds one number of
// each scheme through linking. An eID login that proves another number
// of a scheme the person holds already (someone else's birth number, a
// family member's eID on the same phone) adds nothing: linked, it would
// make whoever logs in with that number this person, and services
// would get it as this person's national_id, the number added last
// (ADR 30). A new number of a scheme is the help desk's to add (varde
// persons add-number). A number of another scheme still links.
func TestLinkAddsNoSecondNumberOfAScheme(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	other := store.Identifier{Scheme: "no:fnr", Value: "02018012300"}
	held := store.Identifier{Scheme: "no:fnr", Value: "01018012371"} // p1's own
	b := loggedIn(t, f, "p1", assurance.High)
	for _, tc := range []struct {
		name string
		ids  []store.Identifier
		want string
	}{
		{"another number alone", []store.Identifier{other}, "/account/link/refused?scheme=no%3Afnr&why=number"},
		{"beside the person's own", []store.Identifier{held, other}, "/account/link/refused?scheme=no%3Afnr&why=number"},
		{"two new ones of one scheme", []store.Identifier{dnr, {Scheme: "no:dnr", Value: "41056912345"}}, "/account/link/refused?scheme=no%3Adnr&why=number"},
	} {
		res := provider.Result{Provider: "strong", Identifiers: tc.ids, Level: assurance.High}
		next, err := finishIn(f, b, linkAttempt(t, f, b, "strong"), res)
		if err != nil || next != tc.want {
			t.Errorf("%s: %q, %v, want %q", tc.name, next, err, tc.want)
		}
		if ev := lastEvent(t, f); ev.Type != "link" || ev.Result != store.ResultFailure || ev.Reason != "second_number" || ev.PersonID != "p1" {
			t.Errorf("%s: audit %+v", tc.name, ev)
		}
		for _, id := range tc.ids[len(tc.ids)-1:] {
			if _, err := f.st.GetPersonByIdentifier(ctx, id.Scheme, id.Value); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("%s: %s linked after all: %v", tc.name, id.Scheme, err)
			}
		}
	}
	if _, err := f.st.GetPersonByIdentifier(ctx, dnr.Scheme, dnr.Value); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a D-number linked beside another: %v", err)
	}
	// The page says why, and that the help desk adds a new number, in
	// nb, en and da.
	for _, lang := range []string{"nb", "en", "da"} {
		w := f.getIn("/account/link/refused?why=number", lang)
		body := w.Body.String()
		for _, key := range []string{"link.number.message", "link.number.next"} {
			if text := f.b.Pages.T(lang, key); text == key || !strings.Contains(body, html.EscapeString(text)) {
				t.Errorf("%s: the page lacks %s:\n%s", lang, key, body)
			}
		}
		if w.Code != http.StatusConflict || !strings.Contains(body, `href="/account"`) {
			t.Errorf("%s: refused page %d\n%s", lang, w.Code, body)
		}
	}
	// The page names the kind of number that clashed, never the
	// number; a kind it does not know leaves the general words.
	for _, tc := range []struct{ lang, scheme, want string }{
		{"en", "no:fnr", "gave a different birth number from the one your Varde ID already has"},
		{"nb", "no:fnr", "ga et annet fødselsnummer enn det Varde-ID-en din har fra før"},
		{"da", "no:fnr", "gav et andet norsk fødselsnummer end det, dit Varde-ID allerede har"},
		{"en", "no:dnr", "gave a different D-number"},
		{"da", "dk:cpr", "gav et andet CPR-nummer"},
		{"en", "passport:NOR", "gave a different passport number"},
		{"en", "xx:made-up", "gave a different national identity number"},
	} {
		w := f.getIn("/account/link/refused?"+url.Values{"why": {"number"}, "scheme": {tc.scheme}}.Encode(), tc.lang)
		if body := w.Body.String(); w.Code != http.StatusConflict || !strings.Contains(body, html.EscapeString(tc.want)) || strings.Contains(body, "made-up") {
			t.Errorf("%s %s: refused page %d, want %q:\n%s", tc.lang, tc.scheme, w.Code, tc.want, body)
		}
	}
	// What to do next speaks of the same kind of number, a passport's
	// included, in each language; of a kind it does not know, in the
	// general words.
	for _, lang := range []string{"nb", "en", "da"} {
		for _, scheme := range []string{"no:fnr", "no:dnr", "dk:cpr", "se:pnr", "fi:hetu", "passport:NOR", "xx:made-up"} {
			w := f.getIn("/account/link/refused?"+url.Values{"why": {"number"}, "scheme": {scheme}}.Encode(), lang)
			body := w.Body.String()
			want := f.b.Pages.T(lang, "link.number.next")
			if kind := f.b.Pages.T(lang, broker.NumberKind(scheme)); kind != broker.NumberKind(scheme) {
				want = fmt.Sprintf(f.b.Pages.T(lang, "link.number.scheme.next"), kind)
				if !strings.Contains(want, kind) {
					t.Errorf("%s: link.number.scheme.next %q does not name the kind", lang, want)
				}
			}
			if !strings.Contains(body, html.EscapeString(want)) {
				t.Errorf("%s %s: the page does not say %q:\n%s", lang, scheme, want, body)
			}
		}
	}
	for _, tc := range []struct{ lang, scheme, want, not string }{
		{"en", "passport:NOR", "If you have a new passport number", "national identity number has changed"},
		{"nb", "passport:NOR", "Hvis du har fått nytt passnummer", "fødselsnummeret eller D-nummeret"},
		{"da", "passport:NOR", "Hvis du har fået et nyt pasnummer", "personnummer"},
	} {
		body := f.getIn("/account/link/refused?"+url.Values{"why": {"number"}, "scheme": {tc.scheme}}.Encode(), tc.lang).Body.String()
		if !strings.Contains(body, tc.want) || strings.Contains(body, tc.not) {
			t.Errorf("%s %s: want %q and not %q:\n%s", tc.lang, tc.scheme, tc.want, tc.not, body)
		}
	}
	// A number of a scheme the person lacks links as before.
	res := provider.Result{Provider: "strong", Identifiers: []store.Identifier{held, dnr}, Level: assurance.High}
	if next, err := finishIn(f, b, linkAttempt(t, f, b, "strong"), res); err != nil || next != "/account?done=linked" {
		t.Errorf("a D-number beside the person's birth number: %q, %v", next, err)
	}
}

// linksMeanwhile is the real store in which, just before each link's
// write, another link of the person stores meanwhile: the one of the
// same person finishing at the same moment in another tab.
type linksMeanwhile struct {
	store.Store
	meanwhile []store.Identifier
}

func (s linksMeanwhile) LinkIdentifiers(ctx context.Context, personID string, add []store.Identifier, raise []store.LevelChange, except string, now time.Time, events func([]store.LevelChange, int) []*store.AuditEvent) ([]*store.Session, error) {
	if _, err := s.Store.LinkIdentifiers(ctx, personID, s.meanwhile, nil, except, now, nil); err != nil {
		return nil, err
	}
	return s.Store.LinkIdentifiers(ctx, personID, add, raise, except, now, events)
}

// TestLinkSecondNumberLinkedMeanwhile: two links finishing at once from
// the person's session, each of another D-number, each pass the check
// made before the write; the store's write reads the person again, so
// the one that writes second adds nothing and the person is told as if
// the check had caught it.
func TestLinkSecondNumberLinkedMeanwhile(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	first := store.Identifier{Scheme: "no:dnr", Value: "41056912345"}
	b := loggedIn(t, f, "p1", assurance.High)
	f.b.Persons = linksMeanwhile{Store: f.st, meanwhile: []store.Identifier{first}}
	res := provider.Result{Provider: "strong", Identifiers: []store.Identifier{dnr}, Level: assurance.High}
	next, err := finishIn(f, b, linkAttempt(t, f, b, "strong"), res)
	if err != nil || next != "/account/link/refused?scheme=no%3Adnr&why=number" {
		t.Fatalf("the second link: %q, %v", next, err)
	}
	if ev := lastEvent(t, f); ev.Type != "link" || ev.Result != store.ResultFailure || ev.Reason != "second_number" || ev.PersonID != "p1" {
		t.Errorf("audit %+v, want the link refused as a second number", ev)
	}
	if _, err := f.st.GetPersonByIdentifier(ctx, dnr.Scheme, dnr.Value); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the second D-number linked after all: %v", err)
	}
	if p, err := f.st.GetPersonByIdentifier(ctx, first.Scheme, first.Value); err != nil || p.ID != "p1" {
		t.Errorf("the first D-number: %v, %v; want p1's", p, err)
	}
}

// removalMeanwhile is the real store in which, just before each link's
// write, the help desk takes a number off the person
// (RemoveIdentifier), which ends every session of theirs, the linking
// one too.
type removalMeanwhile struct {
	store.Store
	gone store.Identifier
}

func (s removalMeanwhile) LinkIdentifiers(ctx context.Context, personID string, add []store.Identifier, raise []store.LevelChange, except string, now time.Time, events func([]store.LevelChange, int) []*store.AuditEvent) ([]*store.Session, error) {
	if _, err := s.Store.RemoveIdentifier(ctx, personID, s.gone, now, nil); err != nil {
		return nil, err
	}
	return s.Store.LinkIdentifiers(ctx, personID, add, raise, except, now, events)
}

// TestLinkFromASessionEndedMeanwhile: a link passes the broker's look
// at its session, then the help desk removes a number of the person
// (ADR 44), ending every session of theirs; the link's write, from a
// session that no longer is, adds nothing, or a number the help desk
// took off could be put back by the intruder it was taken from. The
// link is refused as one whose session changed, and audited so.
func TestLinkFromASessionEndedMeanwhile(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	passport := store.Identifier{Scheme: "passport:NOR", Value: "FH1234567", MaxLevel: "high"}
	if _, err := f.st.LinkIdentifiers(ctx, "p1", []store.Identifier{passport}, nil, "", f.now, nil); err != nil {
		t.Fatal(err)
	}
	b := loggedIn(t, f, "p1", assurance.High)
	f.b.Persons = removalMeanwhile{Store: f.st, gone: passport}
	res := provider.Result{Provider: "strong", Identifiers: []store.Identifier{dnr}, Level: assurance.High}
	next, err := finishIn(f, b, linkAttempt(t, f, b, "strong"), res)
	if err != nil || next != "/account/link/refused?why=session" {
		t.Fatalf("the link from an ended session: %q, %v", next, err)
	}
	if ev := lastEvent(t, f); ev.Type != "link" || ev.Result != store.ResultFailure || ev.Reason != "session_changed" || ev.PersonID != "p1" {
		t.Errorf("audit %+v, want the link refused as its session changed", ev)
	}
	if p, err := f.st.GetPersonByIdentifier(ctx, dnr.Scheme, dnr.Value); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the D-number linked from an ended session: %v, %v", p, err)
	}
}

// TestLoginThroughALinkedNumberRecordsItsUse: a login that finds the
// person by a number they linked records the day it was used, for the
// account page's list of the eIDs they added (ADR 57): once its session
// is stored, and again only once the recorded use is an hour old. A
// login refused records nothing.
func TestLoginThroughALinkedNumberRecordsItsUse(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	b := loggedIn(t, f, "p1", assurance.High)
	res := provider.Result{Provider: "weak", Identifiers: []store.Identifier{dnr}, Level: assurance.Substantial, Method: "oidc"}
	if next, err := finishIn(f, b, linkAttempt(t, f, b, "weak"), res); err != nil || next != "/account?done=linked" {
		t.Fatalf("link: %q, %v", next, err)
	}
	lastUsed := func() time.Time {
		t.Helper()
		p, err := f.st.GetPersonByIdentifier(ctx, dnr.Scheme, dnr.Value)
		must(t, err)
		held := p.Identifiers[len(p.Identifiers)-1]
		if held.Value != dnr.Value {
			t.Fatalf("identifiers %+v", p.Identifiers)
		}
		return held.LastUsedAt
	}
	if got := lastUsed(); !got.IsZero() {
		t.Fatalf("linked, and used at %v already", got)
	}
	first := f.now
	f.request(t, "r1")
	if got := sessionPerson(t, f, "r1", res); got != "p1" {
		t.Fatalf("login through the linked number: person %q", got)
	}
	if got := lastUsed(); !got.Equal(first) {
		t.Errorf("last used %v after a login at %v", got, first)
	}
	// Within the hour: not written again.
	f.now = first.Add(59 * time.Minute)
	f.request(t, "r2")
	sessionPerson(t, f, "r2", res)
	if got := lastUsed(); !got.Equal(first) {
		t.Errorf("last used %v after a login within the hour, want %v kept", got, first)
	}
	// Past the hour: written again.
	f.now = first.Add(61 * time.Minute)
	f.request(t, "r3")
	sessionPerson(t, f, "r3", res)
	if got := lastUsed(); !got.Equal(f.now) {
		t.Errorf("last used %v after a login past the hour, want %v", got, f.now)
	}
	// A login the broker refuses (its level below the request's) records
	// nothing.
	f.now = first.Add(3 * time.Hour)
	f.request(t, "r4", assurance.ACRHigh)
	if next, err, _ := finish(f, "r4", res); err != nil || !strings.Contains(next, "err=level") {
		t.Fatalf("refused login: %q, %v", next, err)
	}
	if got := lastUsed(); !got.Equal(first.Add(61 * time.Minute)) {
		t.Errorf("a refused login recorded a use at %v", got)
	}
}
