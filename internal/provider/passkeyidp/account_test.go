package passkeyidp_test

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // Europe/Oslo on a host without a zoneinfo database
)

// TestAccountShowsTimesInThePagesZone: the account page writes the
// times of a person's passkeys and activity in the zone the pages are
// configured with, as each language writes a time, each in a <time>
// element that gives the moment in RFC 3339.
func TestAccountShowsTimesInThePagesZone(t *testing.T) {
	oslo, err := time.LoadLocation("Europe/Oslo")
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, true)
	h.p.History = h.db
	h.p.Pages.TimeZone = oslo
	// 09:35 UTC is 10:35 in Oslo in November.
	h.now = time.Date(2026, 11, 22, 9, 35, 0, 0, time.UTC)
	b := h.browser("en")
	b.enrol(newDevice(false), "", "fnr")
	for _, tc := range []struct{ lang, want string }{
		{"nb", `<time datetime="2026-11-22T09:35:00Z">22.11.2026 kl. 10:35</time>`},
		{"en", `<time datetime="2026-11-22T09:35:00Z">22 Nov 2026, 10:35</time>`},
		{"da", `<time datetime="2026-11-22T09:35:00Z">22.11.2026 kl. 10.35</time>`},
	} {
		t.Run(tc.lang, func(t *testing.T) {
			r := b.get("/account?lang=" + tc.lang)
			if r.status != http.StatusOK {
				t.Fatalf("account: %d", r.status)
			}
			// The passkey's creation, and the activity: the identity
			// created, the recovery codes made.
			if n := strings.Count(r.body, tc.want); n < 2 {
				t.Errorf("%s shown %d times, want at least 2 (passkey and activity): %s", tc.want, n, r.body)
			}
			rows := activityRows(t, r.body)
			if len(rows) == 0 || rows[0][0] != tc.want {
				t.Errorf("activity rows %q, want the first at %s", rows, tc.want)
			}
		})
	}
}

// TestDefaultPasskeyNameIsThePagesDate: a new passkey is named with the
// date as the page's language writes dates elsewhere on the pages, in
// the pages' zone, not UTC's: just before midnight UTC it is already
// the next day in Oslo. The name made at enrolment is the date's; the
// one offered on the account page, and the one a passkey added there
// without a name gets, are the date's numbered apart from the first,
// and pass the rules a typed name must.
func TestDefaultPasskeyNameIsThePagesDate(t *testing.T) {
	oslo, err := time.LoadLocation("Europe/Oslo")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ lang, want string }{
		{"nb", "Passnøkkel 23.11.2026"},
		{"en", "Passkey 23 Nov 2026"},
		{"da", "Adgangsnøgle 23.11.2026"},
	} {
		t.Run(tc.lang, func(t *testing.T) {
			h := newHarness(t, true)
			h.p.Pages.TimeZone = oslo
			// 23:30 UTC on 22 November is 00:30 on 23 November in Oslo.
			h.now = time.Date(2026, 11, 22, 23, 30, 0, 0, time.UTC)
			b := h.browser(tc.lang)
			e := b.enrol(newDevice(false), "", "fnr")
			page := b.get("/account")
			if page.status != http.StatusOK || !strings.Contains(page.body, `placeholder="`+tc.want+` (2)"`) {
				t.Fatalf("account: %d, no placeholder %q:\n%s", page.status, tc.want+" (2)", page.body)
			}
			csrf := attr(t, page.body, "data-csrf")
			r, begun := b.json("/account/passkeys/begin", map[string]string{"name": ""}, csrf)
			if r.status != http.StatusOK {
				t.Fatalf("add without a name: %d %v", r.status, begun)
			}
			id, body := h.create(t, newDevice(false), begun)
			if r, m := b.json("/account/passkeys/finish?ceremony="+url.QueryEscape(id), body, csrf); r.status != http.StatusOK {
				t.Fatalf("add finish: %d %v", r.status, m)
			}
			keys, err := h.db.ListPasskeys(context.Background(), e.person)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, k := range keys {
				names = append(names, k.Name)
			}
			// Added at one instant, the two are listed in either order.
			slices.Sort(names)
			if !slices.Equal(names, []string{tc.want, tc.want + " (2)"}) {
				t.Errorf("passkey names %q, want %q and %q", names, tc.want, tc.want+" (2)")
			}
		})
	}
}
