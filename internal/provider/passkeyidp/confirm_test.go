package passkeyidp_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/provider/passkeyidp"
	"github.com/varde-eid/varde/internal/store"
)

// countEvents counts the audit events of type typ with result.
func countEvents(events []*store.AuditEvent, typ, result string) int {
	n := 0
	for _, e := range events {
		if e.Type == typ && e.Result == result {
			n++
		}
	}
	return n
}

// addStoredPasskey stores a passkey named name for person and returns
// its credential ID as the account page's forms send it.
func (h *harness) addStoredPasskey(t *testing.T, person, name string) string {
	t.Helper()
	id := []byte("credential-" + person + "-" + name)
	pk := &store.Passkey{CredentialID: id, PersonID: person, PublicKey: []byte{1}, Name: name, CreatedAt: h.now}
	if err := h.db.CreatePasskey(context.Background(), pk, 0, ""); err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(id)
}

// TestRemovePasskeyAsksFirst: removing a passkey deletes what the person
// holds, so the first click only shows a page that names the passkey,
// says what will happen and how the person can still log in, and asks
// (WCAG 2.2 SC 3.3.4). Only its form, posted with confirm=yes, the
// session's CSRF token and a session that may make the change, removes
// the passkey; an old-style post without confirm=yes is asked about
// too. A confirmation used again, the passkey gone meanwhile, gets the
// account page saying so.
func TestRemovePasskeyAsksFirst(t *testing.T) {
	h := newHarness(t, true)
	ctx := context.Background()
	b := h.browser("en")
	e := b.enrol(newDevice(false), "", "fnr")
	laptop := h.addStoredPasskey(t, e.person, "Laptop")
	passkeys := func() int {
		t.Helper()
		keys, err := h.db.ListPasskeys(ctx, e.person)
		if err != nil {
			t.Fatal(err)
		}
		return len(keys)
	}
	removals := func() int { return countEvents(h.auditEvents(t), "passkey_removed", store.ResultSuccess) }

	// The account page's Remove asks for the confirmation page, which a
	// GET shows: a link, no form posted, nothing changed.
	page := b.get("/account")
	if !strings.Contains(page.body, `<form method="get" action="/account/passkeys/remove">`) {
		t.Fatalf("the account page's Remove does not ask for the confirmation page:\n%s", page.body)
	}
	csrf := attr(t, page.body, "data-csrf")

	confirmURL := "/account/passkeys/remove?" + url.Values{"credential": {laptop}}.Encode()
	r := b.get(confirmURL)
	if r.status != http.StatusOK || !strings.Contains(r.body, "<title>Remove the passkey “Laptop”?") ||
		!strings.Contains(r.body, "<h1 tabindex=\"-1\" autofocus>Remove the passkey “Laptop”?</h1>") ||
		!strings.Contains(r.body, "Not used yet") || !strings.Contains(r.body, "you can no longer log in with this passkey") ||
		!strings.Contains(r.body, "You will also be logged out everywhere else") ||
		!strings.Contains(r.body, "with your other passkey") || !strings.Contains(r.body, "with one of your 10 unused recovery codes") ||
		!strings.Contains(r.body, `name="confirm" value="yes"`) || !strings.Contains(r.body, `name="credential" value="`+laptop+`"`) ||
		!strings.Contains(r.body, `name="csrf" value="`+csrf+`"`) || !strings.Contains(r.body, `<a class="button secondary" href="/account">No, keep it</a>`) {
		t.Fatalf("confirmation page: %d\n%s", r.status, r.body)
	}
	// Its language links keep the passkey it asks about.
	if !strings.Contains(r.body, `href="?credential=`+laptop+`&amp;lang=nb"`) {
		t.Errorf("the confirmation page's language links lose the passkey:\n%s", r.body)
	}
	if passkeys() != 2 || removals() != 0 {
		t.Fatalf("showing the confirmation page changed the account: %d passkeys, %d removals", passkeys(), removals())
	}

	// A post without confirm=yes, such as the form of an account page
	// from before this step, shows the same page and removes nothing.
	r = b.form("/account/passkeys/remove", url.Values{"credential": {laptop}, "csrf": {csrf}})
	if r.status != http.StatusOK || !strings.Contains(r.body, "Remove the passkey “Laptop”?") || !strings.Contains(r.body, `name="confirm" value="yes"`) {
		t.Fatalf("remove without confirm: %d\n%s", r.status, r.body)
	}
	r = b.form("/account/passkeys/remove", url.Values{"credential": {laptop}, "csrf": {csrf}, "confirm": {"no"}})
	if r.status != http.StatusOK || !strings.Contains(r.body, `name="confirm" value="yes"`) {
		t.Fatalf("remove with confirm=no: %d\n%s", r.status, r.body)
	}
	if passkeys() != 2 || removals() != 0 {
		t.Fatalf("a post without confirm=yes changed the account: %d passkeys, %d removals", passkeys(), removals())
	}

	// The confirmed post still needs the session's CSRF token.
	for _, v := range []url.Values{
		{"credential": {laptop}, "confirm": {"yes"}},
		{"credential": {laptop}, "confirm": {"yes"}, "csrf": {csrf[:len(csrf)-2] + "xx"}},
	} {
		if r := b.form("/account/passkeys/remove", v); r.status != http.StatusForbidden {
			t.Errorf("confirmed remove %v: %d, want 403", v, r.status)
		}
	}
	if passkeys() != 2 {
		t.Fatal("a confirmation without the CSRF token removed the passkey")
	}

	// Confirmed: removed.
	r = b.form("/account/passkeys/remove", url.Values{"credential": {laptop}, "csrf": {csrf}, "confirm": {"yes"}})
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.location, "/account?n=") {
		t.Fatalf("confirmed remove: %d %q", r.status, r.location)
	}
	if passkeys() != 1 || removals() != 1 {
		t.Fatalf("after the confirmed remove: %d passkeys, %d removals", passkeys(), removals())
	}

	// The confirmation page again (the back button), or its form posted
	// again (another tab): the passkey is gone, and the account page
	// says so.
	if r := b.get(confirmURL); r.status != http.StatusNotFound || !strings.Contains(r.body, "That passkey was already removed") || !strings.Contains(r.body, `id="passkeys"`) {
		t.Fatalf("confirmation page of a removed passkey: %d\n%s", r.status, r.body)
	}
	if r := b.form("/account/passkeys/remove", url.Values{"credential": {laptop}, "csrf": {csrf}, "confirm": {"yes"}}); r.status != http.StatusNotFound ||
		!strings.Contains(r.body, "That passkey was already removed") {
		t.Fatalf("confirmed remove of a removed passkey: %d\n%s", r.status, r.body)
	}
	// Another person's passkey is not this person's to remove, nor to see.
	other := h.browser("en")
	oe := other.enrol(newDevice(false), "", "fnr")
	theirs := h.addStoredPasskey(t, oe.person, "Theirs")
	if r := b.get("/account/passkeys/remove?credential=" + theirs); r.status != http.StatusNotFound || strings.Contains(r.body, "Theirs") {
		t.Fatalf("confirmation page of another person's passkey: %d\n%s", r.status, r.body)
	}

	// A made-up credential is a bad request; no session, a login.
	if r := b.get("/account/passkeys/remove?credential=%25%25"); r.status != http.StatusBadRequest {
		t.Errorf("confirmation page of a malformed credential: %d", r.status)
	}
	if r := h.browser("en").get(confirmURL); r.status != http.StatusSeeOther || r.location != "/login" {
		t.Errorf("confirmation page without a session: %d %q", r.status, r.location)
	}

	// The only passkey, with no recovery codes left: the page says it
	// cannot go, as the removal itself would, and offers no way to.
	if err := h.db.ReplaceRecoveryCodes(ctx, e.person, nil, h.now); err != nil {
		t.Fatal(err)
	}
	keys, _ := h.db.ListPasskeys(ctx, e.person)
	last := base64.RawURLEncoding.EncodeToString(keys[0].CredentialID)
	r = b.get("/account/passkeys/remove?credential=" + last)
	if r.status != http.StatusConflict || !strings.Contains(r.body, "You cannot remove your only passkey") || strings.Contains(r.body, `name="confirm"`) {
		t.Fatalf("confirmation page of the last way in: %d\n%s", r.status, r.body)
	}
	if r := b.form("/account/passkeys/remove", url.Values{"credential": {last}, "csrf": {csrf}, "confirm": {"yes"}}); r.status != http.StatusConflict {
		t.Fatalf("confirmed remove of the last way in: %d", r.status)
	}
	if passkeys() != 1 {
		t.Fatal("the last way in was removed")
	}

	// A login left open past ReauthAfter is told to log in again before
	// it is asked anything; the page changes nothing, and records
	// nothing (a link from anywhere could ask for it).
	h.now = h.now.Add(passkeyidp.ReauthAfter + time.Minute)
	refused := countEvents(h.auditEvents(t), "passkey_removed", store.ResultFailure)
	if r := b.get("/account/passkeys/remove?credential=" + last); r.status != http.StatusForbidden || !strings.Contains(r.body, "That change needs a new login first") {
		t.Fatalf("confirmation page in an old login: %d\n%s", r.status, r.body)
	}
	if got := countEvents(h.auditEvents(t), "passkey_removed", store.ResultFailure); got != refused {
		t.Errorf("the confirmation page recorded %d refused removals", got-refused)
	}
	// The post, confirmed or not, is refused and recorded as before.
	if r := b.form("/account/passkeys/remove", url.Values{"credential": {last}, "csrf": {csrf}, "confirm": {"yes"}}); r.status != http.StatusForbidden {
		t.Fatalf("confirmed remove in an old login: %d", r.status)
	}
	if got := countEvents(h.auditEvents(t), "passkey_removed", store.ResultFailure); got != refused+1 {
		t.Errorf("a confirmed removal in an old login recorded %d refusals, want 1", got-refused)
	}
}

