package passkeyidp_test

import (
	"context"
	"encoding/base64"
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/provider/passkeyidp"
	"github.com/varde-eid/varde/internal/store"
)

// passkeyNames is person's passkey names by credential ID, as the
// account page's forms send it.
func (h *harness) passkeyNames(t *testing.T, person string) map[string]string {
	t.Helper()
	keys, err := h.db.ListPasskeys(context.Background(), person)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]string{}
	for _, k := range keys {
		names[base64.RawURLEncoding.EncodeToString(k.CredentialID)] = k.Name
	}
	return names
}

// TestRenamePasskey: the account page's Rename asks for a page with the
// passkey's name in a labelled field; its form, posted with the
// session's CSRF token by a session that may change the account,
// renames the passkey, in one write with its event, which names the
// passkey but not the names. Only the person's own passkey is renamed;
// another's is not found, and a login too old is told to log in again.
func TestRenamePasskey(t *testing.T) {
	h := newHarness(t, true)
	h.p.History = h.db
	b := h.browser("en")
	e := b.enrol(newDevice(false), "", "fnr")
	laptop := h.addStoredPasskey(t, e.person, "Laptop")
	renames := func(result string) int { return countEvents(h.auditEvents(t), "passkey_renamed", result) }

	page := b.get("/account")
	if !strings.Contains(page.body, `<form method="get" action="/account/passkeys/rename">`) ||
		!strings.Contains(page.body, `aria-label="Rename the passkey Laptop">Rename</button>`) {
		t.Fatalf("the account page offers no Rename for each passkey:\n%s", page.body)
	}
	csrf := attr(t, page.body, "data-csrf")

	renameURL := "/account/passkeys/rename?" + url.Values{"credential": {laptop}}.Encode()
	r := b.get(renameURL)
	for _, want := range []string{
		"<title>Rename the passkey “Laptop”",
		`<h1 tabindex="-1" autofocus>Rename the passkey “Laptop”</h1>`,
		`<form method="post" action="/account/passkeys/rename" novalidate>`,
		`<label for="passkey-name">New name</label>`,
		`<p class="hint" id="passkey-name-hint">For example: My phone. At most 100 characters.</p>`,
		`<input type="text" id="passkey-name" name="name" value="Laptop"`,
		`aria-describedby="passkey-name-hint">`,
		`name="csrf" value="` + csrf + `"`, `name="credential" value="` + laptop + `"`,
		`<button type="submit">Save</button>`, `<a class="button secondary" href="/account">Cancel</a>`,
		// Its language links keep the passkey it renames.
		`href="?credential=` + laptop + `&amp;lang=nb"`,
	} {
		if r.status != http.StatusOK || !strings.Contains(r.body, want) {
			t.Fatalf("rename page: %d, want %q in\n%s", r.status, want, r.body)
		}
	}
	if strings.Contains(r.body, "aria-invalid") || strings.Contains(r.body, "maxlength") {
		t.Errorf("rename page before any name was refused:\n%s", r.body)
	}

	// The post needs the session's CSRF token.
	for _, v := range []url.Values{
		{"credential": {laptop}, "name": {"Work laptop"}},
		{"credential": {laptop}, "name": {"Work laptop"}, "csrf": {csrf[:len(csrf)-2] + "xx"}},
	} {
		if r := b.form("/account/passkeys/rename", v); r.status != http.StatusForbidden {
			t.Errorf("rename %v: %d, want 403", v, r.status)
		}
	}
	if n := h.passkeyNames(t, e.person)[laptop]; n != "Laptop" || renames(store.ResultSuccess) != 0 {
		t.Fatalf("a rename without the CSRF token changed the name to %q", n)
	}

	// Renamed: spaces around the name dropped; the account page says so
	// and lists the new name; the event names the passkey, not the names.
	r = b.form("/account/passkeys/rename", url.Values{"credential": {laptop}, "csrf": {csrf}, "name": {"  Work laptop "}})
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.location, "/account?n=") {
		t.Fatalf("rename: %d %q\n%s", r.status, r.location, r.body)
	}
	if n := h.passkeyNames(t, e.person)[laptop]; n != "Work laptop" {
		t.Fatalf("name after the rename %q, want %q", n, "Work laptop")
	}
	page = b.get(r.location)
	if !strings.Contains(page.body, "The passkey was renamed.") || !strings.Contains(page.body, "<td>Work laptop</td>") ||
		!strings.Contains(page.body, "<td>A passkey was renamed</td>") {
		t.Fatalf("account page after the rename:\n%s", page.body)
	}
	var renamed *store.AuditEvent
	for _, ev := range h.auditEvents(t) {
		if ev.Type == "passkey_renamed" {
			renamed = ev
		}
	}
	if renamed == nil || renamed.Result != store.ResultSuccess || renamed.PersonID != e.person || renamed.Details["credential"] == "" ||
		renamed.Details["method"] != "passkey" {
		t.Fatalf("rename event %+v", renamed)
	}
	for k, v := range renamed.Details {
		if strings.Contains(v, "aptop") {
			t.Errorf("rename event holds a name in %s: %q", k, v)
		}
	}

	// The same name again changes nothing, and says so.
	r = b.form("/account/passkeys/rename", url.Values{"credential": {laptop}, "csrf": {csrf}, "name": {"Work laptop"}})
	if r.status != http.StatusSeeOther || renames(store.ResultSuccess) != 1 {
		t.Fatalf("rename to the same name: %d, %d renames recorded", r.status, renames(store.ResultSuccess))
	}
	if page := b.get(r.location); !strings.Contains(page.body, "The passkey already had that name. Nothing changed.") {
		t.Errorf("account page after a rename to the same name:\n%s", page.body)
	}

	// Another person's passkey is not this person's to rename, nor to
	// see: not found, and nothing changes.
	other := h.browser("en")
	oe := other.enrol(newDevice(false), "", "fnr")
	theirs := h.addStoredPasskey(t, oe.person, "Theirs")
	if r := b.get("/account/passkeys/rename?credential=" + theirs); r.status != http.StatusNotFound || strings.Contains(r.body, "Theirs") ||
		!strings.Contains(r.body, "That passkey was already removed") {
		t.Fatalf("rename page of another person's passkey: %d\n%s", r.status, r.body)
	}
	if r := b.form("/account/passkeys/rename", url.Values{"credential": {theirs}, "csrf": {csrf}, "name": {"Mine now"}}); r.status != http.StatusNotFound ||
		strings.Contains(r.body, "Theirs") {
		t.Fatalf("rename of another person's passkey: %d\n%s", r.status, r.body)
	}
	if n := h.passkeyNames(t, oe.person)[theirs]; n != "Theirs" {
		t.Fatalf("another person's passkey renamed to %q", n)
	}

	// A made-up credential is a bad request; no session, a login.
	if r := b.get("/account/passkeys/rename?credential=%25%25"); r.status != http.StatusBadRequest {
		t.Errorf("rename page of a malformed credential: %d", r.status)
	}
	if r := h.browser("en").get(renameURL); r.status != http.StatusSeeOther || r.location != "/login" {
		t.Errorf("rename page without a session: %d %q", r.status, r.location)
	}

	// A login left open past ReauthAfter is told to log in again; the
	// page records nothing, the post is refused and recorded, and the
	// person's activity shows the refusal.
	h.now = h.now.Add(passkeyidp.ReauthAfter + time.Minute)
	if r := b.get(renameURL); r.status != http.StatusForbidden || !strings.Contains(r.body, "That change needs a new login first") {
		t.Fatalf("rename page in an old login: %d\n%s", r.status, r.body)
	}
	if got := renames(store.ResultFailure); got != 0 {
		t.Errorf("the rename page recorded %d refusals", got)
	}
	if r := b.form("/account/passkeys/rename", url.Values{"credential": {laptop}, "csrf": {csrf}, "name": {"Stolen"}}); r.status != http.StatusForbidden ||
		!strings.Contains(r.body, "<td><strong>Renaming a passkey was refused</strong></td>") {
		t.Fatalf("rename in an old login: %d\n%s", r.status, r.body)
	}
	if n := h.passkeyNames(t, e.person)[laptop]; n != "Work laptop" || renames(store.ResultFailure) != 1 {
		t.Fatalf("after a rename in an old login: name %q, %d refusals recorded", n, renames(store.ResultFailure))
	}
}

