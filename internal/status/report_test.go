package status_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/health"
	"github.com/varde-eid/varde/internal/status"
	"github.com/varde-eid/varde/internal/store"
)

// quarter is [from, to) of 2026's quarter q.
func quarter(q int) (from, to time.Time) {
	from = time.Date(2026, time.Month(3*q-2), 1, 0, 0, 0, 0, time.UTC)
	return from, from.AddDate(0, 3, 0)
}

// TestConcurrentReportsShareOneComputation: a burst of requests for one
// report while it is being computed waits for it instead of reading the
// period again.
func TestConcurrentReportsShareOneComputation(t *testing.T) {
	h, cs := heldReports(t)
	from, to := quarter(3)
	computed, shared := burst(t, 20, &cs.reports, cs.holdReports, func() (*status.Report, error) {
		return h.svc.Report(context.Background(), from, to, "2026-Q3")
	})
	if computed != 1 || !shared {
		t.Errorf("20 concurrent requests computed %d reports, all the same one: %v; want 1, true", computed, shared)
	}
}

// heldReports is a node whose reports wait for cs.holdReports to close
// before they read incidents.
func heldReports(t *testing.T) (*harness, *countingStore) {
	h, cs := countedNode(t)
	h.round()
	cs.holdReports = make(chan struct{})
	return h, cs
}

// TestReportsComputedAtOnceAreBounded: while two reports are being
// computed, a request for a third is refused (ErrBusy), and one for a
// report being computed waits for it.
func TestReportsComputedAtOnceAreBounded(t *testing.T) {
	ctx := context.Background()
	h, cs := heldReports(t)

	var wg sync.WaitGroup
	reps := make([]*status.Report, 3)
	ask := func(i, q int) {
		wg.Go(func() {
			from, to := quarter(q)
			rep, err := h.svc.Report(ctx, from, to, "")
			if err != nil {
				t.Errorf("Q%d: %v", q, err)
			}
			reps[i] = rep
		})
	}
	ask(0, 1)
	ask(1, 2)
	waitFor(&cs.reports, 2)
	from, to := quarter(3)
	third := make(chan error, 1)
	go func() {
		_, err := h.svc.Report(ctx, from, to, "")
		third <- err
	}()
	select {
	case err := <-third:
		if !errors.Is(err, status.ErrBusy) {
			t.Errorf("a third report while two are computed: %v, want ErrBusy", err)
		}
	case <-time.After(10 * time.Second): // not refused, it waits until the reports are released
		t.Errorf("a third report while two are computed was not refused")
		defer func() { <-third }()
	}
	ask(2, 1) // joins the first
	close(cs.holdReports)
	wg.Wait()
	if n := cs.reports.Load(); n != 2 || reps[2] != reps[0] {
		t.Errorf("%d reports computed, the second request for Q1 shared the first: %v; want 2, true", n, reps[2] == reps[0])
	}
	if _, err := h.svc.Report(ctx, from, to, ""); err != nil {
		t.Errorf("the third report once the others are done: %v", err)
	}
}

// TestReportShowsChangesWithinCacheFor: a report is shared for
// Config.CacheFor, even for a period long closed, so an RCA published
// from elsewhere (varde status rca, another node) shows within that.
func TestReportShowsChangesWithinCacheFor(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)}
	h := newHarness(t, openDB(t), clk, "n1")
	h.round()
	in := &store.Incident{ID: "x1", Component: "bankid", Components: []string{"bankid"}, Severity: store.SeverityDown,
		StartedAt: time.Date(2026, 7, 10, 10, 0, 0, 0, time.UTC), OpenedAt: time.Date(2026, 7, 10, 10, 1, 0, 0, time.UTC)}
	if err := h.db.OpenIncident(ctx, in); err != nil {
		t.Fatal(err)
	}
	in.RecoveredAt, in.ResolvedAt = in.StartedAt.Add(time.Hour), in.StartedAt.Add(time.Hour+5*time.Minute)
	if err := h.db.UpdateIncident(ctx, in); err != nil {
		t.Fatal(err)
	}
	from, to := quarter(3)
	first, err := h.svc.Report(ctx, from, to, "")
	if err != nil {
		t.Fatal(err)
	}
	elsewhere := &status.Service{Store: h.db, Monitor: h.mon, Node: "n1", Now: clk.Now}
	if err := elsewhere.PublishRCA(ctx, "x1", "ops", "A certificate expired."); err != nil {
		t.Fatal(err)
	}
	for clk.Now().Before(first.GeneratedAt.Add(10 * time.Second)) {
		rep, err := h.svc.Report(ctx, from, to, "")
		if err != nil {
			t.Fatal(err)
		}
		if rep != first {
			t.Fatalf("at %v: a report of %v, want the one of %v", clk.Now(), rep.GeneratedAt, first.GeneratedAt)
		}
		clk.Add(time.Second)
	}
	rep, err := h.svc.Report(ctx, from, to, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Incidents) != 1 || rep.Incidents[0].RCA == "" {
		t.Errorf("10 s after the RCA was published the report lists %+v, want x1 with its RCA", rep.Incidents)
	}
}

