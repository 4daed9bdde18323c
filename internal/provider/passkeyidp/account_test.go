package passkeyidp_test

import (
	"net/http"
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
// date in the pages' zone, not UTC's: just before midnight UTC it is
// already the next day in Oslo.
func TestDefaultPasskeyNameIsThePagesDate(t *testing.T) {
	oslo, err := time.LoadLocation("Europe/Oslo")
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, true)
	h.p.Pages.TimeZone = oslo
	// 23:30 UTC on 22 November is 00:30 on 23 November in Oslo.
	h.now = time.Date(2026, 11, 22, 23, 30, 0, 0, time.UTC)
	b := h.browser("en")
	b.enrol(newDevice(false), "", "fnr")
	r := b.get("/account?lang=en")
	if r.status != http.StatusOK {
		t.Fatalf("account: %d", r.status)
	}
	if !strings.Contains(r.body, "Passkey 2026-11-23") || strings.Contains(r.body, "Passkey 2026-11-22") {
		t.Errorf("the new passkey is not named Passkey 2026-11-23: %s", r.body)
	}
}
