package status_test

import (
	"context"
	"testing"
	"time"
	_ "time/tzdata" // Europe/Oslo on a host without a zoneinfo database

	"github.com/varde-eid/varde/internal/status"
	"github.com/varde-eid/varde/internal/store"
)

func oslo(t testing.TB) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Oslo")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// probe records one probe result of bankid by n1 at at.
func probe(t testing.TB, db store.Health, at time.Time, ok bool) {
	t.Helper()
	state := store.HealthUp
	if !ok {
		state = store.HealthDown
	}
	p := &store.ProbeRecord{Component: "bankid", Node: "n1", Time: at, Duration: time.Millisecond, OK: ok, State: state}
	if err := db.RecordProbes(context.Background(), []*store.ProbeRecord{p}); err != nil {
		t.Fatal(err)
	}
}

// outage records a resolved incident of bankid over [from, to).
func outage(t testing.TB, db store.Incidents, id string, from, to time.Time) {
	t.Helper()
	ctx := context.Background()
	in := &store.Incident{ID: id, Component: "bankid", Components: []string{"bankid"}, Severity: store.SeverityDown, StartedAt: from, OpenedAt: from.Add(time.Minute),
		Updates: []*store.IncidentUpdate{{Time: from.Add(time.Minute), Kind: store.UpdateOpened, State: store.HealthDown, Author: status.Author}}}
	if err := db.OpenIncident(ctx, in); err != nil {
		t.Fatal(err)
	}
	in.RecoveredAt, in.ResolvedAt = to, to.Add(5*time.Minute)
	if err := db.UpdateIncident(ctx, in); err != nil {
		t.Fatal(err)
	}
}

// bankDays is bankid's days in the summary, by calendar date.
func bankDays(t testing.TB, sum *status.Summary) map[string]status.Day {
	t.Helper()
	out := map[string]status.Day{}
	for _, h := range sum.History {
		if h.Component == "bankid" {
			for _, d := range h.Days {
				out[d.Day] = d
			}
		}
	}
	if len(out) != status.HistoryDays {
		t.Fatalf("bankid has %d distinct days, want %d", len(out), status.HistoryDays)
	}
	return out
}

// wantDay checks a day's start, probes and incidents.
func wantDay(t testing.TB, days map[string]status.Day, date string, start time.Time, probes, ok int64, incidents int) {
	t.Helper()
	d, found := days[date]
	switch {
	case !found:
		t.Errorf("no day %s", date)
	case !d.Date.Equal(start):
		t.Errorf("day %s starts at %s, want %s", date, d.Date.Format(time.RFC3339), start.Format(time.RFC3339))
	case d.Probes != probes || d.OK != ok || len(d.Incidents) != incidents:
		t.Errorf("day %s: %d probes, %d OK, incidents %v; want %d, %d, %d", date, d.Probes, d.OK, d.Incidents, probes, ok, incidents)
	}
}

// TestBarsCountDaysInThePagesZone: with the pages' zone Europe/Oslo, a
// failed probe and an outage at 00:30 Oslo time (23:30 UTC the day
// before, in winter) are on the Oslo day's bar, and "today" is the day
// in Oslo: the summary names the zone.
func TestBarsCountDaysInThePagesZone(t *testing.T) {
	ctx := context.Background()
	// 00:40 on 22 November in Oslo.
	clk := &clock{t: time.Date(2026, 11, 21, 23, 40, 0, 0, time.UTC)}
	h := newHarness(t, openDB(t), clk, "n1")
	h.svc.Zone = oslo(t)
	probe(t, h.db, time.Date(2026, 11, 21, 22, 30, 0, 0, time.UTC), true)  // 23:30 on the 21st
	probe(t, h.db, time.Date(2026, 11, 21, 23, 30, 0, 0, time.UTC), false) // 00:30 on the 22nd
	outage(t, h.db, "inc-night", time.Date(2026, 11, 21, 23, 30, 0, 0, time.UTC), time.Date(2026, 11, 21, 23, 35, 0, 0, time.UTC))
	sum, err := h.svc.Summary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if sum.TimeZone != "Europe/Oslo" {
		t.Errorf("summary's time_zone = %q, want Europe/Oslo", sum.TimeZone)
	}
	days := bankDays(t, sum)
	wantDay(t, days, "2026-11-21", time.Date(2026, 11, 20, 23, 0, 0, 0, time.UTC), 1, 1, 0)
	wantDay(t, days, "2026-11-22", time.Date(2026, 11, 21, 23, 0, 0, 0, time.UTC), 1, 0, 1)
	for _, hi := range sum.History {
		if last := hi.Days[len(hi.Days)-1]; last.Day != "2026-11-22" {
			t.Errorf("%s: the last bar is %s, want today in Oslo, 2026-11-22", hi.Component, last.Day)
		}
	}
}

