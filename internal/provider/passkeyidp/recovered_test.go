package passkeyidp_test

import (
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/varde-eid/varde/internal/httpx"
)

// TestAccountAfterARecoveryCodeSaysWhatToDo: a person who logged in to
// their account with a recovery code, having lost their phone, is told
// in plain words, in one notice, what that login lets them do and what
// not (services that ask for a more secure login refuse it), and what
// to do next, in order: add a passkey, which is no stronger; log in
// again with an eID to remove the lost one, which still works for
// whoever can unlock the device, and to make new codes, with the link
// to log in again. The notice about changes that need another login
// is not said a second time. What the help desk does for a person with
// no eID (removes their passkeys after an in-person check and gives
// them a code, ADR 62; blocks a stolen device's Varde ID) is said only
// where a help desk is configured.
func TestAccountAfterARecoveryCodeSaysWhatToDo(t *testing.T) {
	texts := map[string]struct{ what, add, lost, desk, again, weak string }{
		"en": {
			"You logged in with a recovery code or a code from the help desk. That lets you look after your account here, but services that ask for a more secure login, such as a bank, will not accept it.",
			"Add a new passkey below, so that you do not use up your codes. It will be no more secure than a recovery code, so services that ask for more will not accept it either.",
			"If you lost a phone or another device with a passkey on it, that passkey still works for anyone who can unlock the device. To remove it and make new recovery codes, log in again with an eID. Then add a passkey once more: one added after a login with an eID is accepted by services that ask for a more secure login.",
			"If you have no eID, the help desk can remove your passkeys after checking your ID in person, and give you a code to add a new one with. If the device was stolen, it can also block your Varde ID.",
			"Log in again",
			"To remove a passkey or make new recovery codes",
		},
		"nb": {
			"Du logget inn med en gjenopprettingskode eller en kode fra brukerstøtten. Da kan du ta vare på kontoen din her, men tjenester som krever en sikrere innlogging, for eksempel en bank, godtar den ikke.",
			"Legg til en ny passnøkkel nedenfor, så du ikke bruker opp kodene dine. Den blir ikke sikrere enn en gjenopprettingskode, så tjenester som krever mer, godtar den heller ikke.",
			"Hvis du har mistet en telefon eller en annen enhet med en passnøkkel på, virker den passnøkkelen fortsatt for alle som kan låse opp enheten. For å fjerne den og lage nye gjenopprettingskoder må du logge inn på nytt med en e-ID. Legg deretter til en passnøkkel én gang til: en som legges til etter en innlogging med e-ID, godtas av tjenester som krever en sikrere innlogging.",
			"Har du ingen e-ID, kan brukerstøtten fjerne passnøklene dine etter å ha sjekket legitimasjonen din ansikt til ansikt, og gi deg en kode du kan legge til en ny med. Ble enheten stjålet, kan den også sperre Varde-ID-en din.",
			"Logg inn på nytt",
			"For å fjerne en passnøkkel eller lage nye gjenopprettingskoder",
		},
		"da": {
			"Du loggede ind med en genoprettelseskode eller en kode fra supporten. Så kan du passe på din konto her, men tjenester, der kræver et mere sikkert login, for eksempel en bank, godtager det ikke.",
			"Tilføj en ny adgangsnøgle nedenfor, så du ikke bruger dine koder op. Den bliver ikke mere sikker end en genoprettelseskode, så tjenester, der kræver mere, godtager den heller ikke.",
			"Hvis du har mistet en telefon eller en anden enhed med en adgangsnøgle på, virker den adgangsnøgle stadig for alle, der kan låse enheden op. For at fjerne den og lave nye genoprettelseskoder skal du logge ind igen med et eID. Tilføj derefter en adgangsnøgle én gang til: en, der tilføjes efter et login med et eID, godtages af tjenester, der kræver et mere sikkert login.",
			"Hvis du ikke har et eID, kan supporten fjerne dine adgangsnøgler efter at have tjekket dit ID ansigt til ansigt og give dig en kode, som du kan tilføje en ny med. Hvis enheden blev stjålet, kan den også spærre dit Varde-ID.",
			"Log ind igen",
			"Hvis du vil fjerne en adgangsnøgle eller lave nye genoprettelseskoder",
		},
	}
	h := newHarness(t, true)
	e := h.browser("en").enrol(newDevice(false), "a", "fnr")
	code := 0
	for _, withDesk := range []bool{false, true} {
		if withDesk {
			h.p.Pages.Support = &httpx.Support{Phone: "+47 22 00 00 00"}
		}
		for lang, want := range texts {
			b := h.browser(lang)
			csrf := field(t, b.get("/passkey/recover?attempt=").body, "csrf")
			if r := b.form("/passkey/recover", url.Values{"attempt": {""}, "csrf": {csrf}, "code": {e.codes[code]}}); r.status != http.StatusSeeOther {
				t.Fatalf("%s: recovery login: %d", lang, r.status)
			}
			code++
			page := html.UnescapeString(b.get("/account").body)
			start := strings.Index(page, `<div class="notice" id="recovered">`)
			if start < 0 {
				t.Fatalf("%s: no notice after a recovery code:\n%s", lang, page)
			}
			notice := page[start : start+strings.Index(page[start:], "</div>")]
			for _, s := range []string{want.what, "<li>" + want.add + "</li>", want.lost, `<a href="/login">` + want.again + `</a>`} {
				if !strings.Contains(notice, s) {
					t.Errorf("%s: the notice lacks %q:\n%s", lang, s, notice)
				}
			}
			if strings.Contains(notice, want.desk) != withDesk {
				t.Errorf("%s, help desk configured %v: the notice names it %v", lang, withDesk, !withDesk)
			}
			if strings.Contains(page, want.weak) {
				t.Errorf("%s: the page says again what needs another login:\n%s", lang, page)
			}
		}
	}
}