// TestRenameRefusesNames: a name that cannot be given gets the form
// again with a message saying why, tied to the field and in a summary
// linking to it, and with what the person typed; the passkey keeps its
// name. The length is counted in characters: 100 two-byte letters are
// a name, 101 are not.
func TestRenameRefusesNames(t *testing.T) {
	h := newHarness(t, true)
	b := h.browser("en")
	e := b.enrol(newDevice(false), "", "fnr")
	laptop := h.addStoredPasskey(t, e.person, "Laptop")
	h.addStoredPasskey(t, e.person, "Phone")
	csrf := attr(t, b.get("/account").body, "data-csrf")

	const chars = "The name holds characters that cannot be shown as they are, such as line breaks or characters that turn text around. Type the name again without them."
	for _, tt := range []struct {
		name, typed string
		status      int
		message     string
	}{
		{"empty", "", http.StatusBadRequest, "Type a name for the passkey."},
		{"only spaces", "   ", http.StatusBadRequest, "Type a name for the passkey."},
		{"101 characters", strings.Repeat("æ", 101), http.StatusBadRequest, "Give the passkey a name of at most 100 characters."},
		{"a line break", "Work\nlaptop", http.StatusBadRequest, chars},
		{"a control character", "Work\x07laptop", http.StatusBadRequest, chars},
		{"a right-to-left override", "Phone \u202epotpal", http.StatusBadRequest, chars},
		{"a right-to-left isolate", "\u2067Phone\u2069", http.StatusBadRequest, chars},
		{"a line separator", "Work\u2028laptop", http.StatusBadRequest, chars},
		{"another passkey's name in other letters", "PHONE", http.StatusConflict, "You already have a passkey with that name."},
		// Characters of no width would make a name that looks like
		// another's, or like none.
		{"another passkey's name with a zero-width space", "Pho\u200bne", http.StatusConflict, "You already have a passkey with that name."},
		{"nothing but characters of no width", "\u200b\u2060", http.StatusBadRequest, "Type a name for the passkey."},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := b.form("/account/passkeys/rename", url.Values{"credential": {laptop}, "csrf": {csrf}, "name": {tt.typed}})
			for _, want := range []string{
				"<title>Error: Rename the passkey “Laptop”",
				`<div class="notice error-summary" role="alert" tabindex="-1" autofocus aria-labelledby="rename-errors">`,
				`<li><a href="#passkey-name">` + html.EscapeString(tt.message),
				`<p class="error" id="passkey-name-error">Error: ` + html.EscapeString(tt.message),
				`aria-describedby="passkey-name-hint passkey-name-error" aria-invalid="true">`,
			} {
				if r.status != tt.status || !strings.Contains(r.body, want) {
					t.Fatalf("rename to %q: %d, want %d and %q in\n%s", tt.typed, r.status, tt.status, want, r.body)
				}
			}
			// What the person typed is in the field, to correct.
			if got := html.UnescapeString(field(t, r.body, "name")); got != tt.typed {
				t.Errorf("field holds %q after %q was refused", got, tt.typed)
			}
			if strings.Contains(r.body, `<h1 tabindex="-1" autofocus>`) {
				t.Error("both the heading and the error summary ask for focus")
			}
		})
	}
	if n := h.passkeyNames(t, e.person)[laptop]; n != "Laptop" {
		t.Fatalf("a refused name changed the passkey's to %q", n)
	}
	if got := countEvents(h.auditEvents(t), "passkey_renamed", store.ResultSuccess); got != 0 {
		t.Fatalf("%d renames recorded for refused names", got)
	}

	long := strings.Repeat("æ", 100)
	if r := b.form("/account/passkeys/rename", url.Values{"credential": {laptop}, "csrf": {csrf}, "name": {long}}); r.status != http.StatusSeeOther {
		t.Fatalf("rename to 100 characters of 200 bytes: %d\n%s", r.status, r.body)
	}
	// A name typed with a combining accent is stored composed, as one
	// typed with the accented letter.
	if r := b.form("/account/passkeys/rename", url.Values{"credential": {laptop}, "csrf": {csrf}, "name": {"Cafe\u0301"}}); r.status != http.StatusSeeOther {
		t.Fatalf("rename to a decomposed name: %d", r.status)
	}
	if n := h.passkeyNames(t, e.person)[laptop]; n != "Caf\u00e9" {
		t.Errorf("name stored %q, want it composed", n)
	}
}

