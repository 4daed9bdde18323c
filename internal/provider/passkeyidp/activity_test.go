package passkeyidp_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/passkey"
	"github.com/varde-eid/varde/internal/provider/passkeyidp"
	"github.com/varde-eid/varde/internal/session"
	"github.com/varde-eid/varde/internal/store"
)

// TestAccountShowsActivity: the account page lists what happened with
// the person's identity, newest first, in words a person reads: logins
// and refused logins by the way they used, what each service received,
// changes to the account. Tokens, logouts and other persons' events are
// not shown, and no value beyond names.
func TestAccountShowsActivity(t *testing.T) {
	h, b, e := activityAtTestBank(t)
	h.p.ProviderName = func(id, lang string) string {
		return map[string]string{"bankid": "Demo BankID"}[id]
	}
	h.appendEvents(t, []*store.AuditEvent{
		{Type: "authentication", PersonID: e.person, ClientID: "bank", Provider: "bankid", Level: "high", Result: store.ResultSuccess},
		{Type: "consent", PersonID: e.person, ClientID: "bank", Provider: "bankid", Level: "high", Result: store.ResultSuccess,
			Details: map[string]string{"claims": "name birthdate", "basis": "registration"}},
		{Type: "token", PersonID: e.person, ClientID: "bank", Result: store.ResultSuccess},
		{Type: "logout", PersonID: e.person, Result: store.ResultSuccess},
		{Type: "authentication", PersonID: "someone-else", ClientID: "bank", Provider: "bankid", Level: "high", Result: store.ResultSuccess},
		{Type: "authentication", PersonID: e.person, ClientID: "gone", Provider: "bankid", Level: "high", Result: store.ResultFailure, Reason: "insufficient_level"},
		// This provider's logins, as the broker records them: the way
		// used is in Details["method"], and a login with a recovery code
		// is told apart from one with a passkey.
		{Type: "authentication", PersonID: e.person, Provider: "passkey", Level: "low", Result: store.ResultSuccess,
			Details: map[string]string{"method": "recovery-code"}},
		{Type: "authentication", PersonID: e.person, ClientID: "bank", Provider: "passkey", Level: "high", Result: store.ResultFailure,
			Reason: "insufficient_level", Details: map[string]string{"method": "recovery-code"}},
		{Type: "authentication", PersonID: e.person, Provider: "passkey", Level: "high", Result: store.ResultSuccess,
			Details: map[string]string{"method": "passkey"}},
	})
	r := b.get("/account")
	if r.status != http.StatusOK {
		t.Fatalf("account: %d", r.status)
	}
	rows := activityRows(t, r.body)
	want := [][2]string{
		{"Logged in with a passkey, at level high", "–"},
		{"A login with a recovery code was refused", "Test Bank"},
		{"Logged in with a recovery code, at level low", "–"},
		{"A login with Demo BankID was refused", "–"},
		{"The service received: an identifier for you that only this service gets, your full name, your date of birth", "Test Bank"},
		{"Logged in with Demo BankID, at level high", "Test Bank"},
		{"New recovery codes were made", "–"},
		{"Your identity was created with a passkey", "–"},
	}
	if len(rows) != len(want) {
		t.Fatalf("activity rows %q, want %q", rows, want)
	}
	for i, w := range want {
		if rows[i][1] != w[0] || rows[i][2] != w[1] || rows[i][0] == "" {
			t.Errorf("row %d = %q, want %q", i, rows[i], w)
		}
	}
	// The same in Norwegian.
	nb := b.get("/account?lang=nb")
	if !strings.Contains(nb.body, "Logget inn med Demo BankID, på nivå høyt") || !strings.Contains(nb.body, "Logget inn med en gjenopprettingskode, på nivå lavt") || !strings.Contains(nb.body, "Siste aktivitet") {
		t.Errorf("Norwegian activity: %s", nb.body)
	}

	// Without a history the section is not there at all.
	h.p.History = nil
	if r := b.get("/account"); strings.Contains(r.body, `id="activity"`) {
		t.Error("activity shown without a history")
	}
}

// activityAtTestBank is a harness whose account pages show the
// person's activity and name its services, with "Test Bank" (bank)
// registered, and an English browser with a person enrolled in it.
func activityAtTestBank(t *testing.T) (*harness, *browser, enrolled) {
	t.Helper()
	h := newHarness(t, true)
	h.p.History, h.p.Clients = h.db, h.db
	b := h.browser("en")
	e := b.enrol(newDevice(false), "", "fnr")
	if err := h.db.AddClient(context.Background(), &store.Client{ID: "bank", Name: "Test Bank", AuthMethod: store.AuthNone,
		RedirectURIs: []string{"https://bank.example/cb"}, CreatedAt: h.now}, nil); err != nil {
		t.Fatal(err)
	}
	return h, b, e
}

// activityRows reads the activity table: when, what, service, address.
func activityRows(t *testing.T, body string) [][4]string {
	t.Helper()
	i := strings.Index(body, `id="activity"`)
	if i < 0 {
		t.Fatalf("no activity section: %s", body)
	}
	body = body[i:]
	if j := strings.Index(body, "</table>"); j >= 0 {
		body = body[:j]
	}
	var out [][4]string
	tags := regexp.MustCompile(`<[^>]+>`)
	for _, m := range regexp.MustCompile(`(?s)<tr><td>(.*?)</td><td>(.*?)</td><td>(.*?)</td><td>(.*?)</td></tr>`).FindAllStringSubmatch(body, -1) {
		out = append(out, [4]string{m[1], tags.ReplaceAllString(m[2], ""), m[3], tags.ReplaceAllString(m[4], "")})
	}
	return out
}

