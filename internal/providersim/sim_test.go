package providersim

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/varde-eid/varde/internal/assurance"
	"github.com/varde-eid/varde/internal/httpx"
	"github.com/varde-eid/varde/internal/identity"
	"github.com/varde-eid/varde/internal/session"
	"github.com/varde-eid/varde/internal/store"
	"github.com/varde-eid/varde/web"
)

// TestLogin runs complete code flows with PKCE against sims with go-oidc
// and x/oauth2 as the client, picking a seeded person through the
// programmatic login, and checks what the ID token asserts.
func TestLogin(t *testing.T) {
	bankid := newSim(t, "bankid", assurance.High, nil)
	minid := newSim(t, "minid", assurance.Substantial, nil)
	persons := DefaultPersons()
	kari, amina := persons[0], persons[4]
	typed := "01819000049" // synthetic birth number of someone born 1 January 1990, not in the list

	for _, tc := range []struct {
		name     string
		h        *harness
		client   string
		acr      string
		form     url.Values
		wantID   string
		wantName string
		wantACR  string
		wantAMR  []string
	}{
		{"bankid secret person", bankid, secretClient, "high", url.Values{"person": {kari.ID}}, kari.Identifier.Value, "Kari Nordmann", assurance.ACRHigh, []string{"hwk", "pin", "mfa"}},
		{"bankid private_key_jwt number", bankid, jwtClient, "", url.Values{"number": {amina.Identifier.Value}}, amina.Identifier.Value, "Amina Yusuf", assurance.ACRHigh, []string{"hwk", "pin", "mfa"}},
		{"minid typed number", minid, secretClient, "substantial", url.Values{"number": {typed}}, typed, "Test Person", assurance.ACRSubstantial, []string{"pwd", "otp", "mfa"}},
		{"minid person, low requested", minid, jwtClient, "low", url.Values{"person": {kari.ID}}, kari.Identifier.Value, "Kari Nordmann", assurance.ACRSubstantial, []string{"pwd", "otp", "mfa"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.h.rp(tc.client)
			b := tc.h.browser()
			f, page, body := c.start(b, tc.acr)
			if page.StatusCode != http.StatusOK || page.Request.URL.Path != PathLogin {
				t.Fatalf("authorize ended at %d %s", page.StatusCode, page.Request.URL)
			}
			for _, want := range []string{`id="simulation"`, "Kari Nordmann", kari.Identifier.Value, tc.h.sim.Name()} {
				if !strings.Contains(body, want) {
					t.Errorf("login page lacks %q", want)
				}
			}
			resp, _ := tc.h.loginAs(b, page, tc.form)
			idt, claims, err := c.exchange(c.code(resp, f), f)
			if err != nil {
				t.Fatal(err)
			}
			nid, _ := claims["national_id"].(map[string]any)
			scheme := identity.SchemeNOFnr
			if n, _ := identity.ParseNO(tc.wantID); n != nil {
				scheme = n.Scheme
			}
			if nid["value"] != tc.wantID || nid["scheme"] != scheme {
				t.Errorf("national_id = %v, want %s %s", nid, scheme, tc.wantID)
			}
			if claims["acr"] != tc.wantACR || claims["name"] != tc.wantName || claims["provider"] != tc.h.sim.ID() {
				t.Errorf("acr %v name %v provider %v", claims["acr"], claims["name"], claims["provider"])
			}
			var amr []string
			for _, v := range claims["amr"].([]any) {
				amr = append(amr, v.(string))
			}
			if !slices.Equal(amr, tc.wantAMR) {
				t.Errorf("amr = %v, want %v", amr, tc.wantAMR)
			}
			if idt.Issuer != tc.h.sim.Issuer() || idt.Subject == "" {
				t.Errorf("iss %q sub %q", idt.Issuer, idt.Subject)
			}

			// The sim keeps a session: the next request in this browser
			// gets a code at once, for the same person.
			f2, resp2, _ := c.start(b, tc.acr)
			idt2, _, err := c.exchange(c.code(resp2, f2), f2)
			if err != nil {
				t.Fatal(err)
			}
			if idt2.Subject != idt.Subject {
				t.Errorf("single sign-on gave sub %q, first login %q", idt2.Subject, idt.Subject)
			}
		})
	}
}

