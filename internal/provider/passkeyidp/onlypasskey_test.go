package passkeyidp_test

import (
	"net/url"
	"strings"
	"testing"
)

// TestAccountWarnsBeforeTheOnlyPasskeyGoes: on the account page, the
// remove button of a person's only passkey says beforehand what removing
// it leaves them with, in nb, en and da; with a second passkey there is
// no such warning.
func TestAccountWarnsBeforeTheOnlyPasskeyGoes(t *testing.T) {
	h := newHarness(t, true)
	const warning = `id="only-passkey"`
	const described = `aria-describedby="only-passkey"`
	want := map[string]string{
		"en": "This is your only passkey.",
		"nb": "Dette er den eneste passnøkkelen din.",
		"da": "Dette er din eneste adgangsnøgle.",
	}
	for lang, text := range want {
		b := h.browser(lang)
		b.enrol(newDevice(false), "", "fnr")
		page := b.get("/account")
		if !strings.Contains(page.body, warning) || !strings.Contains(page.body, described) || !strings.Contains(page.body, text) {
			t.Fatalf("%s: account page with one passkey has no warning %q tied to its remove button:\n%s", lang, text, page.body)
		}
		if lang != "en" {
			continue
		}
		csrf := attr(t, page.body, "data-csrf")
		r, begun := b.json("/account/passkeys/begin", map[string]string{"name": "Laptop"}, csrf)
		if r.status != 200 {
			t.Fatalf("add begin: %d %v", r.status, begun)
		}
		id, body := h.create(t, newDevice(true), begun)
		r, m := b.json("/account/passkeys/finish?ceremony="+url.QueryEscape(id), body, csrf)
		added, _ := m["redirect"].(string)
		if r.status != 200 || added == "" {
			t.Fatalf("add finish: %d %v", r.status, m)
		}
		if page := b.get(added); strings.Contains(page.body, warning) || strings.Contains(page.body, described) {
			t.Errorf("account page with two passkeys warns of removing the only one:\n%s", page.body)
		}
	}
}