// TestNewCodesAskFirstWhenSomeAreHeld: new recovery codes void the ones
// the person holds, so while they hold some the button asks first, on a
// page saying so (WCAG 2.2 SC 3.3.4); a person who holds none gets codes
// at once, since nothing is lost.
func TestNewCodesAskFirstWhenSomeAreHeld(t *testing.T) {
	h := newHarness(t, true)
	ctx := context.Background()
	b := h.browser("en")
	e := b.enrol(newDevice(false), "", "fnr")
	made := func() int {
		return countEvents(h.auditEvents(t), "recovery_codes_regenerated", store.ResultSuccess)
	}
	before := made() // the enrolment's

	page := b.get("/account")
	if !strings.Contains(page.body, `<form method="get" action="/account/recovery-codes/new">`) {
		t.Fatalf("the account page's new codes button does not ask first:\n%s", page.body)
	}
	csrf := attr(t, page.body, "data-csrf")

	r := b.get("/account/recovery-codes/new")
	if r.status != http.StatusOK || !strings.Contains(r.body, "<title>Make new recovery codes?") ||
		!strings.Contains(r.body, "You have 10 unused recovery codes.") || !strings.Contains(r.body, "will stop working at once") ||
		!strings.Contains(r.body, "You will get 10 new ones") || !strings.Contains(r.body, "You will also be logged out everywhere else") ||
		!strings.Contains(r.body, `name="confirm" value="yes"`) || !strings.Contains(r.body, `name="csrf" value="`+csrf+`"`) ||
		!strings.Contains(r.body, `href="/account">No, keep my codes</a>`) {
		t.Fatalf("new codes confirmation page: %d\n%s", r.status, r.body)
	}
	// An old-style post, without confirm=yes, is asked about too.
	r = b.form("/account/recovery-codes", url.Values{"csrf": {csrf}})
	if r.status != http.StatusOK || !strings.Contains(r.body, `name="confirm" value="yes"`) || len(codesIn(r.body)) != 0 {
		t.Fatalf("new codes without confirm: %d %q\n%s", r.status, r.location, r.body)
	}
	if made() != before {
		t.Fatal("asking about new codes made them")
	}
	if r := b.form("/account/recovery-codes", url.Values{"confirm": {"yes"}}); r.status != http.StatusForbidden {
		t.Fatalf("confirmed new codes without csrf: %d", r.status)
	}
	r = b.form("/account/recovery-codes", url.Values{"csrf": {csrf}, "confirm": {"yes"}})
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.location, "/account/recovery-codes?") {
		t.Fatalf("confirmed new codes: %d %q", r.status, r.location)
	}
	if made() != before+1 {
		t.Fatalf("%d sets of codes made, want 1", made()-before)
	}

	// Holding none, the person gets codes at once: nothing is lost.
	if err := h.db.ReplaceRecoveryCodes(ctx, e.person, nil, h.now); err != nil {
		t.Fatal(err)
	}
	page = b.get("/account")
	if !strings.Contains(page.body, `<form method="post" action="/account/recovery-codes">`) {
		t.Fatalf("the account page of a person without codes asks first:\n%s", page.body)
	}
	if r := b.form("/account/recovery-codes", url.Values{"csrf": {csrf}}); r.status != http.StatusSeeOther || made() != before+2 {
		t.Fatalf("new codes while holding none: %d", r.status)
	}

	// An old login is told to log in again, and nothing is recorded.
	h.now = h.now.Add(passkeyidp.ReauthAfter + time.Minute)
	refused := countEvents(h.auditEvents(t), "recovery_codes_regenerated", store.ResultFailure)
	if r := b.get("/account/recovery-codes/new"); r.status != http.StatusForbidden || !strings.Contains(r.body, "That change needs a new login first") {
		t.Fatalf("new codes confirmation page in an old login: %d\n%s", r.status, r.body)
	}
	if got := countEvents(h.auditEvents(t), "recovery_codes_regenerated", store.ResultFailure); got != refused {
		t.Errorf("the confirmation page recorded %d refusals", got-refused)
	}
	if r := h.browser("en").get("/account/recovery-codes/new"); r.status != http.StatusSeeOther || r.location != "/login" {
		t.Errorf("new codes confirmation page without a session: %d %q", r.status, r.location)
	}
}

