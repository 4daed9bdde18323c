package passkeyidp_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/provider/passkeyidp"
	"github.com/varde-eid/varde/internal/store"
)

// linkedDnr is the number the tests' eID links: never shown, in full or
// in part, on the pages that list it or ask about it.
const linkedDnr = "41018012365"

// linkEID links the D-number to person through the eID "bankid", as a
// link from their session would, and names that eID as the node does.
func (h *harness) linkEID(t *testing.T, person string) {
	t.Helper()
	ctx := context.Background()
	// From the person's one session, which the link leaves live.
	live, err := h.db.ListPersonSessions(ctx, person, h.now)
	if err != nil || len(live) != 1 {
		t.Fatalf("sessions of %s: %d, %v", person, len(live), err)
	}
	id := store.Identifier{Scheme: "no:dnr", Value: linkedDnr, MaxLevel: "substantial", LinkedThrough: "bankid", LinkedAt: h.now.Add(-time.Hour)}
	if _, err := h.db.LinkIdentifiers(ctx, person, []store.Identifier{id}, nil, live[0].ID, h.now, nil); err != nil {
		t.Fatal(err)
	}
	h.p.History = h.db
	h.p.ProviderName = func(id, lang string) string {
		if id == "bankid" {
			return "Demo BankID"
		}
		return ""
	}
}

// otherSession stores a live session of person on another device.
func (h *harness) otherSession(t *testing.T, id, person string) {
	t.Helper()
	s := &store.Session{ID: id, PersonID: person, Provider: "bankid", Level: "substantial", AMR: []string{"ext"},
		AuthTime: h.now, CreatedAt: h.now, ExpiresAt: h.now.Add(time.Hour)}
	if err := h.db.CreateSession(context.Background(), s); err != nil {
		t.Fatal(err)
	}
}

var eidRefRE = regexp.MustCompile(`<form method="get" action="/account/eids/unlink">\s*<input type="hidden" name="eid" value="([A-Za-z0-9_-]+)">`)

