package passkeyidp_test

import (
	"flag"
	"net/http"
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
		h := newHarness(t, true)
		h.now = time.Date(2026, 11, 20, 10, 35, 0, 0, time.UTC)
		b := h.browser(lang)
		e := b.enrol(newDevice(false), "", "fnr")
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
			got := strings.NewReplacer(laptop, "CREDENTIAL", ref[1], "EID").Replace(r.body)
			got = confirmVaries.ReplaceAllString(got, `$1"…"`)
			golden := filepath.Join("testdata", "confirm", name+"."+lang+".html")
			if *updateConfirmPages {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("%s %s differs from %s:\n%s", lang, name, golden, got)
			}
		}
	}
}