// TestSettledTransitionsReadOnce: the transitions before the last UTC
// midnight at least two hours ago are read once per period; a report
// computed again reads only those since (none for a period long
// closed), and agrees with a fresh read.
func TestSettledTransitionsReadOnce(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)}
	h := newHarness(t, openDB(t), clk, "n1")
	outage := func() {
		h.round()
		h.fail.Store(true)
		for range 30 {
			h.round()
		}
		h.fail.Store(false)
		for range 100 {
			h.round()
		}
	}
	outage()
	clk.Add(72 * time.Hour) // 5 November 10:00
	outage()                // bankid down again, after the settled midnight
	cs := &countingStore{DB: h.db}
	h.svc.Store = cs
	cut := time.Date(2026, 11, 5, 0, 0, 0, 0, time.UTC)
	closedFrom, closedTo := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 4, 0, 0, 0, 0, time.UTC)
	qFrom, qTo := quarter(4)

	tests := []struct {
		name           string
		from, to       time.Time
		first, another []time.Time // the Since of each component's reads
	}{
		{"closed", closedFrom, closedTo, []time.Time{{}, {}, {}}, nil},
		{"to date", qFrom, qTo, []time.Time{{}, cut, {}, cut, {}, cut}, []time.Time{cut, cut, cut}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs.transitionReads()
			first, err := h.svc.Report(ctx, tt.from, tt.to, "")
			if err != nil {
				t.Fatal(err)
			}
			if got := cs.transitionReads(); !reflect.DeepEqual(got, tt.first) {
				t.Errorf("first report read transitions since %v, want %v", got, tt.first)
			}
			clk.Add(11 * time.Second) // past CacheFor
			again, err := h.svc.Report(ctx, tt.from, tt.to, "")
			if err != nil {
				t.Fatal(err)
			}
			if got := cs.transitionReads(); !reflect.DeepEqual(got, tt.another) {
				t.Errorf("a report computed again read transitions since %v, want %v", got, tt.another)
			}
			fresh := &status.Service{Store: h.db, Monitor: h.mon, Node: "n1", Now: clk.Now}
			want, err := fresh.Report(ctx, tt.from, tt.to, "")
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(again.Components, want.Components) || again.Total.DowntimeMinutes == 0 || first == again {
				t.Errorf("report from memory:\n%+v\nfrom a fresh read:\n%+v", again.Components, want.Components)
			}
		})
	}
}

// TestReportDataFrom: a report names when the node's health records
// begin, the first probe round; with no record it names no time.
func TestReportDataFrom(t *testing.T) {
	ctx := context.Background()
	start := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	clk := &clock{t: start}
	h := newHarness(t, openDB(t), clk, "n1")
	from, to := quarter(3)
	rep, err := h.svc.Report(ctx, from, to, "")
	if err != nil {
		t.Fatal(err)
	}
	if !rep.DataFrom.IsZero() {
		t.Errorf("with no health record, data_from %v, want none", rep.DataFrom)
	}
	h.round()
	clk.Add(time.Hour)
	rep, err = h.svc.Report(ctx, from, to, "2026-Q3")
	if err != nil {
		t.Fatal(err)
	}
	if rep.DataFrom.Before(start) || !rep.DataFrom.Before(start.Add(time.Minute)) {
		t.Errorf("data_from %v, want the first probe round at %v", rep.DataFrom, start)
	}
}

