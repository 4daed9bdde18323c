package demorp

import (
	"net/http"
	"strings"
)

// text is every string Demo Bank shows, in one language. A field left
// empty in one language is a test failure (TestTextsComplete).
type text struct {
	LanguageName string // the language's name in itself
	Languages    string // label of the language menu
	Skip         string // the skip link to the main content (WCAG 2.4.1)

	LoginTo, Intro             string
	LevelLegend, LevelHint     string
	LevelLow, LevelLowHint     string
	LevelSubst, LevelSubstHint string
	LevelHigh, LevelHighHint   string
	LoginButton                string
	WelcomeBack, GoToAccount   string

	AccountTitle, Hello, Welcome          string
	Name, Level, Provider, Subject, Birth string
	NationalID, ProviderPasskey           string
	SubjectHint                           string
	Token, TokenBound                     string
	ClaimsTitle, ClaimsHint, LogoutButton string
	Footer                                string

	ErrUnreachable, ErrStart, ErrState, ErrExpired, ErrIssuer string
	ErrCancelled, ErrNotCompleted, ErrSign, ErrCode, ErrToken string
	// ErrLevel: Varde's login reached a lower level than the one chosen;
	// ErrLevelUnknown: the form named a level the bank does not offer.
	ErrLevel, ErrLevelUnknown string
	// ErrUnavailable: the person went back from Varde because no way to
	// log in was working (temporarily_unavailable); ErrUnmet: because
	// none can reach the level chosen (unmet_authentication_requirements).
	ErrUnavailable, ErrUnmet string
	// ErrBusy: too many logins are in progress to begin another.
	ErrBusy string
	// ErrFull: a login came back, and too many people are logged in at
	// the bank to keep it.
	ErrFull string
	// ErrCrossSite: a form of another site was sent to the bank.
	ErrCrossSite string
	// ErrForm: the login form sent could not be read (too large or
	// malformed).
	ErrForm string
	// ErrLogoutVarde: the bank's session ended, but Varde could not be
	// asked to end its own; LogoutRetry is the link that asks again.
	ErrLogoutVarde, LogoutRetry string

	// ErrorTitle starts the title of a page that shows an error (WCAG
	// 3.3.1, 2.4.2: the title says so before anything else).
	ErrorTitle string
	// NotFound and NotFoundNext make the page for an address Demo Bank
	// does not serve.
	NotFound, NotFoundNext string
}