// TestUnlinkEIDAsksFirst: the account page lists the eIDs the person
// linked, by the eID's name, the kind of number and when, never the
// number; Remove asks first on a page that says what it means and how
// they can still log in (WCAG 2.2 SC 3.3.4), and only its form, with
// the session's CSRF token, unlinks: in one write the number stops
// finding them, their other sessions end, and both are in their
// activity.
func TestUnlinkEIDAsksFirst(t *testing.T) {
	h := newHarness(t, true)
	ctx := context.Background()
	b := h.browser("en")
	e := b.enrol(newDevice(false), "", "fnr")
	h.linkEID(t, e.person)
	h.otherSession(t, "elsewhere", e.person)
	holder := func() string {
		t.Helper()
		p, err := h.db.GetPersonByIdentifier(ctx, "no:dnr", linkedDnr)
		if err != nil {
			return err.Error()
		}
		return p.ID
	}
	unlinks := func() int { return countEvents(h.auditEvents(t), "link_removed", store.ResultSuccess) }

	if page := b.get("/account"); !strings.Contains(page.body, "No login with it recorded") {
		t.Fatalf("account page of an eID never used says otherwise:\n%s", page.body)
	}
	// Used through the eID: the day is shown, as the pages write a date.
	if err := h.db.NoteIdentifierUse(ctx, e.person, []store.Identifier{{Scheme: "no:dnr", Value: linkedDnr}}, h.now); err != nil {
		t.Fatal(err)
	}
	usedDay := `<time datetime="` + h.now.Format(time.DateOnly) + `">` + h.now.Format("2 Jan 2006") + `</time>`
	page := b.get("/account")
	if !strings.Contains(page.body, usedDay) {
		t.Fatalf("account page does not say the eID was used on %s:\n%s", usedDay, page.body)
	}
	if !strings.Contains(page.body, `<h2 id="eids">eIDs you have added</h2>`) || !strings.Contains(page.body, "<td>Demo BankID</td><td>D-number</td>") ||
		!strings.Contains(page.body, `aria-label="Remove Demo BankID as a way to log in"`) ||
		!strings.Contains(page.body, "You can also log in with any eID that gives us your own national identity number") {
		t.Fatalf("account page without the linked eID:\n%s", page.body)
	}
	m := eidRefRE.FindStringSubmatch(page.body)
	if m == nil {
		t.Fatalf("no Remove form for the linked eID:\n%s", page.body)
	}
	ref := m[1]
	if strings.Contains(ref, linkedDnr[:6]) {
		t.Errorf("the eID's reference %q holds the number", ref)
	}
	// One row: the number the person enrolled with is theirs, and is
	// not offered.
	if n := len(eidRefRE.FindAllString(page.body, -1)); n != 1 {
		t.Errorf("%d eIDs offered for removal, want 1", n)
	}
	csrf := attr(t, page.body, "data-csrf")

	confirmURL := "/account/eids/unlink?" + url.Values{"eid": {ref}}.Encode()
	r := b.get(confirmURL)
	for _, want := range []string{
		"<title>Remove Demo BankID as a way to log in?",
		`<h1 tabindex="-1" autofocus>Remove Demo BankID as a way to log in?</h1>`,
		"nor with any other eID that gives us the same number",
		"you get a new, separate Varde ID",
		"You will also be logged out everywhere else",
		"with your passkey", "with one of your 10 unused recovery codes",
		"with an eID that gives us your own national identity number",
		`name="confirm" value="yes"`, `name="eid" value="` + ref + `"`, `name="csrf" value="` + csrf + `"`,
		`<a class="button secondary" href="/account">No, keep it</a>`, usedDay,
	} {
		if !strings.Contains(r.body, want) {
			t.Fatalf("confirmation page: %d, no %q\n%s", r.status, want, r.body)
		}
	}
	if r.status != http.StatusOK || strings.Contains(r.body, linkedDnr[:6]) || strings.Contains(r.body, linkedDnr[6:]) {
		t.Fatalf("confirmation page: %d, or it shows the number\n%s", r.status, r.body)
	}
	// A post without confirm=yes asks again; one without the CSRF
	// token is refused; neither unlinks.
	if r := b.form("/account/eids/unlink", url.Values{"eid": {ref}, "csrf": {csrf}}); r.status != http.StatusOK || !strings.Contains(r.body, `name="confirm" value="yes"`) {
		t.Fatalf("unlink without confirm: %d\n%s", r.status, r.body)
	}
	if r := b.form("/account/eids/unlink", url.Values{"eid": {ref}, "confirm": {"yes"}}); r.status != http.StatusForbidden {
		t.Fatalf("unlink without the CSRF token: %d", r.status)
	}
	if holder() != e.person || unlinks() != 0 {
		t.Fatalf("unlinked before it was confirmed: holder %s, %d events", holder(), unlinks())
	}

	r = b.form("/account/eids/unlink", url.Values{"eid": {ref}, "csrf": {csrf}, "confirm": {"yes"}})
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.location, "/account?n=") {
		t.Fatalf("confirmed unlink: %d %q", r.status, r.location)
	}
	if got := holder(); !strings.Contains(got, "not found") {
		t.Errorf("the unlinked number still finds %s", got)
	}
	if _, err := h.db.GetSession(ctx, "elsewhere", h.now); err == nil {
		t.Error("the session on another device outlived the unlink")
	}
	var ev *store.AuditEvent
	for _, x := range h.auditEvents(t) {
		if x.Type == "link_removed" {
			ev = x
		}
		for k, v := range x.Details {
			if strings.Contains(v, linkedDnr) {
				t.Errorf("event %s detail %s holds the number", x.Type, k)
			}
		}
	}
	if ev == nil || ev.Result != store.ResultSuccess || ev.PersonID != e.person || ev.Details["provider"] != "bankid" || ev.Details["scheme"] != "no:dnr" {
		t.Fatalf("link_removed event %+v", ev)
	}
	if n := countEvents(h.auditEvents(t), "sessions_ended", store.ResultSuccess); n != 1 {
		t.Errorf("%d sessions_ended events, want 1", n)
	}
	after := b.get(r.location)
	if !strings.Contains(after.body, "The eID was removed as a way to log in. You were logged out everywhere else") ||
		!strings.Contains(after.body, "Demo BankID was removed as a way to log in") || strings.Contains(after.body, "<td>Demo BankID</td>") {
		t.Fatalf("account page after the unlink:\n%s", after.body)
	}
	// Again (the back button, another tab): gone, and the page says so.
	if r := b.get(confirmURL); r.status != http.StatusNotFound || !strings.Contains(r.body, "That eID was already removed") {
		t.Fatalf("confirmation page of an unlinked eID: %d\n%s", r.status, r.body)
	}
	if r := b.form("/account/eids/unlink", url.Values{"eid": {ref}, "csrf": {csrf}, "confirm": {"yes"}}); r.status != http.StatusNotFound {
		t.Fatalf("second unlink: %d", r.status)
	}
	if unlinks() != 1 {
		t.Errorf("%d unlinks recorded, want 1", unlinks())
	}
}

