package passkeyidp_test

import (
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestRecoveryCodeAsPeopleTypeIt: a recovery code typed or pasted as
// people do (small letters, spaces, the list's line ends, a zero
// printed with a slash typed as Ø, TestNormaliseCode) logs in; one that cannot be a code
// comes back, in its field, with what to fix, in the page's language.
func TestRecoveryCodeAsPeopleTypeIt(t *testing.T) {
	h := newHarness(t, true)
	e := h.browser("en").enrol(newDevice(false), "a", "fnr")

	typed := []string{
		strings.ToLower(strings.ReplaceAll(e.codes[0], "-", " ")),
		strings.ReplaceAll(e.codes[1], "-", "\r\n") + "\n",
	}
	for i, code := range typed {
		b := h.browser("en")
		attempt := "ok" + string(rune('a'+i))
		csrf := field(t, b.get("/passkey/recover?attempt="+attempt).body, "csrf")
		r := b.form("/passkey/recover", url.Values{"attempt": {attempt}, "csrf": {csrf}, "code": {code}})
		if r.status != http.StatusSeeOther {
			t.Errorf("code typed as %q: %d\n%s", code, r.status, r.body)
		}
	}

	tests := []struct {
		lang, code, want string
	}{
		{"en", "", "Type one of your recovery codes in the field."},
		{"nb", "", "Skriv inn en av gjenopprettingskodene dine i feltet."},
		{"da", "", "Skriv en af dine genoprettelseskoder i feltet."},
		{"en", "7KQ3-M9XD-2HFW", "You typed 12 of the 16 letters and numbers in a recovery code. Check that you typed all of it."},
		{"nb", "7KQ3-M9XD-2HFW", "Du skrev 12 av de 16 bokstavene og tallene i en gjenopprettingskode. Sjekk at du skrev hele koden."},
		{"da", "7KQ3-M9XD-2HFW", "Du har skrevet 12 af de 16 bogstaver og tal i en genoprettelseskode. Tjek at du har skrevet hele koden."},
		{"en", "7KQ3-M9XD-2HFW-BN4R 7KQ3", "You typed 20 letters and numbers, but a recovery code has 16. Check that you typed one code only, with nothing added."},
		{"nb", "7KQ3-M9XD-2HFW-BN4R 7KQ3", "Du skrev 20 bokstaver og tall, men en gjenopprettingskode har 16. Sjekk at du skrev bare én kode, uten noe ekstra."},
		{"da", "7KQ3-M9XD-2HFW-BN4R 7KQ3", "Du har skrevet 20 bogstaver og tal, men en genoprettelseskode har 16. Tjek at du kun har skrevet én kode, uden noget ekstra."},
		{"en", "7KQ3-M9XD-2HFW-BN4U", "No recovery code has a “U”. Check that part of the code against your list."},
		{"nb", "7KQ3-M9XD-2HFW-BN4U", "Ingen gjenopprettingskode har «U». Sjekk den delen av koden mot listen din."},
		{"da", "7KQ3-M9XD-2HFW-BN4U", "Ingen genoprettelseskode har »U«. Tjek den del af koden mod din liste."},
	}
	for _, tt := range tests {
		b := h.browser(tt.lang)
		csrf := field(t, b.get("/passkey/recover?attempt=bad").body, "csrf")
		r := b.form("/passkey/recover", url.Values{"attempt": {"bad"}, "csrf": {csrf}, "code": {tt.code}})
		msg := html.UnescapeString(r.body)
		if r.status != http.StatusBadRequest || !strings.Contains(msg, `<p class="error" id="code-error" role="alert">`+tt.want+`</p>`) {
			t.Errorf("%s, code %q: %d, want the error %q in\n%s", tt.lang, tt.code, r.status, tt.want, msg)
		}
		if tt.code != "" && !strings.Contains(msg, `value="`+tt.code+`"`) {
			t.Errorf("%s, code %q: the code typed is not back in its field", tt.lang, tt.code)
		}
	}
}
