package passkeyidp_test

import (
	"context"
	"fmt"
	"html"
	"net/url"
	"strings"
	"testing"
	"time"
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

// TestAccountWithoutRecoveryCodesSaysSo: a person with no recovery codes
// (one who came with an eID, or used them all) is told they have none
// and what codes are for, and is offered to make some, not told of "0
// unused codes" and of old codes that stop working; in nb, en and da.
func TestAccountWithoutRecoveryCodesSaysSo(t *testing.T) {
	h := newHarness(t, true)
	for _, lang := range []string{"nb", "en", "da"} {
		b := h.browser(lang)
		e := b.enrol(newDevice(false), "", "fnr")
		if err := h.db.ReplaceRecoveryCodes(context.Background(), e.person, nil, time.Now()); err != nil {
			t.Fatal(err)
		}
		page := b.get("/account")
		tr := func(key string) string { return html.EscapeString(h.p.Pages.T(lang, key)) }
		for _, want := range []string{tr("account.codes.count.none"), tr("account.codes.make")} {
			if want == "" || !strings.Contains(page.body, want) {
				t.Errorf("%s: account page without codes lacks %q", lang, want)
			}
		}
		for _, unwanted := range []string{fmt.Sprintf(tr("account.codes.count"), 0), tr("account.codes.hint"), tr("account.codes.new")} {
			if strings.Contains(page.body, unwanted) {
				t.Errorf("%s: account page without codes says %q", lang, unwanted)
			}
		}
	}
}