// TestAddedPasskeyNameFollowsTheRenameRules: a name typed when adding a
// passkey is held to the rules of a rename, text-reordering controls
// included.
func TestAddedPasskeyNameFollowsTheRenameRules(t *testing.T) {
	h := newHarness(t, true)
	b := h.browser("en")
	b.enrol(newDevice(false), "", "fnr")
	csrf := attr(t, b.get("/account").body, "data-csrf")
	for _, name := range []string{"Phone \u202epotpal", strings.Repeat("æ", 101), "Work\u2028laptop", "\u200b"} {
		if r, m := b.json("/account/passkeys/begin", map[string]string{"name": name}, csrf); r.status != http.StatusBadRequest || m["error"] != "passkey_name" {
			t.Errorf("add named %q: %d %v, want 400 passkey_name", name, r.status, m)
		}
	}
	if r, _ := b.json("/account/passkeys/begin", map[string]string{"name": strings.Repeat("æ", 100)}, csrf); r.status != http.StatusOK {
		t.Errorf("add named 100 characters: %d", r.status)
	}
}

// TestRenameInEveryLanguage: the rename page, its errors and the notice
// speak the person's language.
func TestRenameInEveryLanguage(t *testing.T) {
	h := newHarness(t, true)
	for _, l := range []struct{ lang, button, title, label, empty, taken, done string }{
		{"en", "Rename", "Rename the passkey “Laptop”", "New name", "Type a name for the passkey.", "You already have a passkey with that name.", "The passkey was renamed."},
		{"nb", "Endre navn", "Endre navn på passnøkkelen «Laptop»", "Nytt navn", "Skriv et navn på passnøkkelen.", "Du har allerede en passnøkkel med det navnet.", "Passnøkkelen fikk nytt navn."},
		{"da", "Omdøb", "Omdøb adgangsnøglen »Laptop«", "Nyt navn", "Skriv et navn til adgangsnøglen.", "Du har allerede en adgangsnøgle med det navn.", "Adgangsnøglen blev omdøbt."},
	} {
		t.Run(l.lang, func(t *testing.T) {
			b := h.browser(l.lang)
			e := b.enrol(newDevice(false), "", "fnr")
			laptop := h.addStoredPasskey(t, e.person, "Laptop")
			h.addStoredPasskey(t, e.person, "Phone")
			page := b.get("/account")
			if !strings.Contains(page.body, ">"+l.button+"</button>") {
				t.Errorf("account page has no %q button", l.button)
			}
			csrf := attr(t, page.body, "data-csrf")
			if r := b.get("/account/passkeys/rename?credential=" + laptop); r.status != http.StatusOK || !strings.Contains(r.body, `<html lang="`+l.lang+`">`) ||
				!strings.Contains(r.body, "<title>"+l.title) || !strings.Contains(r.body, ">"+l.label+"</label>") {
				t.Errorf("rename page: %d\n%s", r.status, r.body)
			}
			for name, want := range map[string]string{"": l.empty, "phone": l.taken} {
				if r := b.form("/account/passkeys/rename", url.Values{"credential": {laptop}, "csrf": {csrf}, "name": {name}}); !strings.Contains(r.body, want) {
					t.Errorf("rename to %q: %d, want %q in\n%s", name, r.status, want, r.body)
				}
			}
			r := b.form("/account/passkeys/rename", url.Values{"credential": {laptop}, "csrf": {csrf}, "name": {"Hytta"}})
			if page := b.get(r.location); !strings.Contains(page.body, l.done) {
				t.Errorf("account page after the rename: %d %q\n%s", r.status, r.location, page.body)
			}
		})
	}
}

