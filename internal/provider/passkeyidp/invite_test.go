package passkeyidp_test

import (
	"context"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/varde-eid/varde/internal/store"
)

// invitations are the words the account page uses, in each language,
// to say what adding a passkey is good for after an eID login.
var invitations = map[string]string{
	"nb": "så kan du logge inn uten e-ID-en",
	"en": "and you can log in without the eID",
	"da": "så kan du logge ind uden dit eID",
}

// eidBrowser is a browser holding a fresh session of person from the eID
// bankid, as the broker starts one after an eID login.
func (h *harness) eidBrowser(t *testing.T, person, lang string) *browser {
	t.Helper()
	rec := httptest.NewRecorder()
	if err := h.p.Sessions.Start(context.Background(), rec, httptest.NewRequest("GET", "/", nil), &store.Session{
		PersonID: person, Provider: "bankid", Level: "high", AMR: []string{"pwd", "otp", "mfa"}, AuthTime: h.now,
	}); err != nil {
		t.Fatal(err)
	}
	b := h.browser(lang)
	origin, _ := url.Parse(h.origin)
	b.c.Jar.SetCookies(origin, rec.Result().Cookies())
	return b
}

// eidPerson stores a person the broker made at an eID login: an
// identifier, no passkey, no recovery code.
func (h *harness) eidPerson(t *testing.T) string {
	t.Helper()
	p := &store.Person{ID: "eid-" + rand.Text(), WebAuthnID: []byte(rand.Text() + rand.Text())[:32],
		GivenName: "Kari", FamilyName: "Nordmann", ProofingLevel: "high", ProofingMethod: "eid", CreatedAt: h.now,
		Identifiers: []store.Identifier{{Scheme: "no:fnr", Value: "01010112345", MaxLevel: "high", LinkedThrough: "bankid", LinkedAt: h.now}}}
	if err := h.db.CreatePerson(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	return p.ID
}

// TestAccountInvitesAnEIDLoginToAddAPasskey: a person who logged in
// with an eID and holds no passkey is told, once, in their language,
// what a passkey would give them, just above the button that adds one.
func TestAccountInvitesAnEIDLoginToAddAPasskey(t *testing.T) {
	h := newHarness(t, true)
	person := h.eidPerson(t)
	for lang, want := range invitations {
		t.Run(lang, func(t *testing.T) {
			page := h.eidBrowser(t, person, lang).get("/account")
			if page.status != http.StatusOK {
				t.Fatalf("account: %d", page.status)
			}
			if n := strings.Count(page.body, want); n != 1 {
				t.Fatalf("invitation %q shown %d times, want once:\n%s", want, n, page.body)
			}
			// The invitation stands right before the form that adds a
			// passkey, and describes its button.
			invite := strings.Index(page.body, `id="passkey-invite"`)
			form := strings.Index(page.body, `data-ceremony="add"`)
			if invite < 0 || form < invite || strings.Contains(page.body[invite:form], "<h2") {
				t.Errorf("invitation at %d, add form at %d: not together", invite, form)
			}
			if !strings.Contains(page.body, `aria-describedby="passkey-invite"`) {
				t.Error("the add button is not described by the invitation")
			}
		})
	}
}

// TestAccountInvitesNoOneWithAPasskey: the invitation is not shown to a
// person who holds a passkey, whether they logged in with it or with an
// eID, nor to a person who logged in with a recovery code (no eID to do
// without).
func TestAccountInvitesNoOneWithAPasskey(t *testing.T) {
	h := newHarness(t, true)
	b := h.browser("en")
	e := b.enrol(newDevice(false), "", "fnr")
	for name, page := range map[string]reply{
		"passkey login": b.get("/account"),
		"eID login":     h.eidBrowser(t, e.person, "en").get("/account"),
	} {
		if page.status != http.StatusOK || strings.Contains(page.body, `id="passkey-invite"`) || strings.Contains(page.body, invitations["en"]) {
			t.Errorf("%s: %d, invitation shown to a person with a passkey", name, page.status)
		}
	}
	// A recovery code logs in; the passkey is gone.
	ctx := context.Background()
	keys, err := h.db.ListPasskeys(ctx, e.person)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if _, err := h.db.DeletePasskey(ctx, e.person, k.CredentialID, "", h.now, nil); err != nil {
			t.Fatal(err)
		}
	}
	r := h.browser("en")
	csrf := field(t, r.get("/passkey/recover?attempt=").body, "csrf")
	if res := r.form("/passkey/recover", url.Values{"attempt": {""}, "csrf": {csrf}, "code": {e.codes[0]}}); res.status != http.StatusSeeOther {
		t.Fatalf("recovery: %d", res.status)
	}
	if page := r.get("/account"); page.status != http.StatusOK || strings.Contains(page.body, `id="passkey-invite"`) {
		t.Errorf("recovery code login: %d, invitation shown", page.status)
	}
}
