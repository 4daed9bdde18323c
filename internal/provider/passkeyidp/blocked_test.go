package passkeyidp_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/provider/passkeyidp"
	"github.com/varde-eid/varde/internal/store"
)

// TestBlockIsShownToThePersonInEveryLanguage: a block and its lifting,
// a login refused while the identity was blocked, a new national
// number the help desk added, and one it removed, and a copy of the person's data the help
// desk gave out (varde persons export), a code the help desk gave them
// (varde persons recover, with and without their passkeys removed) and
// a login with it are in the person's own
// activity, in nb, en and da alike, never as a key: a copy asked for by
// someone else in the person's name is seen by the person.
func TestBlockIsShownToThePersonInEveryLanguage(t *testing.T) {
	want := map[string][]string{
		"en": {"Logged in with a code from the help desk, at level low",
			"The help desk gave you a code to log in with, after checking your ID in person, removed your passkeys and logged you out everywhere",
			"The help desk gave you a code to log in with, after checking your ID in person, and logged you out everywhere",
			"The help desk removed a national identity number from your Varde ID, and logged you out everywhere",
			"The help desk gave out a copy of the data Varde holds about you",
			"The help desk added a new national identity number to your Varde ID",
			"The help desk lifted the block on your Varde ID",
			"A login with a passkey was refused because your Varde ID was blocked",
			"The help desk blocked your Varde ID, and logged you out everywhere"},
		"nb": {"Logget inn med en kode fra brukerstøtten, på nivå lavt",
			"Brukerstøtten ga deg en kode å logge inn med, etter å ha sjekket legitimasjonen din ansikt til ansikt, fjernet passnøklene dine og logget deg ut overalt",
			"Brukerstøtten ga deg en kode å logge inn med, etter å ha sjekket legitimasjonen din ansikt til ansikt, og logget deg ut overalt",
			"Brukerstøtten fjernet et fødselsnummer eller D-nummer fra Varde-ID-en din og logget deg ut overalt",
			"Brukerstøtten ga ut en kopi av opplysningene Varde har om deg",
			"Brukerstøtten la til et nytt fødselsnummer eller D-nummer på Varde-ID-en din",
			"Brukerstøtten opphevet sperringen av Varde-ID-en din",
			"En innlogging med en passnøkkel ble avvist fordi Varde-ID-en din var sperret",
			"Brukerstøtten sperret Varde-ID-en din og logget deg ut overalt"},
		"da": {"Logget ind med en kode fra supporten, på niveau lavt",
			"Supporten gav dig en kode at logge ind med, efter at have tjekket dit ID ansigt til ansigt, fjernede dine adgangsnøgler og loggede dig ud alle steder",
			"Supporten gav dig en kode at logge ind med, efter at have tjekket dit ID ansigt til ansigt, og loggede dig ud alle steder",
			"Supporten fjernede et personnummer fra dit Varde-ID og loggede dig ud alle steder",
			"Supporten udleverede en kopi af de oplysninger, Varde har om dig",
			"Supporten tilføjede et nyt personnummer til dit Varde-ID",
			"Supporten ophævede spærringen af dit Varde-ID",
			"Et login med en adgangsnøgle blev afvist, fordi dit Varde-ID var spærret",
			"Supporten spærrede dit Varde-ID og loggede dig ud alle steder"},
	}
	for lang, lines := range want {
		t.Run(lang, func(t *testing.T) {
			h := newHarness(t, true)
			ctx := context.Background()
			h.p.History = h.db
			b := h.browser(lang)
			e := b.enrol(newDevice(false), "", "fnr")
			for i, ev := range []*store.AuditEvent{
				{Type: "person_blocked", Result: store.ResultSuccess,
					Details: map[string]string{"reason": "stolen phone", "by": "operator", "sessions": "1", "grants": "0"}},
				{Type: "authentication", Provider: "passkey", Result: store.ResultFailure, Reason: "person_blocked",
					Details: map[string]string{"method": "passkey"}},
				{Type: "person_unblocked", Result: store.ResultSuccess, Details: map[string]string{"reason": "identity checked", "by": "operator"}},
				{Type: "identifier_added", Result: store.ResultSuccess, Details: map[string]string{"scheme": "no:fnr", "reason": "birth number given", "by": "operator"}},
				{Type: "person_exported", Result: store.ResultSuccess, Details: map[string]string{"reason": "access request", "by": "operator", "via": "cli"}},
				{Type: "identifier_removed", Result: store.ResultSuccess,
					Details: map[string]string{"scheme": "no:fnr", "reason": "linked by someone else", "by": "operator", "sessions": "1", "grants": "0"}},
				{Type: "recovery_issued", Result: store.ResultSuccess,
					Details: map[string]string{"checked": "passport at the counter", "by": "operator", "passkeys": "0", "sessions": "0", "grants": "0"}},
				{Type: "recovery_issued", Result: store.ResultSuccess,
					Details: map[string]string{"checked": "passport at the counter", "by": "operator", "passkeys": "1", "sessions": "0", "grants": "0"}},
				{Type: "authentication", Provider: "passkey", Result: store.ResultSuccess, Level: "low",
					Details: map[string]string{"method": "desk-code"}},
			} {
				ev.PersonID, ev.Time = e.person, h.now.Add(time.Duration(i+1)*time.Minute)
				if err := h.db.AppendAudit(ctx, ev); err != nil {
					t.Fatal(err)
				}
			}
			r := b.get("/account")
			if r.status != http.StatusOK {
				t.Fatalf("account page: %d", r.status)
			}
			var got []string
			for _, row := range activityRows(t, r.body)[:9] {
				got = append(got, row[1])
			}
			if !slices.Equal(got, lines) {
				t.Errorf("newest activity %q, want %q", got, lines)
			}
		})
	}
}