// meanwhile is the real store, where something happens just before a
// rename's write: another tab, or the help desk, at the same account.
type meanwhile struct {
	store.Passkeys
	before func(ctx context.Context, personID string, credentialID []byte) error
}

func (s meanwhile) RenamePasskey(ctx context.Context, personID string, credentialID []byte, name, by string, events ...*store.AuditEvent) error {
	if err := s.before(ctx, personID, credentialID); err != nil {
		return err
	}
	return s.Passkeys.RenamePasskey(ctx, personID, credentialID, name, by, events...)
}

// TestRenameOfAPasskeyRemovedMeanwhile: a passkey removed in another
// tab between the form's check and the rename's write gets the account
// page saying it is gone, and nothing is recorded as renamed.
func TestRenameOfAPasskeyRemovedMeanwhile(t *testing.T) {
	h := newHarness(t, true)
	b := h.browser("en")
	e := b.enrol(newDevice(false), "", "fnr")
	laptop := h.addStoredPasskey(t, e.person, "Laptop")
	csrf := attr(t, b.get("/account").body, "data-csrf")
	live, err := h.db.ListPersonSessions(context.Background(), e.person, h.now)
	if err != nil || len(live) != 1 {
		t.Fatalf("the person's sessions: %v %v", live, err)
	}
	h.p.Passkeys = meanwhile{Passkeys: h.db, before: func(ctx context.Context, personID string, credentialID []byte) error {
		_, err := h.db.DeletePasskey(ctx, personID, credentialID, live[0].ID, h.now, nil)
		return err
	}}
	r := b.form("/account/passkeys/rename", url.Values{"credential": {laptop}, "csrf": {csrf}, "name": {"Work laptop"}})
	if r.status != http.StatusNotFound || !strings.Contains(r.body, "That passkey was already removed") {
		t.Fatalf("rename of a passkey removed meanwhile: %d\n%s", r.status, r.body)
	}
	if got := countEvents(h.auditEvents(t), "passkey_renamed", store.ResultSuccess); got != 0 {
		t.Errorf("%d renames recorded of a passkey removed meanwhile", got)
	}
}