var texts = map[string]*text{
	"en": {
		LanguageName:    "English",
		Languages:       "Language",
		Skip:            "Skip to main content",
		LoginTo:         "Log in to %s",
		Intro:           "This is a demonstration bank. It logs you in with Varde, using a passkey or an eID.",
		LevelLegend:     "Security level to ask Varde for",
		LevelHint:       "A bank would choose this itself; here you can try both.",
		LevelLow:        "Low",
		LevelLowHint:    "for example a recovery code",
		LevelSubst:      "Substantial",
		LevelSubstHint:  "any passkey, also one synced between your devices",
		LevelHigh:       "High",
		LevelHighHint:   "a passkey that stays on one device",
		LoginButton:     "Log in with Varde",
		WelcomeBack:     "Welcome back",
		GoToAccount:     "Go to your accounts",
		AccountTitle:    "Your accounts",
		Hello:           "Hello, %s",
		Welcome:         "Welcome",
		Name:            "Name",
		Level:           "Security level",
		Provider:        "Logged in with",
		Subject:         "Your identifier (sub)",
		SubjectHint:     "Varde gives each service a different identifier for you, so services cannot link what you do.",
		Token:           "Access token",
		TokenBound:      "Bound to this bank's key (DPoP): a copy is useless without the key.",
		Birth:           "Date of birth",
		NationalID:      "Identity number",
		ProviderPasskey: "Passkey",
		ClaimsTitle:     "What Varde told %s about you",
		ClaimsHint:      "The claims of the ID token, as the bank received them.",
		LogoutButton:    "Log out",
		Footer:          "Demo Bank is part of the Varde demo. It is not a real bank.",
		ErrorTitle:      "Error",
		NotFound:        "There is no such page",
		NotFoundNext:    "Go to the home page to log in.",

		ErrUnreachable:  "Varde is not reachable. Try again in a moment.",
		ErrBusy:         "Too many logins are in progress at Demo Bank right now. Try again in a few minutes.",
		ErrFull:         "Demo Bank cannot keep more people logged in right now, so this login was not kept. Try again in a few minutes.",
		ErrForm:         "The login form could not be read. Choose a level and try again.",
		ErrLogoutVarde:  "You are logged out of Demo Bank, but Varde could not be reached, so you may still be logged in at Varde.",
		LogoutRetry:     "Try again to log out of Varde",
		ErrCrossSite:    "This request came from another website, so Demo Bank did not act on it. Use the buttons on Demo Bank's own pages.",
		ErrStart:        "Varde did not start the login. Try again in a moment. If it happens again, the terminal running the demo says why.",
		ErrState:        "This login did not start here. Please log in again.",
		ErrExpired:      "The login took too long. Please log in again.",
		ErrIssuer:       "The answer came from the wrong issuer.",
		ErrCancelled:    "You cancelled the login.",
		ErrNotCompleted: "The login was not completed.",
		ErrSign:         "Could not sign the token request.",
		ErrCode:         "Varde did not accept the login code.",
		ErrToken:        "The ID token from Varde was not valid.",
		ErrLevel:        "Varde logged you in at a lower level than the one you chose, so Demo Bank cannot let you in. Log in again in a way that reaches that level, or choose a lower one.",
		ErrLevelUnknown: "Choose one of the levels on this page.",
		ErrUnavailable:  "None of the ways to log in at Varde was working just now, so you were not logged in. Try again later.",
		ErrUnmet:        "None of the ways to log in at Varde can reach the level you chose. Choose a lower one.",
	},
	"nb": {
		LanguageName:    "Norsk bokmål",
		Languages:       "Språk",
		Skip:            "Gå til hovedinnholdet",
		LoginTo:         "Logg inn i %s",
		Intro:           "Dette er en demonstrasjonsbank. Den logger deg inn med Varde, med passnøkkel eller eID.",
		LevelLegend:     "Sikkerhetsnivå banken ber Varde om",
		LevelHint:       "En bank velger dette selv; her kan du prøve begge.",
		LevelLow:        "Lavt",
		LevelLowHint:    "for eksempel en gjenopprettingskode",
		LevelSubst:      "Betydelig",
		LevelSubstHint:  "hvilken som helst passnøkkel, også en som synkroniseres mellom enhetene dine",
		LevelHigh:       "Høyt",
		LevelHighHint:   "en passnøkkel som blir på én enhet",
		LoginButton:     "Logg inn med Varde",
		WelcomeBack:     "Velkommen tilbake",
		GoToAccount:     "Gå til kontoene dine",
		AccountTitle:    "Kontoene dine",
		Hello:           "Hei, %s",
		Welcome:         "Velkommen",
		Name:            "Navn",
		Level:           "Sikkerhetsnivå",
		Provider:        "Logget inn med",
		Subject:         "Identifikatoren din (sub)",
		SubjectHint:     "Varde gir hver tjeneste en egen identifikator for deg, så tjenestene ikke kan koble sammen det du gjør.",
		Token:           "Tilgangstoken",
		TokenBound:      "Bundet til nøkkelen til denne banken (DPoP): en kopi er verdiløs uten nøkkelen.",
		Birth:           "Fødselsdato",
		NationalID:      "Identitetsnummer",
		ProviderPasskey: "Passnøkkel",
		ClaimsTitle:     "Dette fortalte Varde %s om deg",
		ClaimsHint:      "Opplysningene i ID-tokenet, slik banken fikk dem.",
		LogoutButton:    "Logg ut",
		Footer:          "Demo Bank er en del av Varde-demoen. Det er ikke en ekte bank.",
		ErrorTitle:      "Feil",
		NotFound:        "Denne siden finnes ikke",
		NotFoundNext:    "Gå til forsiden for å logge inn.",

		ErrUnreachable:  "Varde svarer ikke. Prøv igjen om litt.",
		ErrBusy:         "Det pågår for mange innlogginger i Demo Bank akkurat nå. Prøv igjen om noen minutter.",
		ErrFull:         "Demo Bank kan ikke holde flere personer innlogget akkurat nå, så denne innloggingen ble ikke tatt vare på. Prøv igjen om noen minutter.",
		ErrForm:         "Innloggingsskjemaet kunne ikke leses. Velg et nivå og prøv igjen.",
		ErrLogoutVarde:  "Du er logget ut av Demo Bank, men Varde svarte ikke, så du kan fortsatt være logget inn i Varde.",
		LogoutRetry:     "Prøv å logge ut av Varde igjen",
		ErrCrossSite:    "Denne forespørselen kom fra et annet nettsted, så Demo Bank gjorde ingenting. Bruk knappene på Demo Banks egne sider.",
		ErrStart:        "Varde startet ikke innloggingen. Prøv igjen om litt. Skjer det igjen, står årsaken i terminalen der demoen kjører.",
		ErrState:        "Denne innloggingen startet ikke her. Logg inn på nytt.",
		ErrExpired:      "Innloggingen tok for lang tid. Logg inn på nytt.",
		ErrIssuer:       "Svaret kom fra feil utsteder.",
		ErrCancelled:    "Du avbrøt innloggingen.",
		ErrNotCompleted: "Innloggingen ble ikke fullført.",
		ErrSign:         "Kunne ikke signere forespørselen om token.",
		ErrCode:         "Varde godtok ikke innloggingskoden.",
		ErrToken:        "ID-tokenet fra Varde var ikke gyldig.",
		ErrLevel:        "Varde logget deg inn på et lavere nivå enn det du valgte, så Demo Bank kan ikke slippe deg inn. Logg inn igjen på en måte som når det nivået, eller velg et lavere.",
		ErrLevelUnknown: "Velg et av nivåene på denne siden.",
		ErrUnavailable:  "Ingen av måtene å logge inn på hos Varde virket akkurat nå, så du ble ikke logget inn. Prøv igjen senere.",
		ErrUnmet:        "Ingen av måtene å logge inn på hos Varde når det nivået du valgte. Velg et lavere.",
	},
	"da": {
		LanguageName:    "Dansk",
		Languages:       "Sprog",
		Skip:            "Gå til hovedindholdet",
		LoginTo:         "Log ind på %s",
		Intro:           "Dette er en demonstrationsbank. Den logger dig ind med Varde, med en adgangsnøgle eller et eID.",
		LevelLegend:     "Sikringsniveau som banken beder Varde om",
		LevelHint:       "En bank vælger det selv. Her kan du prøve begge.",
		LevelLow:        "Lavt",
		LevelLowHint:    "for eksempel en genoprettelseskode",
		LevelSubst:      "Betydeligt",
		LevelSubstHint:  "enhver adgangsnøgle, også en der synkroniseres mellem dine enheder",
		LevelHigh:       "Højt",
		LevelHighHint:   "en adgangsnøgle der bliver på én enhed",
		LoginButton:     "Log ind med Varde",
		WelcomeBack:     "Velkommen tilbage",
		GoToAccount:     "Gå til dine konti",
		AccountTitle:    "Dine konti",
		Hello:           "Hej %s",
		Welcome:         "Velkommen",
		Name:            "Navn",
		Level:           "Sikringsniveau",
		Provider:        "Logget ind med",
		Subject:         "Din identifikator (sub)",
		SubjectHint:     "Varde giver hver tjeneste sin egen identifikator for dig, så tjenesterne ikke kan sammenkoble det du gør hos hver af dem.",
		Token:           "Adgangstoken",
		TokenBound:      "Bundet til denne banks nøgle (DPoP): en kopi er værdiløs uden nøglen.",
		Birth:           "Fødselsdato",
		NationalID:      "Personnummer",
		ProviderPasskey: "Adgangsnøgle",
		ClaimsTitle:     "Det fortalte Varde %s om dig",
		ClaimsHint:      "Oplysningerne i ID-tokenet, sådan som banken modtog dem.",
		LogoutButton:    "Log ud",
		Footer:          "Demo Bank er en del af Varde-demoen. Det er ikke en rigtig bank.",
		ErrorTitle:      "Fejl",
		NotFound:        "Siden findes ikke",
		NotFoundNext:    "Gå til forsiden for at logge ind.",

		ErrUnreachable:  "Varde svarer ikke. Prøv igen om lidt.",
		ErrBusy:         "Der er for mange igangværende login i Demo Bank lige nu. Prøv igen om nogle minutter.",
		ErrFull:         "Demo Bank kan ikke holde flere personer logget ind lige nu, så dette login blev ikke gemt. Prøv igen om nogle minutter.",
		ErrForm:         "Loginformularen kunne ikke læses. Vælg et niveau, og prøv igen.",
		ErrLogoutVarde:  "Du er logget ud af Demo Bank, men Varde svarede ikke, så du kan stadig være logget ind i Varde.",
		LogoutRetry:     "Prøv at logge ud af Varde igen",
		ErrCrossSite:    "Denne forespørgsel kom fra et andet websted, så Demo Bank gjorde intet. Brug knapperne på Demo Banks egne sider.",
		ErrStart:        "Varde startede ikke dit login. Prøv igen om lidt. Sker det igen, står årsagen i terminalen, hvor demoen kører.",
		ErrState:        "Dette login startede ikke her. Log ind igen.",
		ErrExpired:      "Det tog for lang tid at logge ind. Log ind igen.",
		ErrIssuer:       "Svaret kom fra den forkerte udsteder.",
		ErrCancelled:    "Du afbrød dit login.",
		ErrNotCompleted: "Dit login blev ikke gennemført.",
		ErrSign:         "Kunne ikke signere anmodningen om token.",
		ErrCode:         "Varde godtog ikke loginkoden.",
		ErrToken:        "ID-tokenet fra Varde var ikke gyldigt.",
		ErrLevel:        "Varde loggede dig ind på et lavere niveau end det, du valgte, så Demo Bank kan ikke lukke dig ind. Log ind igen på en måde, der når det niveau, eller vælg et lavere.",
		ErrLevelUnknown: "Vælg et af niveauerne på denne side.",
		ErrUnavailable:  "Ingen af måderne at logge ind på hos Varde virkede lige nu, så du blev ikke logget ind. Prøv igen senere.",
		ErrUnmet:        "Ingen af måderne at logge ind på hos Varde når det niveau, du valgte. Vælg et lavere.",
	},
}

