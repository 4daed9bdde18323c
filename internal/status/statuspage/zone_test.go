package statuspage

import (
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // Europe/Oslo on a host without a zoneinfo database
)

// TestPageShowsTimesInThePagesZone: with the pages' zone set, the status
// page and an incident's page write their times in it, named, as each
// language writes a time, and the datetime attribute keeps the moment in
// RFC 3339 UTC; the API keeps UTC.
func TestPageShowsTimesInThePagesZone(t *testing.T) {
	oslo, err := time.LoadLocation("Europe/Oslo")
	if err != nil {
		t.Fatal(err)
	}
	pages := newPages(t)
	pages.TimeZone = oslo
	srv := serverWith(t, fixture(), pages)
	// BankID has been down since 11:02 UTC on 25 November, 12:02 in
	// Oslo; its incident began at 11:00 UTC.
	for _, tc := range []struct{ lang, since, started string }{
		{"nb", `<time datetime="2026-11-25T11:02:00Z">25.11.2026 kl. 12:02 CET</time>`, `<time datetime="2026-11-25T11:00:00Z">25.11.2026 kl. 12:00 CET</time>`},
		{"en", `<time datetime="2026-11-25T11:02:00Z">25 Nov 2026, 12:02 CET</time>`, `<time datetime="2026-11-25T11:00:00Z">25 Nov 2026, 12:00 CET</time>`},
		{"da", `<time datetime="2026-11-25T11:02:00Z">25.11.2026 kl. 12.02 CET</time>`, `<time datetime="2026-11-25T11:00:00Z">25.11.2026 kl. 12.00 CET</time>`},
	} {
		t.Run(tc.lang, func(t *testing.T) {
			if res := get(t, srv.URL+"/status?lang="+tc.lang); !strings.Contains(res.body, tc.since) {
				t.Errorf("status page lacks %s", tc.since)
			}
			if res := get(t, srv.URL+"/status/incidents/inc-0004?lang="+tc.lang); !strings.Contains(res.body, tc.started) {
				t.Errorf("incident page lacks %s", tc.started)
			}
		})
	}
	api := get(t, srv.URL+"/status/api/v1/incidents/inc-0004").body
	if !strings.Contains(api, `"2026-11-25T11:00:00Z"`) {
		t.Errorf("the API's times are not RFC 3339 UTC: %s", api)
	}
}