// TestConfirmPagesInEveryLanguage: the confirmation pages speak the
// person's language.
func TestConfirmPagesInEveryLanguage(t *testing.T) {
	h := newHarness(t, true)
	for _, l := range []struct{ lang, remove, codes, yes string }{
		{"en", "Remove the passkey “Laptop”?", "Make new recovery codes?", "Yes, remove it"},
		{"nb", "Fjerne passnøkkelen «Laptop»?", "Lage nye gjenopprettingskoder nå?", "Ja, fjern den"},
		{"da", "Fjerne adgangsnøglen »Laptop«?", "Lave nye genoprettelseskoder?", "Ja, fjern den"},
	} {
		b := h.browser(l.lang)
		e := b.enrol(newDevice(false), "", "fnr")
		laptop := h.addStoredPasskey(t, e.person, "Laptop")
		if r := b.get("/account/passkeys/remove?credential=" + laptop); r.status != http.StatusOK || !strings.Contains(r.body, `<html lang="`+l.lang+`">`) ||
			!strings.Contains(r.body, "<title>"+l.remove) || !strings.Contains(r.body, l.yes) {
			t.Errorf("%s: remove confirmation: %d\n%s", l.lang, r.status, r.body)
		}
		if r := b.get("/account/recovery-codes/new"); r.status != http.StatusOK || !strings.Contains(r.body, "<h1 tabindex=\"-1\" autofocus>"+l.codes+"</h1>") {
			t.Errorf("%s: new codes confirmation: %d\n%s", l.lang, r.status, r.body)
		}
	}
}
