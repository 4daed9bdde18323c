package status_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/status"
	"github.com/varde-eid/varde/internal/store"
	"github.com/varde-eid/varde/internal/store/sqlstore"
)

// countingStore counts the reads of a Summary and can hold them until
// released.
type countingStore struct {
	*sqlstore.DB
	// summaries counts the reads of maintenance without an end, which
	// a Summary makes once (the engine reads the windows in force).
	summaries atomic.Int32
	hold      chan struct{}

	// reports counts the reads of incidents over a period, which a
	// report makes once (a Summary reads them without an end, and
	// those resolved before its window without a start);
	// holdReports holds them until closed.
	reports     atomic.Int32
	holdReports chan struct{}

	mu     sync.Mutex
	ranges [][2]time.Time // SummarizeProbes calls
	sinces []time.Time    // the Since of ListHealthTransitions calls
	// audit counts the audit events read.
	audit atomic.Int32
	// incidents counts the reads of one incident; holdIncidents holds
	// them until closed.
	incidents     atomic.Int32
	holdIncidents chan struct{}
	// allHistory counts the reads of incidents with no start and no
	// bound on how many (the open ones and the newest owing an RCA are
	// bounded).
	allHistory atomic.Int32
}

func (c *countingStore) GetIncident(ctx context.Context, id string) (*store.Incident, error) {
	c.incidents.Add(1)
	if c.holdIncidents != nil {
		<-c.holdIncidents
	}
	return c.DB.GetIncident(ctx, id)
}

func (c *countingStore) ListAuditRange(ctx context.Context, q store.AuditQuery) ([]*store.AuditEvent, error) {
	evs, err := c.DB.ListAuditRange(ctx, q)
	c.audit.Add(int32(len(evs)))
	return evs, err
}

func (c *countingStore) ListIncidents(ctx context.Context, q store.IncidentQuery) ([]*store.Incident, error) {
	if q.Since.IsZero() && !q.Open && !(q.RCAOwed && q.Limit > 0) {
		c.allHistory.Add(1)
	}
	if !q.Since.IsZero() && !q.Until.IsZero() {
		c.reports.Add(1)
		if c.holdReports != nil {
			<-c.holdReports
		}
	}
	return c.DB.ListIncidents(ctx, q)
}

func (c *countingStore) ListHealthTransitions(ctx context.Context, q store.HealthQuery) ([]*store.HealthTransition, error) {
	if q.Limit != 1 { // a report's lookup of the oldest record reads no period
		c.mu.Lock()
		c.sinces = append(c.sinces, q.Since)
		c.mu.Unlock()
	}
	return c.DB.ListHealthTransitions(ctx, q)
}

// countedNode is node n1 at 10:00 on 2 November 2026, its service
// reading the store through cs.
func countedNode(t *testing.T) (h *harness, cs *countingStore) {
	t.Helper()
	h = newHarness(t, openDB(t), &clock{t: time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)}, "n1")
	cs = &countingStore{DB: h.db}
	h.svc.Store = cs
	return h, cs
}

// transitionReads returns the Since of each read of transitions since
// the last call.
func (c *countingStore) transitionReads() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.sinces
	c.sinces = nil
	return out
}

// waitFor waits up to a second for n to reach want.
func waitFor(n *atomic.Int32, want int32) {
	for deadline := time.Now().Add(time.Second); n.Load() < want && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
}

func (c *countingStore) ListMaintenance(ctx context.Context, since, until time.Time) ([]*store.Maintenance, error) {
	if until.IsZero() {
		c.summaries.Add(1)
		if c.hold != nil {
			<-c.hold
		}
	}
	return c.DB.ListMaintenance(ctx, since, until)
}

func (c *countingStore) SummarizeProbes(ctx context.Context, q store.HealthQuery, width time.Duration) ([]*store.ProbeBucket, error) {
	c.mu.Lock()
	c.ranges = append(c.ranges, [2]time.Time{q.Since, q.Until})
	c.mu.Unlock()
	return c.DB.SummarizeProbes(ctx, q, width)
}

func (c *countingStore) probeReads() [][2]time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.ranges
	c.ranges = nil
	return out
}

// TestConcurrentSummariesShareOneComputation: a burst of page views
// while a Summary is being computed waits for it instead of reading the
// store again.
func TestConcurrentSummariesShareOneComputation(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)}
	h := newHarness(t, openDB(t), clk, "n1")
	h.round()
	clk.Add(time.Minute) // past the summary the engine computed
	cs := &countingStore{DB: h.db, hold: make(chan struct{})}
	h.svc.Store = cs

	computed, shared := burst(t, 20, &cs.summaries, cs.hold, func() (*status.Summary, error) { return h.svc.Summary(ctx) })
	if computed != 1 || !shared {
		t.Errorf("20 concurrent page views computed %d summaries, all the same one: %v; want 1, true", computed, shared)
	}
}