// TestBlockedPersonCannotRename: a block ends the person's sessions, so
// the rename page and its form send them to log in, which a blocked
// person cannot; a block landing between the session's check and the
// rename's write is caught by the write, which changes nothing and is
// recorded as refused.
func TestBlockedPersonCannotRename(t *testing.T) {
	h := newHarness(t, true)
	b := h.browser("en")
	e := b.enrol(newDevice(false), "", "fnr")
	laptop := h.addStoredPasskey(t, e.person, "Laptop")
	csrf := attr(t, b.get("/account").body, "data-csrf")

	h.p.Passkeys = meanwhile{Passkeys: h.db, before: func(ctx context.Context, personID string, _ []byte) error {
		_, err := h.db.BlockPerson(ctx, personID, "stolen phone", h.now, nil)
		return err
	}}
	r := b.form("/account/passkeys/rename", url.Values{"credential": {laptop}, "csrf": {csrf}, "name": {"Mine now"}})
	if r.status != http.StatusSeeOther || r.location != "/login" {
		t.Fatalf("rename as the block lands: %d %q", r.status, r.location)
	}
	if n := h.passkeyNames(t, e.person)[laptop]; n != "Laptop" {
		t.Fatalf("a blocked person's passkey renamed to %q", n)
	}
	var refused *store.AuditEvent
	for _, ev := range h.auditEvents(t) {
		if ev.Type == "passkey_renamed" {
			refused = ev
		}
	}
	if refused == nil || refused.Result != store.ResultFailure || refused.Reason != "person_blocked" {
		t.Fatalf("rename event %+v, want one refused for the block", refused)
	}

	h.p.Passkeys = h.db
	if r := b.get("/account/passkeys/rename?credential=" + laptop); r.status != http.StatusSeeOther || r.location != "/login" {
		t.Errorf("rename page of a blocked person: %d %q", r.status, r.location)
	}
	if r := b.form("/account/passkeys/rename", url.Values{"credential": {laptop}, "csrf": {csrf}, "name": {"Mine now"}}); r.status != http.StatusSeeOther || r.location != "/login" {
		t.Errorf("rename by a blocked person: %d %q", r.status, r.location)
	}
	if n := h.passkeyNames(t, e.person)[laptop]; n != "Laptop" {
		t.Errorf("a blocked person's passkey renamed to %q", n)
	}
}