// TestLevelTooHigh: a sim never logs anyone in below what the request
// asks for.
func TestLevelTooHigh(t *testing.T) {
	h := newSim(t, "minid", assurance.Substantial, nil)
	b := h.browser()
	_, page, body := h.rp(secretClient).start(b, "high")
	if !strings.Contains(body, `id="cannot-meet"`) || strings.Contains(body, `id="login"`) {
		t.Errorf("login page for a high request offers a login:\n%.400s", body)
	}
	resp, _ := h.loginAs(b, page, url.Values{"person": {DefaultPersons()[0].ID}})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("login for a high request: %d", resp.StatusCode)
	}
}

// TestCancel: the sim's Cancel ends the login in one step, as a real
// eID's does: its form posts from the sim's own page, and the client
// gets error=access_denied with its state and the sim's iss at its
// redirect URI (RFC 6749 §4.1.2.1, RFC 9207), whatever level was asked.
func TestCancel(t *testing.T) {
	h := newSim(t, "bankid", assurance.Substantial, nil)
	cancelForm := regexp.MustCompile(`<form method="post" action="([^"]+)"><p><button type="submit"[^>]* id="cancel">`)
	for _, acr := range []string{"", "high"} {
		c := h.rp(secretClient)
		b := h.browser()
		f, _, body := c.start(b, acr)
		m := cancelForm.FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("acr %q: login page has no cancel form:\n%s", acr, body)
		}
		req, _ := http.NewRequest(http.MethodPost, h.sim.Issuer()+m[1], nil)
		req.Header.Set("Origin", h.sim.Issuer())
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		resp, err := b.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if q := c.callback(resp, f); q.Get("error") != "access_denied" || q.Get("code") != "" {
			t.Errorf("acr %q: cancel gave the client %v", acr, q)
		}
		// The request is gone: the login page no longer shows it.
		if resp, _ := get(t, b, h.sim.Issuer()+PathLogin+"?"+resp.Request.URL.RawQuery); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("acr %q: login page after cancel: %d", acr, resp.StatusCode)
		}
	}
}

