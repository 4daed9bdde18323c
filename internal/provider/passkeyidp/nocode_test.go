package passkeyidp_test

import (
	"html"
	"strings"
	"testing"

	"github.com/varde-eid/varde/internal/httpx"
)

// TestRecoverPageSaysWhatToDoWithoutACode: a person who has lost their
// passkey and their recovery codes is told, on the page they are sent
// to when they have lost their passkey, that an eID takes them to their
// own Varde ID, where they can add a passkey and make new codes, with
// the way to choose one; and, with no eID either, what is true: where
// there is a help desk, it gives them a code to type on this page after
// checking their ID in person (ADR 62), and can block their Varde ID
// meanwhile, shown last on the page; where there is none, they need an
// eID to log in again. No page
// names a help desk that is not configured. The passkey login page
// says that the recovery page covers lost codes too.
func TestRecoverPageSaysWhatToDoWithoutACode(t *testing.T) {
	texts := map[string]struct{ hint, title, eid, other, after, none, noneDesk, desk string }{
		"en": {
			"If you have lost your recovery codes too, that page says what you can do instead.",
			"No recovery code?",
			"Log in with an eID instead. It gives us your national identity number, so it takes you to your own Varde ID.",
			"Choose another way to log in",
			"Then add a new passkey on your account page, and make new recovery codes there.",
			"No eID either? Then you need to get one before you can log in here again.",
			"No eID either? The help desk can give you a code to log in with here, once they have checked your ID in person: bring your passport or another ID with your photo. Type the code above, where a recovery code goes. It works once, within 24 hours.",
			"If your phone was stolen, the help desk can block your Varde ID in the meantime, so that no one else can use it.",
		},
		"nb": {
			"Har du mistet gjenopprettingskodene også, står det der hva du kan gjøre i stedet.",
			"Ingen gjenopprettingskode?",
			"Logg inn med en e-ID i stedet. Den gir oss fødselsnummeret eller D-nummeret ditt, så du kommer inn på din egen Varde-ID.",
			"Velg en annen måte å logge inn på",
			"Legg deretter til en ny passnøkkel på kontosiden din, og lag nye gjenopprettingskoder der.",
			"Har du ingen e-ID heller? Da må du skaffe deg en før du kan logge inn her igjen.",
			"Har du ingen e-ID heller? Da kan brukerstøtten gi deg en kode du kan logge inn med her, når de har sjekket legitimasjonen din ansikt til ansikt: ta med passet ditt eller en annen legitimasjon med bilde. Skriv koden i feltet over, der en gjenopprettingskode skal stå. Den virker én gang, innen 24 timer.",
			"Hvis telefonen din ble stjålet, kan brukerstøtten sperre Varde-ID-en din i mellomtiden, så ingen andre kan bruke den.",
		},
		"da": {
			"Har du også mistet dine genoprettelseskoder, står der på siden, hvad du kan gøre i stedet.",
			"Ingen genoprettelseskode?",
			"Log ind med et eID i stedet. Det giver os dit personnummer, så du kommer ind på dit eget Varde-ID.",
			"Vælg en anden måde at logge ind på",
			"Tilføj derefter en ny adgangsnøgle på din kontoside, og lav nye genoprettelseskoder der.",
			"Har du heller ikke et eID? Så skal du have et, før du kan logge ind her igen.",
			"Har du heller ikke et eID? Så kan supporten give dig en kode, du kan logge ind med her, når de har tjekket dit ID ansigt til ansigt: tag dit pas eller et andet ID med billede med. Skriv koden i feltet ovenfor, hvor en genoprettelseskode skal stå. Den virker én gang, inden for 24 timer.",
			"Hvis din telefon er blevet stjålet, kan supporten spærre dit Varde-ID i mellemtiden, så ingen andre kan bruge det.",
		},
	}
	h := newHarness(t, true)
	for _, withDesk := range []bool{false, true} {
		if withDesk {
			h.p.Pages.Support = &httpx.Support{Phone: "+47 22 00 00 00"}
		}
		for lang, want := range texts {
			none, notSaid := want.none, want.noneDesk
			if withDesk {
				none, notSaid = want.noneDesk, want.none
			}
			b := h.browser(lang)
			login := html.UnescapeString(b.get("/passkey/login?attempt=nc-" + lang).body)
			if !strings.Contains(login, want.hint) {
				t.Errorf("%s: the passkey login page does not say the recovery page covers lost codes:\n%s", lang, login)
			}
			for _, attempt := range []string{"nc-" + lang, ""} {
				page := html.UnescapeString(b.get("/passkey/recover?attempt=" + attempt).body)
				for _, s := range []string{`<h2 id="no-code">` + want.title + `</h2>`, want.eid, want.other, want.after, none} {
					if !strings.Contains(page, s) {
						t.Errorf("%s, attempt %q: the recovery page lacks %q:\n%s", lang, attempt, s, page)
					}
				}
				other := `href="/login?req=nc-` + lang + `"`
				if attempt == "" {
					other = `href="/login"`
				}
				if !strings.Contains(page, other) || !strings.Contains(page, `href="/account"`) {
					t.Errorf("%s, attempt %q: the recovery page does not link to %s and the account page", lang, attempt, other)
				}
				if strings.Contains(page, notSaid) {
					t.Errorf("%s, attempt %q, help desk configured %v: the recovery page says %q", lang, attempt, withDesk, notSaid)
				}
				desk := strings.Contains(page, want.desk)
				support := strings.Index(page, `id="support"`)
				if desk != withDesk || (support >= 0) != withDesk {
					t.Errorf("%s, attempt %q, help desk configured %v: names it %v, shows it %v", lang, attempt, withDesk, desk, support >= 0)
				}
				if withDesk && support < strings.Index(page, none) {
					t.Errorf("%s, attempt %q: the help desk comes before what the page says", lang, attempt)
				}
			}
			// A service's login that a code cannot end says the same
			// to a person with no eID.
			page := html.UnescapeString(b.get("/passkey/recover?attempt=high-nc-" + lang).body)
			if !strings.Contains(page, `id="no-eid">`+none) || strings.Contains(page, want.desk) != withDesk || strings.Contains(page, `id="support"`) != withDesk {
				t.Errorf("%s, help desk configured %v: the page for a code that is not enough:\n%s", lang, withDesk, page)
			}
		}
	}
}
