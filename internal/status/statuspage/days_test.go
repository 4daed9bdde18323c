package statuspage

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // Europe/Oslo on a host without a zoneinfo database

	"github.com/varde-eid/varde/internal/health"
	"github.com/varde-eid/varde/internal/status"
	"github.com/varde-eid/varde/internal/store"
	"github.com/varde-eid/varde/internal/store/sqlstore"
)

// newYearNode is a node whose pages' zone is Europe/Oslo, on 10 January
// 2027, over a real store that recorded BankID working at noon on 31
// December and failing at 00:30 on New Year's Day, Oslo time (23:30 UTC
// on 31 December), with an outage from then to 00:50.
func newYearNode(t *testing.T) (svc *status.Service, h *Handler, clock time.Time) {
	t.Helper()
	ctx := context.Background()
	oslo, err := time.LoadLocation("Europe/Oslo")
	if err != nil {
		t.Fatal(err)
	}
	clock = time.Date(2027, 1, 10, 12, 0, 0, 0, time.UTC)
	db, err := sqlstore.OpenSQLite(ctx, filepath.Join(t.TempDir(), "status.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	night := time.Date(2026, 12, 31, 23, 30, 0, 0, time.UTC)
	err = db.RecordProbes(ctx, []*store.ProbeRecord{
		{Component: "bankid", Node: "n1", Time: time.Date(2026, 12, 31, 12, 0, 0, 0, time.UTC), Duration: time.Millisecond, OK: true, State: store.HealthUp},
		{Component: "bankid", Node: "n1", Time: night, Duration: time.Millisecond, OK: false, State: store.HealthDown},
		{Component: "bankid", Node: "n1", Time: clock.Add(-time.Minute), Duration: time.Millisecond, OK: true, State: store.HealthUp},
	})
	if err != nil {
		t.Fatal(err)
	}
	in := &store.Incident{ID: "inc-newyear", Component: "bankid", Components: []string{"bankid"}, Severity: store.SeverityDown, StartedAt: night, OpenedAt: night.Add(time.Minute),
		Updates: []*store.IncidentUpdate{{Time: night.Add(time.Minute), Kind: store.UpdateOpened, State: store.HealthDown, Author: status.Author}}}
	if err := db.OpenIncident(ctx, in); err != nil {
		t.Fatal(err)
	}
	in.RecoveredAt, in.ResolvedAt = night.Add(20*time.Minute), night.Add(25*time.Minute)
	if err := db.UpdateIncident(ctx, in); err != nil {
		t.Fatal(err)
	}
	now := func() time.Time { return clock }
	rec := &status.Recorded{Store: db, Health: health.Config{Interval: time.Hour}, Now: now}
	if err := rec.Load(ctx); err != nil {
		t.Fatal(err)
	}
	svc = &status.Service{Store: db, Monitor: rec, Node: "n1", Zone: oslo, Now: now}
	pages := newPages(t)
	pages.TimeZone = oslo
	return svc, &Handler{Source: svc, Pages: pages, Now: now, Log: slog.New(slog.DiscardHandler)}, clock
}

// TestQuartersAndDaysInThePagesZone: with the pages' zone Europe/Oslo,
// an outage at 00:30 on New Year's Day in Oslo (23:30 UTC the day
// before) counts in the first quarter's report, not the last one's; the
// reports give their bounds in UTC and name the zone; the page's bar for
// 1 January holds it; and the page says in which zone its days run.
func TestQuartersAndDaysInThePagesZone(t *testing.T) {
	_, h, _ := newYearNode(t)
	mux := http.NewServeMux()
	h.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	for _, tc := range []struct {
		quarter, from, to string
		incidents         int
	}{
		{"2026-Q4", "2026-09-30T22:00:00Z", "2026-12-31T23:00:00Z", 0},
		{"2027-Q1", "2026-12-31T23:00:00Z", "2027-01-10T12:00:00Z", 1},
	} {
		res := get(t, srv.URL+"/status/api/v1/reports?quarter="+tc.quarter)
		var rep struct {
			From, To string
			TimeZone string `json:"time_zone"`
			Total    struct{ Incidents int }
		}
		if err := json.Unmarshal([]byte(res.body), &rep); err != nil {
			t.Fatalf("%s: %v\n%s", tc.quarter, err, res.body)
		}
		if rep.From != tc.from || rep.To != tc.to || rep.TimeZone != "Europe/Oslo" || rep.Total.Incidents != tc.incidents {
			t.Errorf("%s: from %s to %s in %q, %d incidents; want from %s to %s in Europe/Oslo, %d", tc.quarter,
				rep.From, rep.To, rep.TimeZone, rep.Total.Incidents, tc.from, tc.to, tc.incidents)
		}
	}
	for _, tc := range []struct{ lang, period string }{
		{"en", "From 2027-01-01 up to and including 2027-01-10."},
		{"nb", "Fra 2027-01-01 til og med 2027-01-10."},
	} {
		if body := get(t, srv.URL+"/status/reports?quarter=2027-Q1&lang="+tc.lang).body; !strings.Contains(body, tc.period) {
			t.Errorf("%s report lacks %q", tc.lang, tc.period)
		}
	}

	for _, tc := range []struct{ lang, newYear, eve, zone string }{
		{"en", "1 Jan 2027: 0\u00a0% of checks succeeded, at worst not working, 1 incident", "31 Dec 2026: 100\u00a0% of checks succeeded<", "midnight to midnight in the time zone Europe/Oslo"},
		{"nb", "01.01.2027: ", "31.12.2026: ", "midnatt til midnatt i tidssonen Europe/Oslo"},
		{"da", "01.01.2027: ", "31.12.2026: ", "midnat til midnat i tidszonen Europe/Oslo"},
	} {
		body := get(t, srv.URL+"/status?lang="+tc.lang).body
		for _, want := range []string{tc.newYear, tc.eve, tc.zone} {
			if !strings.Contains(body, want) {
				t.Errorf("%s page lacks %q", tc.lang, want)
			}
		}
	}
}

// TestExportCountsDaysInThePagesZone: the static export shows the
// same days and quarters as the served page.
func TestExportCountsDaysInThePagesZone(t *testing.T) {
	svc, h, clock := newYearNode(t)
	dir := filepath.Join(t.TempDir(), "status")
	if err := Export(context.Background(), svc, h.Pages, dir, ExportOptions{Now: func() time.Time { return clock }}); err != nil {
		t.Fatal(err)
	}
	index, err := os.ReadFile(filepath.Join(dir, "index.html"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"1 Jan 2027: 0\u00a0% of checks succeeded, at worst not working, 1 incident", "in the time zone Europe/Oslo"} {
		if !strings.Contains(string(index), want) {
			t.Errorf("exported page lacks %q", want)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "reports", "2027-Q1.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep status.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 12, 31, 23, 0, 0, 0, time.UTC); !rep.From.Equal(want) || rep.Total.Incidents != 1 {
		t.Errorf("exported 2027-Q1 from %v with %d incidents, want from %v with 1", rep.From, rep.Total.Incidents, want)
	}
	if _, err := os.Stat(filepath.Join(dir, "reports", "2026-Q4.json")); err != nil {
		t.Errorf("2026-Q4, measured on its last day, not exported: %v", err)
	}
}

// TestParsePeriodInThePagesZone: dates and quarters begin at midnight
// in the zone given, a period of dates is titled by its first and last
// day there, the quarter to date turns at midnight there, and a day
// whose midnight the clocks skip begins when they jump.
func TestParsePeriodInThePagesZone(t *testing.T) {
	oslo, err := time.LoadLocation("Europe/Oslo")
	if err != nil {
		t.Fatal(err)
	}
	santiago, err := time.LoadLocation("America/Santiago")
	if err != nil {
		t.Fatal(err)
	}
	utc := func(y int, m time.Month, d, h int) time.Time { return time.Date(y, m, d, h, 0, 0, 0, time.UTC) }
	for _, tc := range []struct {
		query    string
		now      time.Time
		zone     *time.Location
		title    string
		from, to time.Time
	}{
		{"from=2026-07-01&to=2026-08-01", now, oslo, "2026-07-01 – 2026-07-31", utc(2026, 6, 30, 22), utc(2026, 7, 31, 22)},
		{"quarter=2026-Q1", now, oslo, "2026-Q1", utc(2025, 12, 31, 23), utc(2026, 3, 31, 22)},
		{"", utc(2026, 9, 30, 22), oslo, "2026-Q3", utc(2026, 6, 30, 22), utc(2026, 9, 30, 22)},
		{"", utc(2026, 9, 30, 23), oslo, "2026-Q4", utc(2026, 9, 30, 22), utc(2026, 12, 31, 23)},
		{"from=2026-09-06&to=2026-09-07", now, santiago, "2026-09-06", utc(2026, 9, 6, 4), utc(2026, 9, 7, 3)},
	} {
		q, _ := url.ParseQuery(tc.query)
		p, err := ParsePeriod(q, tc.now, tc.zone)
		if err != nil || p.Title != tc.title || !p.From.Equal(tc.from) || !p.To.Equal(tc.to) {
			t.Errorf("ParsePeriod(%q) at %s in %s = %+v, %v; want %s from %s to %s", tc.query, tc.now.Format(time.RFC3339), tc.zone,
				p, err, tc.title, tc.from.Format(time.RFC3339), tc.to.Format(time.RFC3339))
		}
	}
}