// TestRecoveryCodeOfABlockedPersonIsNotUsedUp: a recovery code of a
// person whose identity is blocked grants nothing (the broker refuses
// the login), so it is given back: whoever holds the person's codes
// cannot use them up while the person waits for the help desk.
func TestRecoveryCodeOfABlockedPersonIsNotUsedUp(t *testing.T) {
	h := newHarness(t, true)
	ctx := context.Background()
	e := h.browser("en").enrol(newDevice(false), "", "fnr")
	before, err := h.db.CountRecoveryCodes(ctx, e.person)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.db.BlockPerson(ctx, e.person, "stolen phone", h.now, nil); err != nil {
		t.Fatal(err)
	}
	r := h.browser("en")
	csrf := field(t, r.get("/passkey/recover?attempt=").body, "csrf")
	if res := r.form("/passkey/recover", url.Values{"attempt": {""}, "csrf": {csrf}, "code": {e.codes[0]}}); res.status != http.StatusSeeOther {
		t.Fatalf("recovery: %d", res.status)
	}
	after, err := h.db.CountRecoveryCodes(ctx, e.person)
	if err != nil {
		t.Fatal(err)
	}
	if after != before {
		t.Errorf("%d recovery codes left after a blocked person's code, want %d", after, before)
	}
}

// TestSessionOfABlockedPersonChangesNothing: a block ends every session
// of the person in its write, but one stored as it landed (the broker
// read the person just before) outlives it. The account pages take it
// for no session: it
// shows nothing of the person, adds no passkey and makes no recovery
// codes, which would outlast the block and its lifting.
func TestSessionOfABlockedPersonChangesNothing(t *testing.T) {
	h := newHarness(t, true)
	ctx := context.Background()
	b := h.browser("en")
	e := b.enrol(newDevice(false), "", "fnr")
	before, err := h.db.CountRecoveryCodes(ctx, e.person)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.db.BlockPerson(ctx, e.person, "stolen phone", h.now, nil); err != nil {
		t.Fatal(err)
	}
	// The session that outlived the block, fresh and at high.
	w := httptest.NewRecorder()
	s := &store.Session{PersonID: e.person, Provider: passkeyidp.ID, Level: "high", AuthTime: h.now}
	if err := h.fin.sessions.Start(ctx, w, httptest.NewRequest(http.MethodGet, h.origin+"/", nil), s); err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(h.origin)
	b.c.Jar.SetCookies(u, w.Result().Cookies())
	req := httptest.NewRequest(http.MethodGet, h.origin+"/account", nil)
	for _, c := range b.c.Jar.Cookies(u) {
		req.AddCookie(c)
	}
	csrf := passkeyidp.SessionCSRF(h.p, req)

	if r := b.get("/account"); r.status != http.StatusSeeOther || strings.Contains(r.body, e.number) {
		t.Errorf("account page: %d, want 303 to log in\n%s", r.status, r.body)
	}
	if r, begun := b.json("/account/passkeys/begin", map[string]string{"name": "Laptop"}, csrf); r.status != http.StatusUnauthorized {
		t.Errorf("add begin: %d %v, want 401", r.status, begun)
	}
	if r := b.form("/account/recovery-codes", url.Values{"confirm": {"yes"}, "csrf": {csrf}}); r.status != http.StatusSeeOther ||
		strings.HasPrefix(r.location, "/account/recovery-codes?") {
		t.Errorf("new codes: %d %q", r.status, r.location)
	}
	if after, err := h.db.CountRecoveryCodes(ctx, e.person); err != nil || after != before {
		t.Errorf("recovery codes: %d, %v; want the %d from before the block", after, err, before)
	}
	if keys, err := h.db.ListPasskeys(ctx, e.person); err != nil || len(keys) != 1 {
		t.Errorf("passkeys: %d, %v", len(keys), err)
	}
}