// languages in the order the menu lists them; the first is the fallback.
var languages = []string{"nb", "en", "da"}

const langCookie = "demobank_lang"

// lang picks the page language: ?lang=, then Demo Bank's own cookie, then
// the browser's Accept-Language, then Norwegian.
func lang(r *http.Request) string {
	if l := r.URL.Query().Get("lang"); texts[l] != nil {
		return l
	}
	if c, err := r.Cookie(langCookie); err == nil && texts[c.Value] != nil {
		return c.Value
	}
	for _, tag := range strings.Fields(uiLocales(r.Header.Get("Accept-Language"))) {
		base, _, _ := strings.Cut(strings.ToLower(tag), "-")
		if base == "no" || base == "nn" {
			base = "nb"
		}
		if texts[base] != nil {
			return base
		}
	}
	return languages[0]
}

// levels names the eIDAS levels Demo Bank knows; others are shown as the
// raw acr value.
var levels = map[string]func(t *text) (name, hint string){
	"http://eidas.europa.eu/LoA/low":         func(t *text) (string, string) { return t.LevelLow, t.LevelLowHint },
	"http://eidas.europa.eu/LoA/substantial": func(t *text) (string, string) { return t.LevelSubst, t.LevelSubstHint },
	"http://eidas.europa.eu/LoA/high":        func(t *text) (string, string) { return t.LevelHigh, t.LevelHighHint },
}

// providerName names the provider with the given ID: Varde's own in
// the page's language, an upstream by ProviderNames, else by its ID.
func (rp *RP) providerName(t *text, id string) string {
	if id == "passkey" {
		return t.ProviderPasskey
	}
	if name := rp.ProviderNames[id]; name != "" {
		return name
	}
	return id
}

type level struct {
	ACR, Name, Hint string
}

func describe(t *text, acr string) level {
	if f := levels[acr]; f != nil {
		name, hint := f(t)
		return level{ACR: acr, Name: name, Hint: hint}
	}
	return level{ACR: acr, Name: acr}
}
