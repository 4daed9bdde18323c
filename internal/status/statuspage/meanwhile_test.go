package statuspage

import (
	"regexp"
	"strings"
	"testing"

	"github.com/varde-eid/varde/internal/status"
)

// TestOpenIncidentSaysWhatToDoMeanwhile: while a way to log in is down,
// its incident, on the page and on its own page, names the other ways
// to log in that work now (slowly too), in the reader's language, or
// says there is none; an incident that is over, or one of a part that
// is no way to log in, says nothing of it.
func TestOpenIncidentSaysWhatToDoMeanwhile(t *testing.T) {
	withStates := func(states map[string]status.State) *fakeSource {
		src := fixture()
		for i, c := range src.summary.Components {
			if st, ok := states[c.ID]; ok {
				src.summary.Components[i].State = st
			}
		}
		return src
	}
	tests := []struct {
		name   string
		src    *fakeSource
		path   string
		want   string
		absent []string
	}{
		{"one other", fixture(), "/status?lang=en",
			"Meanwhile you can log in another way, if the service you came from offers it: Passkey.", nil},
		{"one other, incident page", fixture(), "/status/incidents/inc-0004?lang=en",
			"Meanwhile you can log in another way, if the service you came from offers it: Passkey.", nil},
		{"nb", fixture(), "/status?lang=nb",
			"I mellomtiden kan du logge inn på en annen måte, hvis tjenesten du kom fra, tilbyr den: Passnøkkel.", nil},
		{"da", fixture(), "/status/incidents/inc-0004?lang=da",
			"I mellemtiden kan du logge ind på en anden måde, hvis den tjeneste du kom fra tilbyder den: Passkey.", nil},
		{"several", withStates(map[string]status.State{"provider:minid": status.Operational, "provider:eidas": status.Operational}), "/status?lang=en",
			"it: Passkey, MinID or EU eID.", nil},
		{"several, nb", withStates(map[string]status.State{"provider:minid": status.Operational}), "/status?lang=nb",
			"den: Passnøkkel eller MinID.", nil},
		{"none", withStates(map[string]status.State{"provider:passkey": status.Down}), "/status?lang=en",
			"No other way to log in is working right now. Try again later: this page shows when it works again.", []string{"Meanwhile"}},
		{"none, nb", withStates(map[string]status.State{"provider:passkey": status.Down}), "/status/incidents/inc-0004?lang=nb",
			"Ingen annen måte å logge inn på virker akkurat nå. Prøv igjen senere: denne siden viser når det virker igjen.", nil},
		{"none, da", withStates(map[string]status.State{"provider:passkey": status.Unknown}), "/status?lang=da",
			"Ingen anden måde at logge ind på virker lige nu. Prøv igen senere: denne side viser, når det virker igen.", nil},
		{"over", fixture(), "/status/incidents/inc-0001?lang=en",
			"", []string{"Meanwhile", "No other way", "What you can do"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := get(t, server(t, tt.src).URL+tt.path).body
			if tt.want != "" && !strings.Contains(body, tt.want) {
				t.Errorf("page lacks %q", tt.want)
			}
			for _, a := range tt.absent {
				if strings.Contains(body, a) {
					t.Errorf("page has %q", a)
				}
			}
		})
	}
	// A store outage is no way to log in out of service: no advice.
	src := fixture()
	src.summary.Open[0].Component, src.summary.Open[0].Components = "store", []string{"store"}
	body := get(t, server(t, src).URL+"/status?lang=en").body
	card := regexp.MustCompile(`(?s)<article class="incident-card" aria-labelledby="inc-inc-0004">.*?</article>`).FindString(body)
	if card == "" || strings.Contains(card, "Meanwhile") || strings.Contains(card, "No other way") {
		t.Errorf("a store incident names other ways to log in:\n%s", card)
	}
}

// TestMaintenanceSaysWhatToDoMeanwhile: planned maintenance of a way to
// log in, while it is under way, names the other ways that work; one
// only planned does not yet.
func TestMaintenanceSaysWhatToDoMeanwhile(t *testing.T) {
	src := fixture()
	body := get(t, server(t, src).URL+"/status?lang=en").body
	item := regexp.MustCompile(`(?s)<li class="maintenance">.*?</li>`)
	var underway, planned string
	for _, m := range item.FindAllString(body, -1) {
		switch {
		case strings.Contains(m, "MinID upgrade"):
			underway = m
		case strings.Contains(m, "Database maintenance"):
			planned = m
		}
	}
	if want := "Meanwhile you can log in another way, if the service you came from offers it: Passkey."; !strings.Contains(underway, want) {
		t.Errorf("maintenance under way lacks %q:\n%s", want, underway)
	}
	if planned == "" || strings.Contains(planned, "Meanwhile") || strings.Contains(planned, "No other way") {
		t.Errorf("planned store maintenance:\n%s", planned)
	}
	body = get(t, server(t, src).URL+"/status?lang=da").body
	if want := "I mellemtiden kan du logge ind på en anden måde, hvis den tjeneste du kom fra tilbyder den: Passkey."; strings.Count(body, want) != 2 {
		t.Errorf("the Danish page gives %q %d times, want twice (the incident and the maintenance)", want, strings.Count(body, want))
	}
}

// TestBannerSaysLoggingInWorks: while ways to log in are down and
// another works (the summary's overall state is degraded), the banner
// says that logging in works and names those that do not, in the
// reader's language, with the degraded shape beside it; while nobody
// can log in (overall down) it says that parts are not working.
func TestBannerSaysLoggingInWorks(t *testing.T) {
	src := fixture()
	src.summary.Overall = status.Degraded
	for i, c := range src.summary.Components {
		if c.ID == "provider:minid" {
			src.summary.Components[i].State = status.Down
		}
	}
	srv := server(t, src)
	for lang, want := range map[string]string{
		"en": "Logging in works, but not with BankID or MinID. Choose another way to log in.",
		"nb": "Innlogging virker, men ikke med BankID eller MinID. Velg en annen måte å logge inn på.",
		"da": "Login virker, men ikke med BankID eller MinID. Vælg en anden måde at logge ind på.",
	} {
		body := get(t, srv.URL+"/status?lang="+lang).body
		banner := regexp.MustCompile(`<p class="banner st-degraded"><span class="icon" aria-hidden="true">▲</span> <strong>([^<]*)</strong></p>`).FindStringSubmatch(body)
		if banner == nil || banner[1] != want {
			t.Errorf("%s: banner %q, want %q, marked degraded", lang, banner, want)
		}
	}
	src.summary.Overall = status.Down
	if body := get(t, srv.URL+"/status?lang=en").body; !strings.Contains(body, "<strong>Some parts are not working</strong>") {
		t.Error("with overall down, the banner does not say that parts are not working")
	}
}