// TestLoginRefusals covers the login form's bad inputs.
func TestLoginRefusals(t *testing.T) {
	h := newSim(t, "bankid", assurance.High, nil)
	c := h.rp(secretClient)
	for _, tc := range []struct {
		name   string
		form   url.Values
		origin string
		site   string // Sec-Fetch-Site
		req    string // overrides the request ID
		status int
		want   string
		// invalid: the message is about the number field, which is
		// marked invalid and described by it.
		invalid bool
	}{
		{"nothing chosen", url.Values{}, "", "", "", 400, "Choose a person", false},
		{"unknown person", url.Values{"person": {"sim-nobody"}}, "", "", "", 400, "Choose a person", false},
		{"not a number", url.Values{"number": {"12345"}}, "", "", "", 400, "not a valid birth number", true},
		{"bad check digits", url.Values{"number": {"01819000048"}}, "", "", "", 400, "not a valid birth number", true},
		{"too long", url.Values{"number": {strings.Repeat("1", 40)}}, "", "", "", 400, "not a valid birth number", true},
		{"real number", url.Values{"number": {"01019000083"}}, "", "", "", 400, "Only synthetic test numbers", true},
		{"own host over https", url.Values{"number": {"01819000048"}}, "https://" + strings.TrimPrefix(h.sim.Issuer(), "http://"), "", "", 400, "not a valid birth number", true},
		{"other origin", url.Values{"number": {"01819000049"}}, "http://localhost:8080", "", "", 403, "", false},
		{"other origin over https", url.Values{"number": {"01819000049"}}, "https://localhost:8080", "", "", 403, "", false},
		{"other site", url.Values{"number": {"01819000049"}}, "null", "cross-site", "", 403, "", false},
		{"same site, other port", url.Values{"number": {"01819000049"}}, "null", "same-site", "", 403, "", false},
		{"unknown request", url.Values{"number": {"01819000049"}}, "", "", "nope", 400, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := h.browser()
			_, page, _ := c.start(b, "")
			tc.form.Set("req", page.Request.URL.Query().Get("req"))
			if tc.req != "" {
				tc.form.Set("req", tc.req)
			}
			tc.form.Set("lang", "en")
			req, _ := http.NewRequest(http.MethodPost, h.sim.Issuer()+PathLogin+"?lang=en", strings.NewReader(tc.form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if tc.origin != "" {
				req.Header.Set("Origin", tc.origin)
			}
			if tc.site != "" {
				req.Header.Set("Sec-Fetch-Site", tc.site)
			}
			resp, err := b.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body strings.Builder
			_, _ = io.Copy(&body, resp.Body)
			if resp.StatusCode != tc.status || !strings.Contains(body.String(), tc.want) {
				t.Errorf("status %d, want %d with %q:\n%.600s", resp.StatusCode, tc.status, tc.want, body.String())
			}
			// WCAG 2.4.2, 3.3.1: the login page showing an error says so
			// first in its title.
			if tc.want != "" && !strings.Contains(body.String(), "<title>Error: Log in with ") {
				t.Errorf("title does not start with Error:\n%.400s", body.String())
			}
			tied := strings.Contains(body.String(), `aria-describedby="number-hint error" aria-invalid="true"`)
			if tied != tc.invalid || tied != strings.Contains(body.String(), `aria-invalid`) {
				t.Errorf("number field tied to the error: %v, want %v", tied, tc.invalid)
			}
			// An error about the choice describes the group of choices.
			choice := strings.Contains(body.String(), `<fieldset aria-describedby="error">`)
			if want := tc.want == "Choose a person"; choice != want {
				t.Errorf("choice of person tied to the error: %v, want %v", choice, want)
			}
			for _, ck := range b.Jar.Cookies(mustURL(h.sim.Issuer())) {
				if strings.HasPrefix(ck.Name, "varde_sim_") {
					t.Errorf("a refused login set cookie %s", ck.Name)
				}
			}
		})
	}
}

// TestSessionCookie: the sim's session cookie has its own name, so a
// Varde session cookie on the same host survives a login at the sim.
func TestSessionCookie(t *testing.T) {
	h := newSim(t, "bankid", assurance.High, nil)
	c := h.rp(secretClient)
	b := h.browser()
	u := mustURL(h.sim.Issuer())
	b.Jar.SetCookies(u, []*http.Cookie{{Name: session.CookieName, Value: "varde-node-session", Path: "/"}})
	f, page, _ := c.start(b, "")
	resp, _ := h.loginAs(b, page, url.Values{"person": {DefaultPersons()[1].ID}})
	c.code(resp, f)
	got := map[string]string{}
	for _, ck := range b.Jar.Cookies(u) {
		got[ck.Name] = ck.Value
	}
	if got[session.CookieName] != "varde-node-session" {
		t.Errorf("Varde's cookie changed: %q", got[session.CookieName])
	}
	if got["varde_sim_bankid"] == "" {
		t.Errorf("no sim session cookie: %v", got)
	}
}

// TestSamePersonsEverywhere: sims built with the same seed assert the
// same identifiers; another seed gives other numbers; all are valid
// synthetic numbers.
func TestSamePersonsEverywhere(t *testing.T) {
	a := newSim(t, "bankid", assurance.High, nil)
	b := newSim(t, "minid", assurance.Substantial, nil)
	if !reflect.DeepEqual(a.sim.Persons(), b.sim.Persons()) {
		t.Fatalf("persons differ:\n%v\n%v", a.sim.Persons(), b.sim.Persons())
	}
	list := func(h *harness) []personJSON {
		_, body := get(t, http.DefaultClient, h.sim.Issuer()+PathPersons)
		var out struct{ Persons []personJSON }
		if err := json.Unmarshal([]byte(body), &out); err != nil {
			t.Fatal(err)
		}
		return out.Persons
	}
	la, lb := list(a), list(b)
	if len(la) != len(DefaultPersons()) || !reflect.DeepEqual(la, lb) {
		t.Errorf("/sim/persons differ or are incomplete:\n%v\n%v", la, lb)
	}
	other, err := NewPersons("another seed")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	schemes := map[string]int{}
	for i, p := range DefaultPersons() {
		n, err := identity.Parse(p.Identifier.Scheme, p.Identifier.Value)
		if err != nil || !n.Synthetic() || n.BirthDate.Format("2006-01-02") != p.BirthDate {
			t.Errorf("%s: %v synthetic=%v", p.Name(), err, n != nil && n.Synthetic())
		}
		if seen[p.Identifier.Value] || seen[p.ID] {
			t.Errorf("%s: number or ID repeated", p.Name())
		}
		seen[p.Identifier.Value], seen[p.ID] = true, true
		schemes[p.Identifier.Scheme]++
		if other[i].Identifier == p.Identifier && other[i].BirthDate == p.BirthDate && i == 0 {
			t.Errorf("another seed gave the same number for %s", p.Name())
		}
	}
	if schemes[identity.SchemeNOFnr] == 0 || schemes[identity.SchemeNODnr] == 0 {
		t.Errorf("want both birth numbers and D-numbers: %v", schemes)
	}
}

// TestConfigValidation reports every problem at once and keeps sims on
// loopback.
func TestConfigValidation(t *testing.T) {
	h := newSim(t, "ok", assurance.High, nil)
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"public address", func(c *Config) { c.Addr = "0.0.0.0:0" }, "addr: host must be localhost"},
		{"public admin", func(c *Config) { c.AdminAddr = "192.0.2.1:0" }, "admin addr: host must be"},
		{"bad id", func(c *Config) { c.ID = "Bank ID" }, "id must be"},
		{"no level", func(c *Config) { c.Level = assurance.None }, "level must be"},
		{"no store", func(c *Config) { c.Store = nil }, "a store is required"},
		{"two auth methods", func(c *Config) {
			c.Clients = []Client{{ID: "x", Secret: "s", JWKSURI: "http://localhost/jwks", RedirectURIs: []string{callback}}}
		}, "exactly one"},
		{"no redirect", func(c *Config) { c.Clients = []Client{{ID: "x", Secret: "s"}} }, "redirect URI is required"},
		{"bad mode", func(c *Config) { c.Fault = Fault{Mode: "broken"} }, "fault mode"},
		{"short token", func(c *Config) { c.AdminToken = "abc" }, "admin token"},
		{"bad person", func(c *Config) {
			c.Persons = []Person{{GivenName: "X", Identifier: store.Identifier{Scheme: identity.SchemeNOFnr, Value: "123"}}}
		}, "person"},
		{"real person", func(c *Config) {
			c.Persons = []Person{{GivenName: "X", Identifier: store.Identifier{Scheme: identity.SchemeNOFnr, Value: "01019000083"}}}
		}, "synthetic"},
		{"other scheme", func(c *Config) {
			c.Persons = []Person{{GivenName: "X", Identifier: store.Identifier{Scheme: identity.SchemeDKCPR, Value: "0101901234"}}}
		}, "no:fnr or no:dnr"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{ID: "sim", Name: "Sim", Level: assurance.High, Store: h.db, Addr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0"}
			tc.mutate(&cfg)
			s, err := Start(context.Background(), cfg)
			if err == nil {
				s.Close()
				t.Fatal("started")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q lacks %q", err, tc.want)
			}
		})
	}
}

