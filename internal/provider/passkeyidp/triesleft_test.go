package passkeyidp_test

import (
	"fmt"
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/varde-eid/varde/internal/provider/passkeyidp"
)

// TestWrongCodeSaysTheTriesLeft: a wrong recovery code says how many
// more codes can be tried, in the page's language, for a service's
// login and for the account's (this browser, for an hour), and the last
// says what to do instead, so that the limit does not come unannounced.
func TestWrongCodeSaysTheTriesLeft(t *testing.T) {
	type words struct{ many, one, last string }
	texts := map[string]map[bool]words{
		"en": {
			false: {"You can try %d more codes in this login.", "You can try 1 more code in this login.",
				"That was the last try in this login. To try again, go back to the service you came from and start the login again."},
			true: {"This browser can try %d more codes in the next hour.", "This browser can try 1 more code in the next hour.",
				"That was this browser's last try for an hour. You can also log in another way, such as with an eID."},
		},
		"nb": {
			false: {"Du kan prøve %d koder til i denne innloggingen.", "Du kan prøve 1 kode til i denne innloggingen.",
				"Det var siste forsøk i denne innloggingen. For å prøve igjen går du tilbake til tjenesten du kom fra, og starter innloggingen på nytt."},
			true: {"Denne nettleseren kan prøve %d koder til den neste timen.", "Denne nettleseren kan prøve 1 kode til den neste timen.",
				"Det var siste forsøk fra denne nettleseren på en time. Du kan også logge inn på en annen måte, for eksempel med en e-ID."},
		},
		"da": {
			false: {"Du kan prøve %d koder mere i dette login.", "Du kan prøve 1 kode mere i dette login.",
				"Det var sidste forsøg i dette login. Hvis du vil prøve igen, så gå tilbage til den tjeneste du kom fra, og log ind forfra."},
			true: {"Denne browser kan prøve %d koder mere den næste time.", "Denne browser kan prøve 1 kode mere den næste time.",
				"Det var sidste forsøg fra denne browser i en time. Du kan også logge ind på en anden måde, for eksempel med et eID."},
		},
	}
	h := newHarness(t, true)
	for lang, byAccount := range texts {
		for account, want := range byAccount {
			b := h.browser(lang)
			attempt := "left-" + lang
			if account {
				attempt = ""
			}
			csrf := field(t, b.get("/passkey/recover?attempt="+attempt).body, "csrf")
			for i := 1; i <= passkeyidp.MaxRecoveryTries; i++ {
				r := b.form("/passkey/recover", url.Values{"attempt": {attempt}, "csrf": {csrf}, "code": {fmt.Sprintf("AAAA-BBBB-CCCC-%04d", i)}})
				left := passkeyidp.MaxRecoveryTries - i
				say := fmt.Sprintf(want.many, left)
				switch left {
				case 1:
					say = want.one
				case 0:
					say = want.last
				}
				if body := html.UnescapeString(r.body); r.status != http.StatusBadRequest || !strings.Contains(body, say) {
					t.Errorf("%s, account %v, try %d: %d, want %q in\n%s", lang, account, i, r.status, say, body)
				}
			}
		}
	}
}
