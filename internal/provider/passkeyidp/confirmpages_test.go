package passkeyidp_test

import (
	"flag"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

var updateConfirmPages = flag.Bool("update-confirm-pages", false, "rewrite testdata/confirm/*.html from the pages as they are")

// confirmVaries matches what differs between two renderings of the same
// page besides the passkey's credential ID and the eID's reference,
// which name a person made afresh: the session's CSRF tokens and the
// nonce of a script.
var confirmVaries = regexp.MustCompile(`((?:name="csrf"|data-csrf=|data-keep-csrf=|nonce=)\s*(?:value=)?)"[^"]*"`)

// TestConfirmRemovalPagesAreUnchanged: the pages that ask before a
// passkey is removed and before an eID is unlinked render, in every
// language, exactly as in testdata/confirm, which holds them as they
// were when each had a template of its own: the one template they
// share changed none of their bytes.
func TestConfirmRemovalPagesAreUnchanged(t *testing.T) {
	for _, lang := range []string{"nb", "en", "da"} {
		// A harness each: the eID's number is one person's.
		h, b, e := pageHarness(t, lang)
		laptop := h.addStoredPasskey(t, e.person, "Laptop")
		h.linkEID(t, e.person)
		ref := eidRefRE.FindStringSubmatch(b.get("/account").body)
		if ref == nil {
			t.Fatalf("%s: no Remove form for the linked eID", lang)
		}
		for name, path := range map[string]string{
			"remove": "/account/passkeys/remove?credential=" + laptop,
			"unlink": "/account/eids/unlink?eid=" + ref[1],
		} {
			r := b.get(path)
			if r.status != http.StatusOK {
				t.Fatalf("%s %s: %d\n%s", lang, name, r.status, r.body)
			}
			samePage(t, name, lang, strings.NewReplacer(laptop, "CREDENTIAL", ref[1], "EID").Replace(r.body))
		}
	}
}

// TestPasskeyPagesAreUnchanged: the rename page, as asked for, as
// given back with a name refused and with a name another passkey
// took, and the page that asks before a removal, each for the second
// of two passkeys named alike (shown as "Laptop (2)"), render in every
// language exactly as in testdata/confirm: the code the two pages share
// to find the passkey and name it changed none of their bytes.
func TestPasskeyPagesAreUnchanged(t *testing.T) {
	for _, lang := range []string{"nb", "en", "da"} {
		h, b, e := pageHarness(t, lang)
		h.addStoredPasskey(t, e.person, "Laptop")
		second := h.addStoredPasskey(t, e.person, "laptop")
		h.addStoredPasskey(t, e.person, "Phone")
		csrf := field(t, b.get("/account/passkeys/rename?credential="+second).body, "csrf")
		for _, page := range []struct {
			name   string
			status int
			r      reply
		}{
			{"rename", http.StatusOK, b.get("/account/passkeys/rename?credential=" + second)},
			{"rename-refused", http.StatusBadRequest, b.form("/account/passkeys/rename", url.Values{"credential": {second}, "csrf": {csrf}, "name": {"  "}})},
			{"rename-taken", http.StatusConflict, b.form("/account/passkeys/rename", url.Values{"credential": {second}, "csrf": {csrf}, "name": {"phone"}})},
			{"remove-second", http.StatusOK, b.get("/account/passkeys/remove?credential=" + second)},
		} {
			if page.r.status != page.status {
				t.Fatalf("%s %s: %d, want %d\n%s", lang, page.name, page.r.status, page.status, page.r.body)
			}
			samePage(t, page.name, lang, strings.ReplaceAll(page.r.body, second, "CREDENTIAL"))
		}
	}
}

// pageHarness is a harness at a time the golden pages were made at,
// with a person enrolled in a browser that speaks lang.
func pageHarness(t *testing.T, lang string) (*harness, *browser, enrolled) {
	t.Helper()
	h := newHarness(t, true)
	h.now = time.Date(2026, 11, 20, 10, 35, 0, 0, time.UTC)
	b := h.browser(lang)
	return h, b, b.enrol(newDevice(false), "", "fnr")
}

// samePage compares got, the page name in lang with what names a
// person made afresh replaced, with testdata/confirm/name.lang.html,
// what varies from one rendering to the next left out
// (confirmVaries); with -update-confirm-pages it writes the file.
func samePage(t *testing.T, name, lang, got string) {
	t.Helper()
	got = confirmVaries.ReplaceAllString(got, `$1"…"`)
	golden := filepath.Join("testdata", "confirm", name+"."+lang+".html")
	if *updateConfirmPages {
		if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("%s %s differs from %s:\n%s", lang, name, golden, got)
	}
}