// TestBarsAcrossTheClockChanges: the day clocks go forward lasts 23
// hours and the day they go back 25, in Europe/Oslo, and a probe or an
// outage at either edge of such a day is on its bar. Where the clocks
// skip midnight (America/Santiago), the day starts when they jump.
func TestBarsAcrossTheClockChanges(t *testing.T) {
	santiago, err := time.LoadLocation("America/Santiago")
	if err != nil {
		t.Fatal(err)
	}
	utc := func(month time.Month, day, hour, minute, sec int) time.Time {
		return time.Date(2026, month, day, hour, minute, sec, 0, time.UTC)
	}
	for _, tc := range []struct {
		name string
		zone *time.Location
		now  time.Time
		// edges: the last second of the day before, the first and last
		// of the day of the change, the first of the day after
		before, first, last, after time.Time
		date, prev, next           string
		hours                      time.Duration
	}{
		{name: "March, 23 hours", zone: oslo(t), now: utc(4, 10, 12, 0, 0),
			before: utc(3, 28, 22, 59, 59), first: utc(3, 28, 23, 0, 0), last: utc(3, 29, 21, 59, 59), after: utc(3, 29, 22, 0, 0),
			prev: "2026-03-28", date: "2026-03-29", next: "2026-03-30", hours: 23},
		{name: "October, 25 hours", zone: oslo(t), now: utc(11, 22, 12, 0, 0),
			before: utc(10, 24, 21, 59, 59), first: utc(10, 24, 22, 0, 0), last: utc(10, 25, 22, 59, 59), after: utc(10, 25, 23, 0, 0),
			prev: "2026-10-24", date: "2026-10-25", next: "2026-10-26", hours: 25},
		{name: "Santiago, midnight skipped", zone: santiago, now: utc(10, 1, 12, 0, 0),
			before: utc(9, 6, 3, 59, 59), first: utc(9, 6, 4, 0, 0), last: utc(9, 7, 2, 59, 59), after: utc(9, 7, 3, 0, 0),
			prev: "2026-09-05", date: "2026-09-06", next: "2026-09-07", hours: 23},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, openDB(t), &clock{t: tc.now}, "n1")
			h.svc.Zone = tc.zone
			probe(t, h.db, tc.before, true)
			probe(t, h.db, tc.first, false)
			probe(t, h.db, tc.last, false)
			probe(t, h.db, tc.after, true)
			// An outage in the last minutes of the day of the change.
			outage(t, h.db, "inc-late", tc.last.Add(-10*time.Minute), tc.last)
			sum, err := h.svc.Summary(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			days := bankDays(t, sum)
			wantDay(t, days, tc.prev, tc.first.Add(-24*time.Hour), 1, 1, 0)
			wantDay(t, days, tc.date, tc.first, 2, 0, 1)
			wantDay(t, days, tc.next, tc.after, 1, 1, 0)
			if got := days[tc.next].Date.Sub(days[tc.date].Date); got != tc.hours*time.Hour {
				t.Errorf("%s lasts %v, want %d hours", tc.date, got, tc.hours)
			}
		})
	}
}

// TestNodesFindTheLastProbeOnALongDay: the node list finds another
// node's last probe result late on the 25-hour day the clocks go back,
// in the day's 25th hour.
func TestNodesFindTheLastProbeOnALongDay(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Date(2026, 10, 26, 0, 30, 0, 0, time.UTC)}
	h := newHarness(t, openDB(t), clk, "n1")
	h.svc.Zone = oslo(t)
	last := time.Date(2026, 10, 25, 22, 30, 0, 0, time.UTC) // 23:30 CET on the 25th
	if err := h.db.RecordProbes(ctx, []*store.ProbeRecord{{Component: status.NodePrefix + "n2", Node: "n2", Time: last, Duration: time.Millisecond, OK: true, State: store.HealthUp}}); err != nil {
		t.Fatal(err)
	}
	nodes, err := h.svc.Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if n.Name == "n2" && !n.LastProbe.Equal(last) {
			t.Errorf("n2's last probe at %v, want %v", n.LastProbe, last)
		}
	}
	if len(nodes) != 1 {
		t.Errorf("nodes = %+v, want n2", nodes)
	}
}

// TestSettledDaysOfAnotherZoneAreNotKept: a service that counted the
// days of one zone and then counts those of another (its zone set anew)
// shows what a fresh service over the other zone's days shows, not the
// days it kept: from UTC to Oslo, and back.
func TestSettledDaysOfAnotherZoneAreNotKept(t *testing.T) {
	for _, tc := range []struct {
		name     string
		from, to *time.Location
		// the day a failed probe at 23:30 UTC on 10 November is on,
		// and when that day starts
		date  string
		start time.Time
	}{
		{"UTC to Oslo", time.UTC, oslo(t), "2026-11-11", time.Date(2026, 11, 10, 23, 0, 0, 0, time.UTC)},
		{"Oslo to UTC", oslo(t), time.UTC, "2026-11-10", time.Date(2026, 11, 10, 0, 0, 0, 0, time.UTC)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			clk := &clock{t: time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)}
			h := newHarness(t, openDB(t), clk, "n1")
			h.svc.Zone = tc.from
			for day := 10; day < 20; day++ {
				probe(t, h.db, time.Date(2026, 11, day, 23, 30, 0, 0, time.UTC), false)
				probe(t, h.db, time.Date(2026, 11, day, 12, 0, 0, 0, time.UTC), true)
			}
			if _, err := h.svc.Summary(ctx); err != nil { // settled days kept
				t.Fatal(err)
			}
			h.svc.Zone = tc.to
			clk.Add(time.Minute) // past the summary's CacheFor
			got, err := h.svc.Summary(ctx)
			if err != nil {
				t.Fatal(err)
			}
			fresh := &status.Service{Store: h.db, Monitor: h.mon, Node: "n1", Now: clk.Now, Zone: tc.to}
			want, err := fresh.Summary(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if g, w := historyOf(got, "bankid"), historyOf(want, "bankid"); g != w {
				t.Errorf("bars after the zone changed:\n%s\nfrom a fresh service:\n%s", g, w)
			}
			wantDay(t, bankDays(t, got), tc.date, tc.start, 2, 1, 0)
		})
	}
}