// TestPages renders the sim's pages in every language, marked as a
// simulation, and checks that Varde's own page set still loads with the
// sim's templates and catalogues in web/.
func TestPages(t *testing.T) {
	h := newSim(t, "bankid", assurance.High, nil)
	// The level inside a sentence has the glossary's lower-case name.
	for _, tc := range []struct{ lang, banner, title, client, level string }{
		{"en", "This is a simulation.", "Log in with Demo bankid", "You are logging in to Varde.", "Every login here counts as level high."},
		{"nb", "Dette er en simulering.", "Logg inn med Demo bankid", "Du logger inn på Varde.", "Hver innlogging her regnes som nivå høyt."},
		{"da", "Dette er en simulering.", "Log ind med Demo bankid", "Du logger ind på Varde.", "Hvert login her gælder som sikringsniveau højt."},
	} {
		b := h.browser()
		_, page, _ := h.rp(secretClient).start(b, "")
		_, body := get(t, b, page.Request.URL.String()+"&lang="+tc.lang)
		for _, want := range []string{`<html lang="` + tc.lang + `"`, tc.banner, tc.title, tc.client, tc.level} {
			if !strings.Contains(body, want) {
				t.Errorf("%s login page lacks %q", tc.lang, want)
			}
		}
		_, home := get(t, b, h.sim.Issuer()+"/?lang="+tc.lang)
		if !strings.Contains(home, tc.banner) || !strings.Contains(home, DefaultPersons()[2].Identifier.Value) {
			t.Errorf("%s home page:\n%.500s", tc.lang, home)
		}
		resp, nf := get(t, b, h.sim.Issuer()+"/nothing?lang="+tc.lang)
		if resp.StatusCode != http.StatusNotFound || !strings.Contains(nf, tc.banner) || strings.Contains(nf, "◆") {
			t.Errorf("%s not-found page is not the sim's: %d", tc.lang, resp.StatusCode)
		}
	}
	resp, _ := get(t, http.DefaultClient, h.sim.Issuer()+"/static/varde.css")
	if resp.StatusCode != http.StatusOK {
		t.Errorf("stylesheet: %d", resp.StatusCode)
	}
	if _, err := httpx.NewPages(web.Templates, web.Locales, languages(), slog.New(slog.DiscardHandler)); err != nil {
		t.Errorf("Varde's pages with the sim's files in web/: %v", err)
	}
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}