// burst makes n calls of get at once, letting the store answer (closing
// hold) once they all counted in computed or 200 ms passed, and returns
// how many counted and whether every call got the same value.
func burst[T comparable](t *testing.T, n int, computed *atomic.Int32, hold chan struct{}, get func() (T, error)) (int32, bool) {
	t.Helper()
	var wg sync.WaitGroup
	got := make([]T, n)
	for i := range got {
		wg.Go(func() {
			v, err := get()
			if err != nil {
				t.Error(err)
			}
			got[i] = v
		})
	}
	// Give the others time to reach the store too, if they would.
	for deadline := time.Now().Add(200 * time.Millisecond); computed.Load() < int32(n) && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	close(hold)
	wg.Wait()
	for _, v := range got[1:] {
		if v != got[0] {
			return computed.Load(), false
		}
	}
	return computed.Load(), true
}

// TestSummaryShowsChangesWithinCacheFor: page views share a Summary for
// Config.CacheFor, so a change shows at most that long after it was
// measured.
func TestSummaryShowsChangesWithinCacheFor(t *testing.T) {
	ctx := context.Background()
	h, _ := countedNode(t)
	clk := h.clk
	h.svc.Config.CacheFor = 30 * time.Second
	h.round()
	first, err := h.svc.Summary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	h.fail.Store(true)
	for range 3 {
		h.round()
	}
	downAt := clk.Now() // bankid measured down
	for clk.Now().Before(first.GeneratedAt.Add(30 * time.Second)) {
		sum, err := h.svc.Summary(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if sum.GeneratedAt != first.GeneratedAt || stateOf(sum, "bankid") != status.Operational {
			t.Fatalf("at %v: summary of %v shows bankid %s, want the one of %v", clk.Now(), sum.GeneratedAt, stateOf(sum, "bankid"), first.GeneratedAt)
		}
		clk.Add(time.Second)
	}
	sum, err := h.svc.Summary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st := stateOf(sum, "bankid"); st != status.Down || clk.Now().Sub(downAt) > 30*time.Second {
		t.Errorf("%v after bankid went down the page shows %s, want down within 30 s", clk.Now().Sub(downAt), st)
	}
}

// TestUptimeBarsReadSettledDaysOnce: the daily probe counts of days that
// ended a while ago are read once; later summaries read only the days
// still changing, and show the same bars as a fresh read.
func TestUptimeBarsReadSettledDaysOnce(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	now := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	clk := &clock{t: now}
	// Three days of probes, one a minute, every tenth failed.
	var ps []*store.ProbeRecord
	for i, at := 0, now.Add(-72*time.Hour); at.Before(now); i, at = i+1, at.Add(time.Minute) {
		ps = append(ps, &store.ProbeRecord{Component: "bankid", Node: "n1", Time: at, Duration: time.Millisecond, OK: i%10 != 0, State: store.HealthUp})
	}
	if err := db.RecordProbes(ctx, ps); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, db, clk, "n1")
	cs := &countingStore{DB: db}
	h.svc.Store = cs
	h.round()
	if _, err := h.svc.Summary(ctx); err != nil {
		t.Fatal(err)
	}
	first := now.Truncate(24*time.Hour).AddDate(0, 0, -status.HistoryDays+1)
	today := now.Truncate(24 * time.Hour)
	reads := cs.probeReads()
	if len(reads) != 2 || !reads[0][0].Equal(first) || !reads[1][0].Equal(today) {
		t.Fatalf("first summary read probes over %v, want all 90 days, settled then today", reads)
	}

	// A day later, with the clock just past midnight: yesterday is read
	// again (late records may still come), the days before it are not.
	clk.Add(14*time.Hour + time.Minute)
	late := &store.ProbeRecord{Component: "bankid", Node: "n1", Time: clk.Now().Add(-30 * time.Minute), Duration: time.Millisecond, OK: false, State: store.HealthDown}
	if err := db.RecordProbes(ctx, []*store.ProbeRecord{late}); err != nil {
		t.Fatal(err)
	}
	got, err := h.svc.Summary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range cs.probeReads() {
		if r[0].Before(today) {
			t.Errorf("a later summary read probes from %v, before %v", r[0], today)
		}
	}
	fresh := &status.Service{Store: db, Monitor: h.mon, Node: "n1", Now: clk.Now}
	want, err := fresh.Summary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if g, w := historyOf(got, "bankid"), historyOf(want, "bankid"); g != w {
		t.Errorf("bars from memory:\n%s\nfrom a fresh read:\n%s", g, w)
	}
}

// historyOf spells out a component's days with probes.
func historyOf(sum *status.Summary, id string) string {
	var out string
	for _, h := range sum.History {
		if h.Component != id {
			continue
		}
		for _, d := range h.Days {
			if d.Probes > 0 {
				out += fmt.Sprintf("%s %s %d/%d\n", d.Date.Format(time.DateOnly), d.Worst, d.OK, d.Probes)
			}
		}
	}
	return out
}