// refusedUnlink checks that the one unlink recorded was refused for
// reason.
func (h *harness) refusedUnlink(t *testing.T, reason string) {
	t.Helper()
	evs := h.auditEvents(t)
	i := slices.IndexFunc(evs, func(e *store.AuditEvent) bool { return e.Type == "link_removed" })
	if i < 0 || evs[i].Result != store.ResultFailure || evs[i].Reason != reason {
		t.Fatalf("no unlink recorded as refused for %s: %v", reason, evs)
	}
}

// linkedAccount enrols a person in a browser, links the test eID to them
// and returns the browser, the person, the eID's reference on their
// account page and the page's CSRF token.
func (h *harness) linkedAccount(t *testing.T, d *device) (*browser, enrolled, string, string) {
	t.Helper()
	b := h.browser("en")
	e := b.enrol(d, "", "fnr")
	h.linkEID(t, e.person)
	page := b.get("/account")
	m := eidRefRE.FindStringSubmatch(page.body)
	if m == nil {
		t.Fatalf("no Remove form for the linked eID:\n%s", page.body)
	}
	return b, e, m[1], attr(t, page.body, "data-csrf")
}

// TestUnlinkEIDOfAnotherPerson: a reference is the person's own: the
// one from another person's page names nothing on this person's.
func TestUnlinkEIDOfAnotherPerson(t *testing.T) {
	h := newHarness(t, true)
	_, te, ref, _ := h.linkedAccount(t, newDevice(false))
	b := h.browser("en")
	b.enrol(newDevice(false), "", "fnr")
	if r := b.get("/account/eids/unlink?eid=" + ref); r.status != http.StatusNotFound || strings.Contains(r.body, "Demo BankID") {
		t.Fatalf("another person's eID: %d\n%s", r.status, r.body)
	}
	csrf := attr(t, b.get("/account").body, "data-csrf")
	if r := b.form("/account/eids/unlink", url.Values{"eid": {ref}, "csrf": {csrf}, "confirm": {"yes"}}); r.status != http.StatusNotFound {
		t.Fatalf("unlink of another person's eID: %d", r.status)
	}
	if p, err := h.db.GetPersonByIdentifier(context.Background(), "no:dnr", linkedDnr); err != nil || p.ID != te.person {
		t.Fatalf("the other person's number: %v, %v", p, err)
	}
}

// TestUnlinkEIDNeedsARecentLogin: a login older than ReauthAfter is told
// to log in again, on the page and at the post, which is recorded as a
// refused removal the person's activity shows.
func TestUnlinkEIDNeedsARecentLogin(t *testing.T) {
	h := newHarness(t, true)
	b, e, ref, csrf := h.linkedAccount(t, newDevice(false))
	h.now = h.now.Add(passkeyidp.ReauthAfter + time.Minute)
	if r := b.get("/account"); eidRefRE.MatchString(r.body) || !strings.Contains(r.body, "<td>Demo BankID</td>") {
		t.Fatalf("an old login's account page offers to remove the eID, or does not list it:\n%s", r.body)
	}
	if r := b.get("/account/eids/unlink?eid=" + ref); r.status != http.StatusForbidden || !strings.Contains(r.body, "That change needs a new login first") {
		t.Fatalf("confirmation page in an old login: %d\n%s", r.status, r.body)
	}
	r := b.form("/account/eids/unlink", url.Values{"eid": {ref}, "csrf": {csrf}, "confirm": {"yes"}})
	if r.status != http.StatusForbidden {
		t.Fatalf("unlink in an old login: %d", r.status)
	}
	h.refusedUnlink(t, "reauth")
	if r := b.get("/account"); !strings.Contains(r.body, "Removing an eID as a way to log in was refused") {
		t.Errorf("the activity does not show the refused unlink:\n%s", r.body)
	}
	if p, err := h.db.GetPersonByIdentifier(context.Background(), "no:dnr", linkedDnr); err != nil || p.ID != e.person {
		t.Fatalf("unlinked from an old login: %v, %v", p, err)
	}
}

