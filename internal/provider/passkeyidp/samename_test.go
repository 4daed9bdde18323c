package passkeyidp_test

import (
	"context"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// TestSameDayPasskeysAreToldApart: a passkey added on the day of
// another, both with the default name, gets a default name of its own,
// and passkeys that share a name all the same (renamed alike, or stored
// before) are named apart on the account page and in the accessible
// names of their buttons (WCAG 2.2 SC 2.4.6, 2.4.4, 1.3.1), in every
// language.
func TestSameDayPasskeysAreToldApart(t *testing.T) {
	for _, l := range []struct{ lang, remove, rename string }{
		{"en", "Remove the passkey ", "Rename the passkey "},
		{"nb", "Fjern passnøkkelen ", "Endre navn på passnøkkelen "},
		{"da", "Fjern adgangsnøglen ", "Omdøb adgangsnøglen "},
	} {
		t.Run(l.lang, func(t *testing.T) {
			h := newHarness(t, true)
			b := h.browser(l.lang)
			e := b.enrol(newDevice(false), "", "fnr")
			addNamedPasskey(t, b, "")
			keys, err := h.db.ListPasskeys(context.Background(), e.person)
			if err != nil || len(keys) != 2 {
				t.Fatalf("passkeys: %d %v", len(keys), err)
			}
			if keys[0].Name == keys[1].Name {
				t.Errorf("two passkeys added on one day are both named %q", keys[0].Name)
			}
			// A third renamed to the first's name, as a person may.
			h.addStoredPasskey(t, e.person, keys[0].Name)

			page := b.get("/account")
			for _, verb := range []string{l.remove, l.rename} {
				labels := regexp.MustCompile(`aria-label="`+regexp.QuoteMeta(verb)+`([^"]*)"`).FindAllStringSubmatch(page.body, -1)
				if len(labels) != 3 {
					t.Fatalf("%d buttons %q…:\n%s", len(labels), verb, page.body)
				}
				seen := map[string]bool{}
				for _, m := range labels {
					if seen[m[1]] {
						t.Errorf("two buttons are both %q%s", verb, m[1])
					}
					seen[m[1]] = true
				}
			}
		})
	}
}

// twoAlike is a browser logged in to the account of a person with
// passkeys named "Laptop" and "laptop", and the second's credential ID.
func twoAlike(t *testing.T) (*browser, string) {
	t.Helper()
	h := newHarness(t, true)
	b := h.browser("en")
	e := b.enrol(newDevice(false), "", "fnr")
	h.addStoredPasskey(t, e.person, "Laptop")
	return b, h.addStoredPasskey(t, e.person, "laptop")
}

// TestRemovingOneOfTwoAlikeNamesTheShownName: the page that asks before
// removing a passkey names it as the account page does, so a person who
// chose "Laptop (2)" there is asked about "Laptop (2)".
func TestRemovingOneOfTwoAlikeNamesTheShownName(t *testing.T) {
	b, second := twoAlike(t)
	page := b.get("/account")
	if !strings.Contains(page.body, `aria-label="Remove the passkey laptop (2)"`) {
		t.Fatalf("account page does not number the second Laptop:\n%s", page.body)
	}
	if r := b.get("/account/passkeys/remove?credential=" + second); !strings.Contains(r.body, "<title>Remove the passkey “laptop (2)”?") {
		t.Errorf("confirmation page: %d\n%s", r.status, r.body)
	}
}

// TestRenamingOneOfTwoAlikeNamesTheShownName: the rename page names a
// passkey as the account page does, so a person who chose "laptop (2)"
// there renames "laptop (2)"; the field starts from the name stored,
// which is the one a save changes, and a refused name keeps the shown
// name in the heading.
func TestRenamingOneOfTwoAlikeNamesTheShownName(t *testing.T) {
	b, second := twoAlike(t)
	r := b.get("/account/passkeys/rename?credential=" + second)
	for _, want := range []string{
		"<title>Rename the passkey “laptop (2)”",
		">Rename the passkey “laptop (2)”</h1>",
		`name="name" value="laptop"`,
	} {
		if !strings.Contains(r.body, want) {
			t.Errorf("rename page: %d, want %s\n%s", r.status, want, r.body)
		}
	}
	csrf := attr(t, b.get("/account").body, "data-csrf")
	refused := b.form("/account/passkeys/rename", url.Values{"csrf": {csrf}, "credential": {second}, "name": {" "}})
	if !strings.Contains(refused.body, ">Rename the passkey “laptop (2)”</h1>") {
		t.Errorf("refused name: %d, want the shown name in the heading\n%s", refused.status, refused.body)
	}
}