// TestReportAvailabilityOverMeasuredSpan: in a quarter whose first
// health record falls inside it, availability is the share of the time
// since that record, which the report names, not of the whole quarter;
// a period with nothing measured gives no availability and says why.
func TestReportAvailabilityOverMeasuredSpan(t *testing.T) {
	ctx := context.Background()
	start := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	clk := &clock{t: start}
	h := newHarness(t, openDB(t), clk, "n1")
	from, to := quarter(4)

	rep, err := h.svc.Report(ctx, from, to, "")
	if err != nil {
		t.Fatal(err)
	}
	if rep.Unmeasured != status.UnmeasuredNoRecords || rep.Total.AvailabilityPercent != nil || !rep.MeasuredFrom.IsZero() {
		t.Errorf("with no health record: unmeasured %q, availability %v, measured_from %v; want %q, none, none",
			rep.Unmeasured, rep.Total.AvailabilityPercent, rep.MeasuredFrom, status.UnmeasuredNoRecords)
	}

	h.round()
	h.fail.Store(true)
	for range 60 { // five minutes, down after the third
		h.round()
	}
	h.fail.Store(false)
	for range 60 {
		h.round()
	}
	rep, err = h.svc.Report(ctx, from, to, "2026-Q4")
	if err != nil {
		t.Fatal(err)
	}
	if !rep.MeasuredFrom.Equal(rep.DataFrom) || !rep.MeasuredTo.Equal(rep.To) || rep.Unmeasured != "" {
		t.Errorf("measured %v – %v (unmeasured %q), want data_from %v to %v", rep.MeasuredFrom, rep.MeasuredTo, rep.Unmeasured, rep.DataFrom, rep.To)
	}
	var bank *status.ComponentReport
	for i := range rep.Components {
		if rep.Components[i].Component == "bankid" {
			bank = &rep.Components[i]
		}
	}
	if bank == nil || bank.AvailabilityPercent == nil || bank.DowntimeMinutes <= 0 {
		t.Fatalf("bankid report = %+v", bank)
	}
	span := rep.MeasuredTo.Sub(rep.MeasuredFrom).Minutes()
	want := 100 * (1 - bank.DowntimeMinutes/span)
	if got := *bank.AvailabilityPercent; got > want+0.01 || got < want-0.01 {
		t.Errorf("bankid availability %v %%, want %.3f %% (%.2f min down of %.2f measured)", got, want, bank.DowntimeMinutes, span)
	}
	if *rep.Total.AvailabilityPercent != *bank.AvailabilityPercent {
		t.Errorf("total availability %v, want the lowest, bankid's %v", *rep.Total.AvailabilityPercent, *bank.AvailabilityPercent)
	}

	qf, qt := quarter(3)
	rep, err = h.svc.Report(ctx, qf, qt, "2026-Q3")
	if err != nil {
		t.Fatal(err)
	}
	if rep.Unmeasured != status.UnmeasuredBeforeData || rep.Total.AvailabilityPercent != nil || !rep.MeasuredFrom.IsZero() {
		t.Errorf("quarter before data_from: unmeasured %q, availability %v, measured_from %v", rep.Unmeasured, rep.Total.AvailabilityPercent, rep.MeasuredFrom)
	}
	for _, c := range rep.Components {
		if c.AvailabilityPercent != nil {
			t.Errorf("quarter before data_from: %s availability %v, want none", c.Component, *c.AvailabilityPercent)
		}
	}
	b, err := json.Marshal(rep.Total)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"availability_percent":null`) {
		t.Errorf("unmeasured total in JSON = %s, want availability_percent null", b)
	}
}

// TestReportComponentMeasuredFromItsFirstRecord: a provider configured
// an hour after the node started is measured from its own first record:
// the hour before it is not counted as available.
func TestReportComponentMeasuredFromItsFirstRecord(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)}
	h := newHarness(t, openDB(t), clk, "n1")
	for range 720 { // an hour
		h.round()
	}
	var down atomic.Bool
	down.Store(true)
	if err := h.mon.Add("minid", health.PingProber(func(context.Context) error {
		if down.Load() {
			return &health.ProbeError{Reason: health.FailureConnect, Err: errors.New("connection refused")}
		}
		return nil
	})); err != nil {
		t.Fatal(err)
	}
	added := clk.Now()
	for range 60 { // five minutes
		h.round()
	}
	down.Store(false)
	for range 60 {
		h.round()
	}
	from, to := quarter(4)
	rep, err := h.svc.Report(ctx, from, to, "2026-Q4")
	if err != nil {
		t.Fatal(err)
	}
	var minid *status.ComponentReport
	for i := range rep.Components {
		if rep.Components[i].Component == "minid" {
			minid = &rep.Components[i]
		}
	}
	if minid == nil || minid.AvailabilityPercent == nil || minid.DowntimeMinutes <= 0 {
		t.Fatalf("minid report = %+v", minid)
	}
	if minid.MeasuredFrom.Before(added) || !minid.MeasuredFrom.After(rep.MeasuredFrom) {
		t.Errorf("minid measured from %v, want its first probe after %v (the report's %v)", minid.MeasuredFrom, added, rep.MeasuredFrom)
	}
	span := rep.MeasuredTo.Sub(minid.MeasuredFrom).Minutes()
	want := 100 * (1 - minid.DowntimeMinutes/span)
	if got := *minid.AvailabilityPercent; got > want+0.01 || got < want-0.01 {
		t.Errorf("minid availability %v %%, want %.3f %% (%.2f min down of %.2f measured)", got, want, minid.DowntimeMinutes, span)
	}
}

// TestReportDataFromIsAnyNodes: data_from is the oldest health record in
// the store the nodes share, whichever node recorded it: a node started
// an hour after another reports the other's first record.
func TestReportDataFromIsAnyNodes(t *testing.T) {
	ctx := context.Background()
	start := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	clk := &clock{t: start}
	db := openDB(t)
	a := newHarness(t, db, clk, "a")
	a.round()
	clk.Add(time.Hour)
	b := newHarness(t, db, clk, "b")
	b.round()
	from, to := quarter(4)
	rep, err := b.svc.Report(ctx, from, to, "")
	if err != nil {
		t.Fatal(err)
	}
	if rep.DataFrom.Before(start) || !rep.DataFrom.Before(start.Add(time.Minute)) {
		t.Errorf("node b's data_from %v, want node a's first probe round at %v", rep.DataFrom, start)
	}
}

// TestReportsSplitAnIncidentAtTheQuarterBoundary: bankid goes down five
// minutes before the end of Q3 and comes back ten minutes into Q4. Each
// quarter's report holds the down time measured in it; the incident
// counts once, in Q3, when it started, with its people and its time to
// recover; its RCA falls due in Q4, which counts it, and counts it late
// when it was published after its 72 hours.
func TestReportsSplitAnIncidentAtTheQuarterBoundary(t *testing.T) {
	ctx := context.Background()
	q3, q4 := time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	clk := &clock{t: q4.Add(-10 * time.Minute)}
	h := newHarness(t, openDB(t), clk, "n1")
	for clk.Now().Before(q4.Add(-5 * time.Minute)) {
		h.round()
	}
	h.fail.Store(true)
	for clk.Now().Before(q4.Add(10 * time.Minute)) {
		h.round()
	}
	h.fail.Store(false)
	for clk.Now().Before(q4.Add(20 * time.Minute)) {
		h.round()
	}
	incs, err := h.db.ListIncidents(ctx, store.IncidentQuery{})
	if err != nil || len(incs) != 1 || incs[0].ResolvedAt.IsZero() {
		t.Fatalf("incidents %+v (%v), want one resolved", incs, err)
	}
	in := incs[0]
	if !in.StartedAt.Before(q4) || in.RecoveredAt.Before(q4) {
		t.Fatalf("incident runs %s to %s, want it across %s", in.StartedAt, in.RecoveredAt, q4)
	}
	in.PeopleAffected = 3
	in.RCA, in.RCAPublishedAt = "The bank's certificate expired.", in.ResolvedAt.Add(status.RCADeadline+time.Hour)
	if err := h.db.UpdateIncident(ctx, in); err != nil {
		t.Fatal(err)
	}
	clk.Add(5 * 24 * time.Hour) // past the RCA's deadline and its publication
	h.round()

	bankid := func(rep *status.Report) status.ComponentReport {
		t.Helper()
		for _, c := range rep.Components {
			if c.Component == "bankid" {
				return c
			}
		}
		t.Fatalf("%s has no figures for bankid", rep.Title)
		return status.ComponentReport{}
	}
	near := func(got, want, tol float64) bool { return got >= want-tol && got <= want+tol }
	downBefore, downAfter := q4.Sub(in.StartedAt).Minutes(), in.RecoveredAt.Sub(q4).Minutes()

	r3, err := h.svc.Report(ctx, q3, q4, "2026-Q3")
	if err != nil {
		t.Fatal(err)
	}
	c := bankid(r3)
	// Down from the third failed probe (the first is the incident's
	// start) to the quarter's end.
	if !near(c.DowntimeMinutes, downBefore-10.0/60, 0.01) || c.DegradedMinutes != 0 {
		t.Errorf("Q3: bankid down %.2f and degraded %.2f min, want %.2f and 0", c.DowntimeMinutes, c.DegradedMinutes, downBefore-10.0/60)
	}
	down3 := c.DowntimeMinutes
	if span := r3.MeasuredTo.Sub(r3.MeasuredFrom).Minutes(); c.AvailabilityPercent == nil || !near(*c.AvailabilityPercent, 100*(1-c.DowntimeMinutes/span), 0.01) {
		t.Errorf("Q3: bankid availability %v, want %.3f", c.AvailabilityPercent, 100*(1-c.DowntimeMinutes/span))
	}
	if c.Incidents != 1 || c.PeopleAffected != 3 || c.RCAsDue != 0 || c.MTTRMinutes == nil || !near(*c.MTTRMinutes, in.RecoveredAt.Sub(in.StartedAt).Minutes(), 0.01) {
		t.Errorf("Q3: incidents %d, people %d, RCAs due %d, MTTR %v; want 1, 3, 0, %.2f", c.Incidents, c.PeopleAffected, c.RCAsDue, c.MTTRMinutes, in.RecoveredAt.Sub(in.StartedAt).Minutes())
	}
	if t3 := r3.Total; t3.Incidents != 1 || t3.RCAsDue != 0 || len(r3.Incidents) != 1 {
		t.Errorf("Q3 total: incidents %d, RCAs due %d, listed %d; want 1, 0, 1", t3.Incidents, t3.RCAsDue, len(r3.Incidents))
	}

	r4, err := h.svc.Report(ctx, q4, q4.AddDate(0, 3, 0), "2026-Q4")
	if err != nil {
		t.Fatal(err)
	}
	c = bankid(r4)
	// Down from the quarter's start, then degraded until recovery.
	if !near(c.DowntimeMinutes+c.DegradedMinutes, downAfter, 0.01) || c.DowntimeMinutes <= 0 {
		t.Errorf("Q4: bankid down %.2f and degraded %.2f min, want %.2f in all (the quarter's start to recovery)", c.DowntimeMinutes, c.DegradedMinutes, downAfter)
	}
	down4 := c.DowntimeMinutes
	// The two quarters hold the down time of a period across them.
	across, err := h.svc.Report(ctx, q4.AddDate(0, 0, -1), q4.AddDate(0, 0, 1), "")
	if err != nil {
		t.Fatal(err)
	}
	if got := bankid(across).DowntimeMinutes; !near(got, down3+down4, 0.01) {
		t.Errorf("across the boundary bankid is down %.2f min, the quarters %.2f + %.2f", got, down3, down4)
	}
	if c.Incidents != 0 || c.PeopleAffected != 0 || c.MTTRMinutes != nil || c.RCAsDue != 1 || c.RCAsOnTime != 0 ||
		c.RCAOnTimePercent == nil || *c.RCAOnTimePercent != 0 {
		t.Errorf("Q4: incidents %d, people %d, MTTR %v, RCAs due %d (on time %d, %v %%); want 0, 0, none, 1 (0, 0 %%)",
			c.Incidents, c.PeopleAffected, c.MTTRMinutes, c.RCAsDue, c.RCAsOnTime, c.RCAOnTimePercent)
	}
	if t4 := r4.Total; t4.Incidents != 0 || t4.RCAsDue != 1 || t4.RCAsOnTime != 0 || len(r4.Incidents) != 1 {
		t.Errorf("Q4 total: incidents %d, RCAs due %d (on time %d), listed %d; want 0, 1 (0), 1", t4.Incidents, t4.RCAsDue, t4.RCAsOnTime, len(r4.Incidents))
	}
}