// unlinkedMeanwhile ends the session making an unlink just before its
// write, as the person logging out everywhere else from another device
// would.
type unlinkedMeanwhile struct {
	store.Persons
	db  store.Store
	now time.Time
}

func (s unlinkedMeanwhile) UnlinkIdentifier(ctx context.Context, personID string, id store.Identifier, except string, now time.Time, events func(int) []*store.AuditEvent) ([]*store.Session, error) {
	if _, err := s.db.EndSession(ctx, except, s.now); err != nil {
		return nil, err
	}
	return s.Persons.UnlinkIdentifier(ctx, personID, id, except, now, events)
}

// TestUnlinkAsItsSessionEndsUnlinksNothing: the unlink's write reads the
// session making it (ADR 46): one that ended after the page read it
// unlinks nothing, is recorded as refused (session_ended), and the
// browser is sent to log in.
func TestUnlinkAsItsSessionEndsUnlinksNothing(t *testing.T) {
	h := newHarness(t, true)
	b, e, ref, csrf := h.linkedAccount(t, newDevice(false))
	h.p.Persons = unlinkedMeanwhile{Persons: h.db, db: h.db, now: h.now}
	r := b.form("/account/eids/unlink", url.Values{"eid": {ref}, "csrf": {csrf}, "confirm": {"yes"}})
	if r.status != http.StatusSeeOther || r.location != "/login" {
		t.Fatalf("unlink from a session that ended: %d %q", r.status, r.location)
	}
	if p, err := h.db.GetPersonByIdentifier(context.Background(), "no:dnr", linkedDnr); err != nil || p.ID != e.person {
		t.Fatalf("unlinked from a session that ended: %v, %v", p, err)
	}
	h.refusedUnlink(t, "session_ended")
}

// TestUnlinkNeverTheLastNumber: a person whose linked number is the
// only one left (the help desk took the other off) keeps it: the page
// says why and offers nothing to confirm, and a post is refused,
// recorded as refused.
func TestUnlinkNeverTheLastNumber(t *testing.T) {
	h := newHarness(t, true)
	ctx := context.Background()
	d := newDevice(false)
	b, e, ref, _ := h.linkedAccount(t, d)
	p, err := h.db.GetPerson(ctx, e.person)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.db.RemoveIdentifier(ctx, e.person, p.Identifiers[0], h.now, nil); err != nil {
		t.Fatal(err)
	}
	// That ended every session of theirs: they log in again.
	if r, m := b.login(d, h.rp, ""); r.status != http.StatusOK {
		t.Fatalf("login again: %d %v", r.status, m)
	}
	page := b.get("/account")
	if !strings.Contains(page.body, "<td>Demo BankID</td>") {
		t.Fatalf("account page without the linked eID:\n%s", page.body)
	}
	r := b.get("/account/eids/unlink?eid=" + ref)
	if r.status != http.StatusConflict || !strings.Contains(r.body, "You cannot remove this eID") || strings.Contains(r.body, `name="confirm"`) {
		t.Fatalf("confirmation page of the last number: %d\n%s", r.status, r.body)
	}
	csrf := attr(t, page.body, "data-csrf")
	if r := b.form("/account/eids/unlink", url.Values{"eid": {ref}, "csrf": {csrf}, "confirm": {"yes"}}); r.status != http.StatusConflict {
		t.Fatalf("unlink of the last number: %d\n%s", r.status, r.body)
	}
	if q, err := h.db.GetPersonByIdentifier(ctx, "no:dnr", linkedDnr); err != nil || q.ID != e.person {
		t.Fatalf("the last number: %v, %v", q, err)
	}
	h.refusedUnlink(t, "last_number")
}