// BenchmarkSummary is one page view every CacheFor (10 s) over 30 days
// of probe results of three components, one every 5 s: each view
// computes a fresh Summary (after a first that read everything).
func BenchmarkSummary(b *testing.B) {
	ctx := context.Background()
	now := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	db := openDB(b)
	var batch []*store.ProbeRecord
	for at := now.Add(-30 * 24 * time.Hour); at.Before(now); at = at.Add(5 * time.Second) {
		for _, c := range []string{"store", "node:n1", "bankid"} {
			batch = append(batch, &store.ProbeRecord{Component: c, Node: "n1", Time: at, Duration: time.Millisecond, OK: true, State: store.HealthUp})
		}
		if len(batch) >= 5000 {
			if err := db.RecordProbes(ctx, batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	if err := db.RecordProbes(ctx, batch); err != nil {
		b.Fatal(err)
	}
	clk := &clock{t: now}
	h := newHarness(b, db, clk, "n1")
	h.round()
	if _, err := h.svc.Summary(ctx); err != nil { // the first reads all 30 days
		b.Fatal(err)
	}
	for b.Loop() {
		clk.Add(11 * time.Second)
		if _, err := h.svc.Summary(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// TestIncidentReadOncePerCacheFor: the public incident lookup reads the
// store once per ID every CacheFor, an unknown ID included, and keeps a
// bounded number of IDs.
func TestIncidentReadOncePerCacheFor(t *testing.T) {
	ctx := context.Background()
	h, cs := countedNode(t)
	h.svc.Config.CacheFor = 10 * time.Second
	now := h.clk.Now()
	in := &store.Incident{ID: "inc-1", Component: "bankid", Severity: store.SeverityDown, StartedAt: now.Add(-time.Hour), OpenedAt: now.Add(-50 * time.Minute)}
	if err := h.db.OpenIncident(ctx, in); err != nil {
		t.Fatal(err)
	}
	for range 50 {
		if got, err := h.svc.Incident(ctx, "inc-1"); err != nil || got.ID != "inc-1" {
			t.Fatalf("incident inc-1: %v, %v", got, err)
		}
		if _, err := h.svc.Incident(ctx, "inc-unknown"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("incident inc-unknown: %v, want not found", err)
		}
	}
	if n := cs.incidents.Load(); n != 2 {
		t.Errorf("%d store reads for 100 lookups of two IDs within CacheFor, want 2", n)
	}
	h.clk.Add(10 * time.Second)
	if _, err := h.svc.Incident(ctx, "inc-unknown"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("incident inc-unknown: %v, want not found", err)
	}
	if n := cs.incidents.Load(); n != 3 {
		t.Errorf("%d store reads after CacheFor, want 3", n)
	}
	// More distinct IDs than are kept push out the oldest: each is read
	// once, and the one pushed out is read again.
	for i := range 1001 {
		if _, err := h.svc.Incident(ctx, fmt.Sprintf("x-%d", i)); !errors.Is(err, store.ErrNotFound) {
			t.Fatal(err)
		}
		h.clk.Add(time.Millisecond)
	}
	before := cs.incidents.Load()
	if _, err := h.svc.Incident(ctx, "x-0"); !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	if n := cs.incidents.Load() - before; n != 1 {
		t.Errorf("x-0, pushed out, read %d times, want once", n)
	}
}

// TestIncidentLookupsAtOnceAreBounded: while four made-up IDs are being
// read, a fifth distinct one is refused (ErrBusy) without reading the
// store, and a request for one being read waits for it. Once they are
// done, the fifth is read.
func TestIncidentLookupsAtOnceAreBounded(t *testing.T) {
	ctx := context.Background()
	h, cs := countedNode(t)
	cs.holdIncidents = make(chan struct{})
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			if _, err := h.svc.Incident(ctx, fmt.Sprintf("made-up-%d", i)); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("made-up-%d: %v, want ErrNotFound", i, err)
			}
		})
	}
	waitFor(&cs.incidents, 4)
	fifth := make(chan error, 1)
	go func() {
		_, err := h.svc.Incident(ctx, "made-up-4")
		fifth <- err
	}()
	select {
	case err := <-fifth:
		if !errors.Is(err, status.ErrBusy) {
			t.Errorf("a fifth ID while four are read: %v, want ErrBusy", err)
		}
	case <-time.After(10 * time.Second): // not refused, it waits until the reads are released
		t.Errorf("a fifth ID while four are read was not refused")
		defer func() { <-fifth }()
	}
	wg.Go(func() { // joins the first
		if _, err := h.svc.Incident(ctx, "made-up-0"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("made-up-0 again: %v, want ErrNotFound", err)
		}
	})
	close(cs.holdIncidents)
	wg.Wait()
	if n := cs.incidents.Load(); n > 5 {
		t.Errorf("%d reads of the store, want 4 (and the fifth, if not refused)", n)
	}
	if _, err := h.svc.Incident(ctx, "made-up-4"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the fifth ID once the others are done: %v, want ErrNotFound", err)
	}
}

// TestSummaryReadsNoOldIncidents: a summary finds when the last incident
// left its 90-day window without reading the incidents before it, so
// its cost does not grow with history.
func TestSummaryReadsNoOldIncidents(t *testing.T) {
	h, cs := countedNode(t)
	h.round()
	if _, err := h.svc.Summary(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := cs.allHistory.Load(); n != 0 {
		t.Errorf("a summary read incidents over all history %d times, want none", n)
	}
}