// TestRenameTypedNameKeptAcrossANewLogin: a person who opened the
// rename page in time and saved a new name after the recent-login
// window closed is sent to log in again (ADR 50), and is told that
// what they typed is kept; logged in again, the rename page of that
// passkey holds it in the field, once, saying it is not saved yet. It
// is kept bound to the person: the browser holds only a random token,
// another person logged in at the same browser does not get it, and
// the rename page of another passkey leaves it. The name is escaped on
// the page, and not in the audit log.
func TestRenameTypedNameKeptAcrossANewLogin(t *testing.T) {
	h := newHarness(t, true)
	b := h.browser("en")
	phone := newDevice(false)
	late := renameTooLate(t, h, b, phone, `Work <laptop> & "dock"`)
	e, laptop, renameURL, r := late.person, late.credential, late.page, late.refusal
	other := h.addStoredPasskey(t, e, "Other")
	if r.status != http.StatusForbidden || !strings.Contains(html.UnescapeString(r.body), "choose Rename again: the name you typed will be in the field") {
		t.Fatalf("rename after the window closed: %d\n%s", r.status, r.body)
	}
	if strings.Contains(r.header.Get("Set-Cookie"), "laptop") {
		t.Errorf("the draft cookie holds the name: %s", r.header.Get("Set-Cookie"))
	}
	if n := h.passkeyNames(t, e)[laptop]; n != "Laptop" {
		t.Fatalf("renamed to %q in an old login", n)
	}
	dump, err := h.db.ListAudit(context.Background(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range dump {
		for _, v := range ev.Details {
			if strings.Contains(v, "laptop>") {
				t.Errorf("an audit event holds the typed name: %v", ev)
			}
		}
	}

	// Logged in again: the other passkey's rename page leaves the
	// draft; the laptop's holds it, escaped, once.
	if r, m := b.login(phone, h.rp, ""); r.status != 200 {
		t.Fatalf("login again: %d %v", r.status, m)
	}
	if r := b.get("/account/passkeys/rename?" + url.Values{"credential": {other}}.Encode()); r.status != http.StatusOK ||
		!strings.Contains(r.body, `value="Other"`) || strings.Contains(r.body, "rename-draft") {
		t.Fatalf("the other passkey's rename page: %d\n%s", r.status, r.body)
	}
	r = b.get(renameURL)
	if r.status != http.StatusOK || !strings.Contains(r.body, `value="Work &lt;laptop&gt; &amp; &#34;dock&#34;"`) ||
		!strings.Contains(r.body, `id="rename-draft"`) || !strings.Contains(r.body, "It is not saved yet") ||
		!strings.Contains(r.body, `aria-describedby="passkey-name-hint rename-draft"`) {
		t.Fatalf("the rename page after logging in again: %d\n%s", r.status, r.body)
	}
	if r := b.get(renameURL); !strings.Contains(r.body, `value="Laptop"`) || strings.Contains(r.body, "rename-draft") {
		t.Errorf("the rename page a second time still holds the draft:\n%s", r.body)
	}
}

// TestRenameDraftIsThePersons: a draft kept for one person is not
// taken by another who logs in at the same browser, and waits for its
// owner; a name longer than any allowed is kept cut to maxDraft (400)
// characters, still too long to be saved.
func TestRenameDraftIsThePersons(t *testing.T) {
	h := newHarness(t, true)
	b := h.browser("en")
	phone := newDevice(false)
	late := renameTooLate(t, h, b, phone, strings.Repeat("é", 1000))
	laptop, renameURL := late.credential, late.page
	if late.refusal.status != http.StatusForbidden {
		t.Fatalf("rename after the window closed: %d", late.refusal.status)
	}
	// Another person logs in at the same browser and opens the rename
	// page of their own passkey: nothing of the first's.
	o := b.enrol(newDevice(false), "", "fnr")
	theirs := h.addStoredPasskey(t, o.person, "Theirs")
	if r := b.get("/account/passkeys/rename?" + url.Values{"credential": {theirs}}.Encode()); r.status != http.StatusOK || strings.Contains(r.body, "éé") || strings.Contains(r.body, "rename-draft") {
		t.Errorf("another person's rename page shows the first's draft (%d)", r.status)
	}
	// The first, logged in again, finds it, cut to 400 characters.
	if r, m := b.login(phone, h.rp, ""); r.status != 200 {
		t.Fatalf("login again: %d %v", r.status, m)
	}
	r := b.get(renameURL)
	if r.status != http.StatusOK || !strings.Contains(r.body, `value="`+strings.Repeat("é", 400)+`"`) {
		t.Fatalf("the owner's rename page after logging in again: %d, without the name cut to 400 characters", r.status)
	}
	if r := b.form("/account/passkeys/rename", url.Values{"credential": {laptop}, "csrf": {attr(t, r.body, "data-keep-csrf")}, "name": {strings.Repeat("é", 400)}}); r.status != http.StatusBadRequest {
		t.Errorf("saving the cut name: %d, want it refused as too long", r.status)
	}
}

// lateRename is what renameTooLate did.
type lateRename struct {
	person, credential, page string
	refusal                  reply
}

// renameTooLate enrols a person in b with phone and gives them a
// passkey "Laptop", opens its rename page, and, once the recent-login
// window has closed, saves typed as its name.
func renameTooLate(t *testing.T, h *harness, b *browser, phone *device, typed string) lateRename {
	t.Helper()
	e := b.enrol(phone, "", "fnr")
	laptop := h.addStoredPasskey(t, e.person, "Laptop")
	page := "/account/passkeys/rename?" + url.Values{"credential": {laptop}}.Encode()
	csrf := attr(t, b.get(page).body, "data-keep-csrf")
	h.now = h.now.Add(passkeyidp.ReauthAfter + time.Minute)
	r := b.form("/account/passkeys/rename", url.Values{"credential": {laptop}, "csrf": {csrf}, "name": {typed}})
	return lateRename{person: e.person, credential: laptop, page: page, refusal: r}
}