// TestActivitySaysWhereFrom: each line of the activity whose event holds
// the address of the client it came from shows it, so that a person can
// tell a login from their own network from one elsewhere; a line
// without one, or whose address was deleted after its retention, shows
// "–". The column and what it means, that the address is kept for a
// limited time included, are in every page language.
func TestActivitySaysWhereFrom(t *testing.T) {
	h := newHarness(t, true)
	h.p.History, h.p.Clients = h.db, h.db
	b := h.browser("en")
	e := b.enrol(newDevice(false), "", "fnr")
	h.appendEvents(t, []*store.AuditEvent{
		{Type: "authentication", PersonID: e.person, Provider: "passkey", Level: "high", Result: store.ResultSuccess,
			Details: map[string]string{"method": "passkey", store.DetailAddr: "2001:db8::7"}},
		{Type: "authentication", PersonID: e.person, Provider: "passkey", Level: "high", Result: store.ResultFailure,
			Reason: "insufficient_level", Details: map[string]string{"method": "recovery-code", store.DetailAddr: "203.0.113.9"}},
	})
	rows := activityRows(t, b.get("/account").body)
	if len(rows) < 3 {
		t.Fatalf("activity rows %q", rows)
	}
	for i, want := range []string{"203.0.113.9", "2001:db8::7", "–"} {
		if rows[i][3] != want {
			t.Errorf("row %d = %q, want the address %q", i, rows[i], want)
		}
	}
	// Deleted after their retention (ADR 38), the lines stay, with "–".
	if _, err := h.db.DeleteAuditAddresses(t.Context(), h.now.Add(time.Hour), h.now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	rows = activityRows(t, b.get("/account").body)
	for i := range 3 {
		if rows[i][3] != "–" {
			t.Errorf("after the addresses were deleted, row %d = %q, want \"–\"", i, rows[i])
		}
	}
	for lang, want := range map[string][]string{
		"en": {">From address</th>", "The address is the internet address", "We keep it for a limited time and then delete it"},
		"nb": {">Fra adresse</th>", "Adressen er internettadressen", "Vi tar vare på den en begrenset tid og sletter den så"},
		"da": {">Fra adresse</th>", "Adressen er internetadressen", "Vi gemmer den i en begrænset tid og sletter den så"},
	} {
		body := b.get("/account?lang=" + lang).body
		for _, w := range want {
			if !strings.Contains(body, w) {
				t.Errorf("%s: the account page lacks %q", lang, w)
			}
		}
	}
}

// A passkey whose signature verifies but whose counter went back (a
// copy of it may be in other hands) fails the login, and the failure is
// recorded as its person's: they see it on their account page, and the
// audit event names the passkey.
func TestUntrustedPasskeyIsShownToItsPerson(t *testing.T) {
	h := newHarness(t, true)
	h.p.History = h.db
	owner := h.browser("en")
	d := newDevice(false)
	e := owner.enrol(d, "", "fnr")
	if r, m := h.browser("en").login(d, h.rp, "a1"); r.status != http.StatusOK {
		t.Fatalf("login: %d %v", r.status, m)
	}
	d.cred.Counter = 0 // the copy's counter is behind the original's
	r, m := h.browser("en").login(d, h.rp, "a2")
	if r.status != http.StatusBadRequest || m["error"] != "cloned_authenticator" {
		t.Fatalf("login with a copy: %d %v", r.status, m)
	}
	var found bool
	for _, ev := range h.auditEvents(t) {
		if ev.Type == "authentication" && ev.Reason == "cloned_authenticator" {
			found = ev.PersonID == e.person && ev.Details["credential"] != "" && ev.Details["method"] == "passkey"
		}
	}
	if !found {
		t.Fatalf("the refused login is not recorded as %s's with the passkey: %v", e.person, h.auditEvents(t))
	}
	rows := activityRows(t, owner.get("/account").body)
	if len(rows) == 0 || rows[0][1] != "A login with a passkey was refused" {
		t.Fatalf("activity %q, want the refused login first", rows)
	}
}

// A change to the account that was refused is in the person's activity,
// marked: a login left open past ReauthAfter that tries to remove a
// passkey or make new codes, and removing the last way in.
func TestRefusedChangesAreShownToThePerson(t *testing.T) {
	h := newHarness(t, true)
	h.p.History = h.db
	b := h.browser("en")
	b.enrol(newDevice(false), "", "fnr")
	page := b.get("/account")
	csrf := attr(t, page.body, "data-csrf")
	cred := regexp.MustCompile(`name="credential" value="([^"]+)"`).FindStringSubmatch(page.body)
	if cred == nil {
		t.Fatalf("no remove form:\n%s", page.body)
	}
	h.now = h.now.Add(passkeyidp.ReauthAfter + time.Minute)
	if r := b.form("/account/passkeys/remove", url.Values{"confirm": {"yes"}, "credential": {cred[1]}, "csrf": {csrf}}); r.status != http.StatusForbidden {
		t.Fatalf("remove with an old login: %d", r.status)
	}
	if r := b.form("/account/recovery-codes", url.Values{"confirm": {"yes"}, "csrf": {csrf}}); r.status != http.StatusForbidden {
		t.Fatalf("new codes with an old login: %d", r.status)
	}
	rows := activityRows(t, b.get("/account").body)
	if len(rows) < 2 || rows[0][1] != "Making new recovery codes was refused" || rows[1][1] != "Removing a passkey was refused" {
		t.Fatalf("activity %q, want the refused changes first", rows)
	}
	if nb := b.get("/account?lang=nb"); !strings.Contains(nb.body, "<strong>Å fjerne en passnøkkel ble avvist</strong>") {
		t.Errorf("Norwegian activity: %s", nb.body)
	}
}

// New recovery codes waiting to be shown are not readable from the
// store: the ticket that holds them is sealed with a key only its token,
// in the browser's link, gives.
func TestWaitingRecoveryCodesAreSealed(t *testing.T) {
	h := newHarness(t, true)
	b := h.browser("en")
	b.enrol(newDevice(false), "", "fnr")
	csrf := attr(t, b.get("/account").body, "data-csrf")
	r := b.form("/account/recovery-codes", url.Values{"confirm": {"yes"}, "csrf": {csrf}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("new codes: %d", r.status)
	}
	var held [][]byte
	rows, err := h.db.Pools()["write"].QueryContext(context.Background(), "SELECT id, data FROM challenges")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		var data []byte
		if err := rows.Scan(&id, &data); err != nil {
			t.Fatal(err)
		}
		held = append(held, []byte(id), data)
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	codes := codesIn(b.get(r.location).body)
	if len(codes) != passkeyidp.RecoveryCodeCount {
		t.Fatalf("%d codes shown", len(codes))
	}
	for _, c := range codes {
		for _, v := range held {
			if bytes.Contains(v, []byte(c)) || bytes.Contains(v, []byte(strings.ReplaceAll(c, "-", ""))) {
				t.Fatalf("code %s readable in the challenge store", c)
			}
		}
	}
}

// Only a login with a recovery code is told it was one: an eID login
// whose amr names a one-time code ("otp") is not.
func TestAccountSaysRecoveredOnlyForARecoveryCode(t *testing.T) {
	h := newHarness(t, true)
	e := h.browser("en").enrol(newDevice(false), "", "fnr")
	rec := httptest.NewRecorder()
	if err := h.p.Sessions.Start(context.Background(), rec, httptest.NewRequest("GET", "/", nil), &store.Session{
		PersonID: e.person, Provider: "bankid", Level: "high", AMR: []string{"pwd", "otp", "mfa"}, AuthTime: h.now,
	}); err != nil {
		t.Fatal(err)
	}
	b := h.browser("en")
	origin, _ := url.Parse(h.origin)
	b.c.Jar.SetCookies(origin, rec.Result().Cookies())
	page := b.get("/account")
	if page.status != http.StatusOK || strings.Contains(page.body, "You logged in with a recovery code") {
		t.Fatalf("account after an eID login with otp: %d\n%s", page.status, page.body)
	}

	// A login with a recovery code is.
	r := h.browser("en")
	csrf := field(t, r.get("/passkey/recover?attempt=").body, "csrf")
	if res := r.form("/passkey/recover", url.Values{"attempt": {""}, "csrf": {csrf}, "code": {e.codes[0]}}); res.status != http.StatusSeeOther {
		t.Fatalf("recovery: %d", res.status)
	}
	if page := r.get("/account"); !strings.Contains(page.body, "You logged in with a recovery code") {
		t.Fatalf("account after a recovery code:\n%s", page.body)
	}
}

// New codes whose page was never opened in the ticket's lifetime are
// not said to have been shown.
func TestUnseenCodesAreNotSaidToBeShown(t *testing.T) {
	h := newHarness(t, true)
	b := h.browser("en")
	b.enrol(newDevice(false), "", "fnr")
	csrf := attr(t, b.get("/account").body, "data-csrf")
	r := b.form("/account/recovery-codes", url.Values{"confirm": {"yes"}, "csrf": {csrf}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("new codes: %d", r.status)
	}
	h.now = h.now.Add(11 * time.Minute)
	page := b.get(r.location)
	if page.status != http.StatusGone || strings.Contains(page.body, "already shown") || strings.Contains(page.body, "The codes you were shown") ||
		!strings.Contains(page.body, "only in the ten minutes after they are made") {
		t.Fatalf("codes page after the ticket expired: %d\n%s", page.status, page.body)
	}
}

// A link that raised the level of an eID the person had linked already
// is a change to their ways in: the account page says what it did, and
// the activity shows it; a link that changed nothing is not shown.
func TestRaisedLinkIsShownToThePerson(t *testing.T) {
	h := newHarness(t, true)
	h.p.History = h.db
	h.p.ProviderName = func(id, lang string) string {
		return map[string]string{"bankid": "Demo BankID"}[id]
	}
	b := h.browser("en")
	e := b.enrol(newDevice(false), "", "fnr")
	h.appendEvents(t, []*store.AuditEvent{
		{Type: "link", PersonID: e.person, Provider: "bankid", Level: "high", Result: store.ResultSuccess,
			Details: map[string]string{"already": "true"}},
		{Type: "link", PersonID: e.person, Provider: "bankid", Level: "high", Result: store.ResultSuccess,
			Details: map[string]string{"already": "true", "raised_from": "substantial", "sessions_ended": "1", "session": b.sessionRef(t)}},
	})
	r := b.get("/account?done=raised")
	if !strings.Contains(r.body, "It now logs you in at the level of the login you used now.") {
		t.Errorf("account after a raise does not say so:\n%s", r.body)
	}
	rows := activityRows(t, r.body)
	if len(rows) != 3 || rows[0][1] != "Demo BankID now logs you in at a higher level" {
		t.Errorf("activity rows %q, want the raise above the enrolment's codes and the creation", rows)
	}
}

// A link refused for what the session or the eID's answer was (a login
// too old, another person's identifier, another number of a scheme they
// hold) is shown to the person, as a refused change of passkeys is: one they did not try is someone else at
// their account. One they cancelled, or one the eID was down for, is
// not.
func TestRefusedLinkIsShownToThePerson(t *testing.T) {
	h := newHarness(t, true)
	h.p.History = h.db
	h.p.ProviderName = func(id, lang string) string {
		return map[string]string{"bankid": "Demo BankID"}[id]
	}
	b := h.browser("en")
	e := b.enrol(newDevice(false), "", "fnr")
	h.appendEvents(t, []*store.AuditEvent{
		{Type: "link", PersonID: e.person, Provider: "bankid", Result: store.ResultFailure, Reason: "cancelled"},
		{Type: "link", PersonID: e.person, Provider: "bankid", Result: store.ResultFailure, Reason: "provider_down"},
		{Type: "link", PersonID: e.person, Provider: "bankid", Level: "high", Result: store.ResultFailure, Reason: "identifier_taken"},
		{Type: "link", PersonID: e.person, Provider: "bankid", Result: store.ResultFailure, Reason: "reauth"},
		// Another number of a scheme the person holds: someone else's
		// eID, perhaps, tried on their account.
		{Type: "link", PersonID: e.person, Provider: "bankid", Level: "high", Result: store.ResultFailure, Reason: "second_number"},
	})
	rows := activityRows(t, b.get("/account").body)
	want := "Adding Demo BankID as a way to log in was refused"
	if len(rows) != 5 || rows[0][1] != want || rows[1][1] != want || rows[2][1] != want {
		t.Errorf("activity rows %q, want three refused links above the enrolment's codes and the creation", rows)
	}
}

// A change that failed for this server's own reasons (the store out of
// reach, a write that got no answer, a defect) is not shown as refused: read as refused it would
// tell the person that someone else was at their account. One refused
// for a login too old is.
func TestChangeFailedOnOurSideIsNotShownAsRefused(t *testing.T) {
	h := newHarness(t, true)
	h.p.History = h.db
	b := h.browser("en")
	e := b.enrol(newDevice(false), "", "fnr")
	h.appendEvents(t, []*store.AuditEvent{
		{Type: "passkey_removed", PersonID: e.person, Result: store.ResultFailure, Reason: "store_unavailable"},
		{Type: "logged_out_elsewhere", PersonID: e.person, Result: store.ResultFailure, Reason: "store_unavailable"},
		{Type: "offline_access_stopped", PersonID: e.person, Result: store.ResultFailure, Reason: "internal"},
		{Type: "recovery_codes_regenerated", PersonID: e.person, Result: store.ResultFailure, Reason: "outcome_unknown"},
		{Type: "passkey_removed", PersonID: e.person, Result: store.ResultFailure, Reason: "reauth"},
	})
	rows := activityRows(t, b.get("/account").body)
	if len(rows) != 3 || rows[0][1] != "Removing a passkey was refused" {
		t.Errorf("activity rows %q, want one refused removal above the enrolment's codes and the creation", rows)
	}
}

// TestActivityWithMissingFieldsShowsNoKeys: every kind of activity line,
// from an event that lacks what it usually names (no level, a level
// this build has no word for, no way to log in, no claims), reads as
// words in every language, never as a message key.
func TestActivityWithMissingFieldsShowsNoKeys(t *testing.T) {
	h := newHarness(t, true)
	ctx := context.Background()
	h.p.History, h.p.Clients = h.db, h.db
	b := h.browser("en")
	e := b.enrol(newDevice(false), "", "fnr")
	ok, fail := store.ResultSuccess, store.ResultFailure
	for _, ev := range []*store.AuditEvent{
		{Type: "authentication", Result: ok},
		{Type: "authentication", Provider: "bankid", Level: "very-high", Result: ok},
		{Type: "authentication", Provider: "passkey", Result: ok, Details: map[string]string{"method": "recovery-code"}},
		{Type: "authentication", Result: fail},
		{Type: "consent", Result: ok},
		{Type: "link", Result: ok},
		{Type: "link", Result: ok, Details: map[string]string{"already": "1", "raised_from": "low"}},
		{Type: "link", Result: fail, Reason: "reauth"},
		{Type: "person_created", Result: ok},
		{Type: "profile_updated", Result: ok},
		{Type: "passkey_added", Result: ok},
		{Type: "passkey_added", Result: fail},
		{Type: "passkey_removed", Result: ok},
		{Type: "passkey_removed", Result: fail},
		{Type: "recovery_codes_regenerated", Result: ok},
		{Type: "recovery_codes_regenerated", Result: fail},
		{Type: "sessions_ended", Result: ok},
	} {
		ev.PersonID, ev.Time = e.person, h.now.Add(time.Minute)
		if err := h.db.AppendAudit(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	for _, lang := range []string{"nb", "en", "da"} {
		rows := activityRows(t, b.get("/account?lang="+lang).body)
		if len(rows) < 18 {
			t.Fatalf("%s: %d activity rows, want every line: %q", lang, len(rows), rows)
		}
		for _, r := range rows {
			if strings.Contains(r[1], "account.") || strings.Contains(r[1], "%!") || strings.Contains(r[1], " , ") {
				t.Errorf("%s: activity line %q", lang, r[1])
			}
		}
	}
}

// TestAbandonedPasskeyAddIsNotShownAsRefused: a passkey the person set
// out to add but left until its ceremony expired is audited with its
// reason, and the activity does not call it a refused change; one turned
// down for a login too old is.
func TestAbandonedPasskeyAddIsNotShownAsRefused(t *testing.T) {
	h := newHarness(t, true)
	h.p.History = h.db
	b := h.browser("en")
	b.enrol(newDevice(false), "", "fnr")
	csrf := attr(t, b.get("/account").body, "data-csrf")
	r, begun := b.json("/account/passkeys/begin", map[string]string{"name": "Laptop"}, csrf)
	if r.status != http.StatusOK {
		t.Fatalf("add begin: %d %v", r.status, begun)
	}
	id, body := h.create(t, newDevice(false), begun)
	h.now = h.now.Add(passkey.DefaultLifetime + time.Second)
	if r, m := b.json("/account/passkeys/finish?ceremony="+url.QueryEscape(id), body, csrf); r.status == http.StatusOK {
		t.Fatalf("finish after the ceremony expired: %d %v", r.status, m)
	}
	if !hasEvent(h.auditEvents(t), "passkey_added", store.ResultFailure, "expired") {
		t.Fatalf("the expired ceremony is not audited: %v", h.auditEvents(t))
	}
	for _, row := range activityRows(t, b.get("/account").body) {
		if row[1] == "Adding a passkey was refused" {
			t.Fatalf("an expired ceremony is shown as a refused change: %q", row)
		}
	}

	h.now = h.now.Add(passkeyidp.ReauthAfter)
	if r, m := b.json("/account/passkeys/begin", map[string]string{"name": "Laptop"}, csrf); r.status != http.StatusForbidden {
		t.Fatalf("add begin with an old login: %d %v", r.status, m)
	}
	rows := activityRows(t, b.get("/account").body)
	if len(rows) == 0 || rows[0][1] != "Adding a passkey was refused" {
		t.Fatalf("activity %q, want the refused add first", rows)
	}
}

// TestCraftedLinkNoticeShowsNoNotice: the account page says an eID was
// linked, or that the link logged the person out everywhere else, only
// when the person's newest link in the audit trail, made a moment ago,
// did that: a crafted ?done=…&ended=1 shows no notice, or the one the
// link itself calls for.
func TestCraftedLinkNoticeShowsNoNotice(t *testing.T) {
	h := newHarness(t, true)
	ctx := context.Background()
	h.p.History = h.db
	b := h.browser("en")
	e := b.enrol(newDevice(false), "", "fnr")
	for _, link := range []string{"/account?done=linked", "/account?done=linked&ended=1", "/account?done=raised&ended=1", "/account?done=alreadylinked"} {
		if r := b.get(link); strings.Contains(r.body, `role="status"`) {
			t.Errorf("%s with no link shows a notice", link)
		}
	}
	ev := &store.AuditEvent{Type: "link", PersonID: e.person, Provider: "bankid", Level: "high", Result: store.ResultSuccess,
		Time: h.now, Details: map[string]string{"sessions_ended": "0", "session": b.sessionRef(t)}}
	if err := h.db.AppendAudit(ctx, ev); err != nil {
		t.Fatal(err)
	}
	r := b.get("/account?done=linked&ended=1")
	if !strings.Contains(r.body, "The new way to log in was added.") || strings.Contains(r.body, "You were logged out everywhere else, on other") {
		t.Errorf("notice after a link that ended no session, with a made-up ended=1:\n%s", r.body)
	}
	if r := b.get("/account?done=raised"); strings.Contains(r.body, `role="status"`) {
		t.Error("a link that raised nothing is said to have raised")
	}
	h.now = h.now.Add(10 * time.Minute)
	if r := b.get("/account?done=linked"); r.status != http.StatusOK || strings.Contains(r.body, `role="status"`) {
		t.Errorf("an old link's notice is shown by a link followed later: %d", r.status)
	}
}

// TestCancelledPasskeyAddIsNotShownAsRefused: the page tells the server
// of a ceremony the browser called off; it ends, so it cannot be
// finished later, and is audited as cancelled, not shown as a refused
// change.
func TestCancelledPasskeyAddIsNotShownAsRefused(t *testing.T) {
	h := newHarness(t, true)
	h.p.History = h.db
	b := h.browser("en")
	b.enrol(newDevice(false), "", "fnr")
	csrf := attr(t, b.get("/account").body, "data-csrf")
	r, begun := b.json("/account/passkeys/begin", map[string]string{"name": "Laptop"}, csrf)
	if r.status != http.StatusOK {
		t.Fatalf("add begin: %d %v", r.status, begun)
	}
	id, body := h.create(t, newDevice(false), begun)
	if r, m := b.json("/account/passkeys/cancel?ceremony="+url.QueryEscape(id), map[string]string{}, "made-up"); r.status != http.StatusForbidden {
		t.Fatalf("cancel without the CSRF token: %d %v", r.status, m)
	}
	if r, m := b.json("/account/passkeys/cancel?ceremony="+url.QueryEscape(id), map[string]string{}, csrf); r.status != http.StatusOK {
		t.Fatalf("cancel: %d %v", r.status, m)
	}
	if r, m := b.json("/account/passkeys/finish?ceremony="+url.QueryEscape(id), body, csrf); r.status == http.StatusOK {
		t.Fatalf("finish after cancel: %d %v", r.status, m)
	}
	if !hasEvent(h.auditEvents(t), "passkey_added", store.ResultFailure, "cancelled") {
		t.Fatalf("the cancelled ceremony is not audited: %v", h.auditEvents(t))
	}
	for _, row := range activityRows(t, b.get("/account").body) {
		if row[1] == "Adding a passkey was refused" {
			t.Fatalf("a cancelled ceremony is shown as a refused change: %q", row)
		}
	}
}

// TestOwnFailedPasskeyAddIsNotShownAsRefused: an add that failed on the
// person's own attempt (the passkey limit reached, a passkey already
// registered, a response the browser garbled, an authenticator that did
// not verify the person) is audited with its reason
// but not shown as a refused change, which reads as someone else at the
// account; one refused for a login too old is.
func TestOwnFailedPasskeyAddIsNotShownAsRefused(t *testing.T) {
	h := newHarness(t, true)
	ctx := context.Background()
	h.p.History = h.db
	b := h.browser("en")
	e := b.enrol(newDevice(false), "", "fnr")
	for i, reason := range []string{"reauth", "passkey_limit", "credential_exists", "bad_input", "not_verified"} {
		ev := &store.AuditEvent{Type: "passkey_added", PersonID: e.person, Result: store.ResultFailure, Reason: reason,
			Time: h.now.Add(time.Duration(i+1) * time.Minute)}
		if err := h.db.AppendAudit(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	var refused int
	for _, row := range activityRows(t, b.get("/account").body) {
		if row[1] == "Adding a passkey was refused" {
			refused++
		}
	}
	if refused != 1 {
		t.Fatalf("%d adds shown as refused, want only the one refused for an old login", refused)
	}
}

// TestReleasedClaimsAreNamedInThePageLanguage: every claim a service can
// be registered for is named in words of the page's language, and one
// this build has no word for (from a newer release) reads as plain words
// too, never as its claim name.
func TestReleasedClaimsAreNamedInThePageLanguage(t *testing.T) {
	h := newHarness(t, true)
	ctx := context.Background()
	h.p.History = h.db
	b := h.browser("en")
	e := b.enrol(newDevice(false), "", "fnr")
	claims := []string{"name", "given_name", "family_name", "birthdate", "national_id", "email_verified", "nationality"}
	ev := &store.AuditEvent{Type: "consent", PersonID: e.person, Result: store.ResultSuccess, Time: h.now.Add(time.Minute),
		Details: map[string]string{"claims": strings.Join(claims, " ")}}
	if err := h.db.AppendAudit(ctx, ev); err != nil {
		t.Fatal(err)
	}
	for _, lang := range []string{"nb", "en", "da"} {
		rows := activityRows(t, b.get("/account?lang="+lang).body)
		if len(rows) == 0 {
			t.Fatalf("%s: no activity", lang)
		}
		line := rows[0][1]
		_, list, _ := strings.Cut(line, ": ")
		for _, part := range strings.Split(list, ", ") {
			if slices.Contains(claims, part) {
				t.Errorf("%s: claim name %q shown: %q", lang, part, line)
			}
		}
		if strings.Count(line, ",") != 6 {
			t.Errorf("%s: %q, want the identifier, five claims and one line for the rest", lang, line)
		}
	}
}

// TestPasskeyAddFinishedByAnotherSessionIsShownAsRefused: a ceremony to
// add a passkey finished by another session than the one that began it,
// even the same person's, is refused as any ceremony that cannot be
// finished, audited as wrong_session and shown as a refused change.
func TestPasskeyAddFinishedByAnotherSessionIsShownAsRefused(t *testing.T) {
	h := newHarness(t, true)
	h.p.History = h.db
	d := newDevice(false)
	b := h.browser("en")
	b.enrol(d, "", "fnr")
	other := h.browser("en")
	if r, m := other.login(d, h.rp, "att-other"); r.status != http.StatusOK {
		t.Fatalf("login in another browser: %d %v", r.status, m)
	}
	csrf := attr(t, b.get("/account").body, "data-csrf")
	r, begun := b.json("/account/passkeys/begin", map[string]string{"name": "Laptop"}, csrf)
	if r.status != http.StatusOK {
		t.Fatalf("add begin: %d %v", r.status, begun)
	}
	id, body := h.create(t, newDevice(false), begun)
	otherCSRF := attr(t, other.get("/account").body, "data-csrf")
	if r, m := other.json("/account/passkeys/finish?ceremony="+url.QueryEscape(id), body, otherCSRF); r.status != http.StatusBadRequest || m["error"] != "replay" {
		t.Fatalf("finish in another session: %d %v, want 400 replay", r.status, m)
	}
	if !hasEvent(h.auditEvents(t), "passkey_added", store.ResultFailure, "wrong_session") {
		t.Fatalf("the finish by another session is not audited as wrong_session: %v", h.auditEvents(t))
	}
	rows := activityRows(t, b.get("/account").body)
	if len(rows) == 0 || rows[0][1] != "Adding a passkey was refused" {
		t.Fatalf("activity %q, want the add finished by another session shown as refused first", rows)
	}

	// Cancelled by another session: ended, and audited so too.
	r, begun = b.json("/account/passkeys/begin", map[string]string{"name": "Laptop"}, csrf)
	if r.status != http.StatusOK {
		t.Fatalf("add begin: %d %v", r.status, begun)
	}
	id, body = h.create(t, newDevice(false), begun)
	before := len(h.auditEvents(t))
	if r, m := other.json("/account/passkeys/cancel?ceremony="+url.QueryEscape(id), map[string]string{}, otherCSRF); r.status != http.StatusOK {
		t.Fatalf("cancel in another session: %d %v", r.status, m)
	}
	evs := h.auditEvents(t)
	if len(evs) != before+1 || !hasEvent(evs[before:], "passkey_added", store.ResultFailure, "wrong_session") {
		t.Fatalf("the cancel by another session is not audited as wrong_session: %v", evs[before:])
	}
	if r, m := b.json("/account/passkeys/finish?ceremony="+url.QueryEscape(id), body, csrf); r.status != http.StatusBadRequest || m["error"] != "replay" {
		t.Fatalf("finish after another session cancelled: %d %v, want 400 replay", r.status, m)
	}
}

// sessionRef is how a link's event names b's session: the first 12
// characters of its store ID, the hash of its cookie.
func (b *browser) sessionRef(t *testing.T) string {
	t.Helper()
	u, err := url.Parse(b.h.origin)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == session.CookieName {
			sum := sha256.Sum256([]byte(c.Value))
			return base64.RawURLEncoding.EncodeToString(sum[:])[:12]
		}
	}
	t.Fatal("no session cookie")
	return ""
}

// TestLinkNoticeOnlyInTheSessionThatLinked: after a link, the notice
// that says so is shown only in the session that linked; another
// session of the same person, opening the same ?done= link a moment
// later, sees none.
func TestLinkNoticeOnlyInTheSessionThatLinked(t *testing.T) {
	h := newHarness(t, true)
	ctx := context.Background()
	h.p.History = h.db
	d := newDevice(false)
	b := h.browser("en")
	e := b.enrol(d, "", "fnr")
	other := h.browser("en")
	if r, m := other.login(d, h.rp, "att-other"); r.status != http.StatusOK {
		t.Fatalf("login in another browser: %d %v", r.status, m)
	}
	ev := &store.AuditEvent{Type: "link", PersonID: e.person, Provider: "bankid", Level: "high", Result: store.ResultSuccess,
		Time: h.now, Details: map[string]string{"sessions_ended": "1", "session": b.sessionRef(t)}}
	if err := h.db.AppendAudit(ctx, ev); err != nil {
		t.Fatal(err)
	}
	if r := other.get("/account?done=linked"); r.status != http.StatusOK || strings.Contains(r.body, `role="status"`) {
		t.Errorf("another session of the person sees the link's notice: %d\n%s", r.status, r.body)
	}
	if r := b.get("/account?done=linked"); !strings.Contains(r.body, "You were logged out everywhere else, on other") {
		t.Errorf("the session that linked does not see the notice:\n%s", r.body)
	}
}

// TestPasskeyAddFinishedByAnotherPersonIsTheirsToSee: a ceremony to add
// a passkey to one person's account, finished or cancelled in another
// person's session, is recorded against the person whose account it
// would have changed, whose activity shows it refused; the other
// person's activity shows nothing of it.
func TestPasskeyAddFinishedByAnotherPersonIsTheirsToSee(t *testing.T) {
	h := newHarness(t, true)
	h.p.History = h.db
	b := h.browser("en")
	owner := b.enrol(newDevice(false), "", "fnr").person
	other := h.browser("en")
	stranger := other.enrol(newDevice(false), "", "fnr").person
	csrf := attr(t, b.get("/account").body, "data-csrf")
	otherCSRF := attr(t, other.get("/account").body, "data-csrf")
	for _, step := range []string{"finish", "cancel"} {
		r, begun := b.json("/account/passkeys/begin", map[string]string{"name": "Laptop"}, csrf)
		if r.status != http.StatusOK {
			t.Fatalf("add begin: %d %v", r.status, begun)
		}
		id, body := h.create(t, newDevice(false), begun)
		before := len(h.auditEvents(t))
		var payload any = body
		if step == "cancel" {
			payload = map[string]string{}
		}
		other.json("/account/passkeys/"+step+"?ceremony="+url.QueryEscape(id), payload, otherCSRF)
		evs := h.auditEvents(t)[before:]
		if len(evs) != 1 || evs[0].Reason != "wrong_session" || evs[0].PersonID != owner {
			t.Fatalf("%s in another person's session: events %+v, want one wrong_session of %s", step, evs, owner)
		}
		if rows := activityRows(t, b.get("/account").body); len(rows) == 0 || rows[0][1] != "Adding a passkey was refused" {
			t.Fatalf("%s: owner's activity %q, want the refused add first", step, rows)
		}
		for _, row := range activityRows(t, other.get("/account").body) {
			if row[1] == "Adding a passkey was refused" {
				t.Fatalf("%s: the activity of %s, whose account did not change, shows %q", step, stranger, row)
			}
		}
	}
}

// appendEvents stores evs in the audit trail a minute after the
// harness's now, as events that happened after the person enrolled.
func (h *harness) appendEvents(t *testing.T, evs []*store.AuditEvent) {
	t.Helper()
	for _, ev := range evs {
		ev.Time = h.now.Add(time.Minute)
		if err := h.db.AppendAudit(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
}

// TestActivitySaysHowLongAddressesAreKept: the account page and the
// pages of older activity say how long an address is kept, in days, as
// audit.address_retention says (ADR 38), in every page language, one
// day in the singular; a retention of part of a day counts as a whole
// day more, since the address is kept that long. A provider given no
// retention says a limited time.
func TestActivitySaysHowLongAddressesAreKept(t *testing.T) {
	for _, tc := range []struct {
		keep time.Duration
		want map[string]string
	}{
		{90 * 24 * time.Hour, map[string]string{
			"en": "We keep it for 90 days and then delete it",
			"nb": "Vi tar vare på den i 90 dager og sletter den så",
			"da": "Vi gemmer den i 90 dage og sletter den så",
		}},
		{24 * time.Hour, map[string]string{
			"en": "We keep it for 1 day and then delete it",
			"nb": "Vi tar vare på den i 1 dag og sletter den så",
			"da": "Vi gemmer den i 1 dag og sletter den så",
		}},
		{36 * time.Hour, map[string]string{
			"en": "We keep it for 2 days and then delete it",
			"nb": "Vi tar vare på den i 2 dager og sletter den så",
			"da": "Vi gemmer den i 2 dage og sletter den så",
		}},
		{0, map[string]string{
			"en": "We keep it for a limited time and then delete it",
			"nb": "Vi tar vare på den en begrenset tid og sletter den så",
			"da": "Vi gemmer den i en begrænset tid og sletter den så",
		}},
	} {
		h, b := withActivity(t, "en", 80)
		h.p.AddressRetention = tc.keep
		for lang, want := range tc.want {
			b.lang = lang
			account := b.get("/account")
			if !strings.Contains(account.body, want) {
				t.Errorf("retention %v, %s: the account page lacks %q", tc.keep, lang, want)
			}
			older := b.get(historyLink(t, account.body, "activity-older"))
			if !strings.Contains(older.body, want) {
				t.Errorf("retention %v, %s: the page of older activity lacks %q", tc.keep, lang, want)
			}
		}
	}
}

// TestActivityHidesHeldAddresses: the address of an event older than
// audit.address_retention, which the store still holds only because an
// operator's hold covers it (a preservation order, ADR 45), is shown as
// "–", as a deleted one is: the person's page does not give the hold
// away.
func TestActivityHidesHeldAddresses(t *testing.T) {
	h := newHarness(t, true)
	h.p.History, h.p.Clients = h.db, h.db
	h.p.AddressRetention = 180 * 24 * time.Hour
	b := h.browser("en")
	e := b.enrol(newDevice(false), "", "fnr")
	for _, ev := range []*store.AuditEvent{
		{Time: h.now.Add(-181 * 24 * time.Hour), Type: "authentication", PersonID: e.person, Provider: "passkey", Level: "high",
			Result: store.ResultSuccess, Details: map[string]string{"method": "passkey", store.DetailAddr: "203.0.113.9"}},
		{Time: h.now.Add(-179 * 24 * time.Hour), Type: "authentication", PersonID: e.person, Provider: "passkey", Level: "high",
			Result: store.ResultSuccess, Details: map[string]string{"method": "passkey", store.DetailAddr: "2001:db8::7"}},
	} {
		if err := h.db.AppendAudit(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	rows := activityRows(t, b.get("/account").body)
	if len(rows) < 2 {
		t.Fatalf("activity rows %q", rows)
	}
	if rows[0][3] != "2001:db8::7" || rows[1][3] != "–" {
		t.Errorf("rows %q; want the address of 179 days ago, and none for 181 days ago", rows[:2])
	}
}

// appendSealedInline appends e to the audit log as a node of a version
// before schema 0031 did: its address inside the hashed body, with no
// digest, and so no row of its own to delete (ADR 38).
func (h *harness) appendSealedInline(t *testing.T, e *store.AuditEvent) {
	t.Helper()
	raw, err := sql.Open("sqlite", h.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var prev []byte
	if err := raw.QueryRow("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").Scan(&e.Seq, &prev); err != nil {
		t.Fatal(err)
	}
	e.Seq++
	e.Seal(prev)
	details, err := json.Marshal(e.Details)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec("INSERT INTO audit_log (seq, time, type, person_id, client_id, provider, level, result, reason, details, prev_hash, hash) "+
		"VALUES (?, ?, ?, ?, '', ?, ?, ?, '', ?, ?, ?)", e.Seq, e.Time.UnixMicro(), e.Type, e.PersonID, e.Provider, e.Level, e.Result,
		string(details), e.PrevHash, e.Hash); err != nil {
		t.Fatal(err)
	}
}

// TestActivityShowsAddressesSealedInTheirEvents: an address sealed in
// its event's hashed body, as every event's was before schema 0031, is
// kept for as long as the audit log (ADR 38), so the activity shows it
// at any age, as the person's export gives it (ADR 54), and says why
// such an address is still there; an address kept apart and past the
// retention, which the store holds only under a hold, is shown as
// deleted on the same page (ADR 45). A page with no sealed address
// does not say it.
func TestActivityShowsAddressesSealedInTheirEvents(t *testing.T) {
	h := newHarness(t, true)
	h.p.History, h.p.Clients = h.db, h.db
	h.p.AddressRetention = 180 * 24 * time.Hour
	b := h.browser("en")
	e := b.enrol(newDevice(false), "", "fnr")
	const sealedSays = "Some addresses here were recorded before we began deleting addresses"
	if page := b.get("/account"); strings.Contains(page.body, sealedSays) {
		t.Errorf("a page with no sealed address says there are some:\n%s", page.body)
	}
	login := func(age time.Duration, addr string) *store.AuditEvent {
		return &store.AuditEvent{Time: h.now.Add(-age), Type: "authentication", PersonID: e.person, Provider: "passkey", Level: "high",
			Result: store.ResultSuccess, Details: map[string]string{"method": "passkey", store.DetailAddr: addr}}
	}
	if err := h.db.AppendAudit(context.Background(), login(181*24*time.Hour, "2001:db8::9")); err != nil {
		t.Fatal(err)
	}
	h.appendSealedInline(t, login(400*24*time.Hour, "198.51.100.4"))
	for _, path := range []string{"/account", "/account/activity"} {
		page := b.get(path)
		if !strings.Contains(page.body, `<span translate="no">198.51.100.4</span>`) {
			t.Errorf("%s leaves out the address sealed in an event of 400 days ago:\n%s", path, page.body)
		}
		if strings.Contains(page.body, "2001:db8::9") {
			t.Errorf("%s shows an address kept apart past the retention", path)
		}
		for lang, want := range map[string]string{
			"en": sealedSays,
			"nb": "Noen av adressene her ble registrert før vi begynte å slette adresser",
			"da": "Nogle af adresserne her blev registreret, før vi begyndte at slette adresser",
		} {
			b.lang = lang
			if page := b.get(path); !strings.Contains(page.body, want) {
				t.Errorf("%s in %s does not say why an old address is still shown (%q)", path, lang, want)
			}
		}
		b.lang = "en"
	}
}

// TestLoginUsedByAnotherIsShownToThePerson: a login of the person's
// that a service presented although it was given to another service,
// or that was presented without the key of the service it was given to,
// is a line of its own, marked as refused, in each language: someone
// other than that service holds it. Other refused uses of a token (one
// expired, an introspection not permitted) say nothing of the person
// and are not shown.
func TestLoginUsedByAnotherIsShownToThePerson(t *testing.T) {
	h, b, e := activityAtTestBank(t)
	fail := store.ResultFailure
	h.appendEvents(t, []*store.AuditEvent{
		{Type: "token", PersonID: e.person, ClientID: "bank", Result: fail, Reason: "wrong_client",
			Details: map[string]string{"grant_type": "refresh_token", "grant": "g1"}},
		{Type: "token", PersonID: e.person, ClientID: "bank", Result: fail, Reason: "wrong_client",
			Details: map[string]string{"endpoint": "revocation", "grant": "g1"}},
		{Type: "token", PersonID: e.person, ClientID: "bank", Result: fail, Reason: "dpop_key_mismatch",
			Details: map[string]string{"grant_type": "refresh_token", "grant": "g2"}},
		{Type: "token", PersonID: e.person, ClientID: "bank", Result: fail, Reason: "introspection_not_permitted",
			Details: map[string]string{"grant": "g1"}},
		{Type: "token", PersonID: e.person, ClientID: "bank", Result: fail, Reason: "code_expired",
			Details: map[string]string{"grant_type": "authorization_code", "grant": "g3"}},
	})
	want := map[string][2]string{
		"en": {"Someone other than this service tried to use your login at it, and was refused",
			"This service tried to use your login at another service, and was refused"},
		"nb": {"Noen andre enn denne tjenesten prøvde å bruke innloggingen din hos den, og ble avvist",
			"Denne tjenesten prøvde å bruke innloggingen din hos en annen tjeneste, og ble avvist"},
		"da": {"Nogen andre end denne tjeneste prøvede at bruge dit login hos den og blev afvist",
			"Denne tjeneste prøvede at bruge dit login hos en anden tjeneste og blev afvist"},
	}
	for lang, w := range want {
		page := b.get("/account?lang=" + lang)
		rows := activityRows(t, page.body)
		if len(rows) != 5 {
			t.Fatalf("%s: activity rows %q, want three refused uses above the enrolment's codes and the creation", lang, rows)
		}
		for i, what := range []string{w[0], w[1], w[1]} {
			if rows[i][1] != what || rows[i][2] != "Test Bank" {
				t.Errorf("%s: row %d = %q, want %q at Test Bank", lang, i, rows[i], what)
			}
		}
		if !strings.Contains(page.body, "<strong>"+w[0]+"</strong>") {
			t.Errorf("%s: the refused use is not marked: %s", lang, page.body)
		}
	}
}
