package health

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/varde-eid/varde/internal/store"
	"github.com/varde-eid/varde/internal/store/sqlstore"
)

// fakeClock is the monitor's clock in tests; only the test moves it.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func openStore(t *testing.T) *sqlstore.DB {
	t.Helper()
	db, err := sqlstore.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "health.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

type fixture struct {
	mon   *Monitor
	clock *fakeClock
	reg   *prometheus.Registry
	// seen collects every transition a subscriber was told about.
	mu   sync.Mutex
	seen []Transition
}

func newFixture(t *testing.T, cfg Config, rec Recorder) *fixture {
	t.Helper()
	f := &fixture{clock: &fakeClock{t: t0}, reg: prometheus.NewRegistry()}
	mon, err := NewMonitor(Options{Config: cfg, Node: "node-a", Store: rec, Registerer: f.reg, Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	f.mon = mon
	mon.Subscribe(func(tr Transition) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.seen = append(f.seen, tr)
	})
	return f
}

// tick runs n probe rounds, Interval apart on the fake clock.
func (f *fixture) tick(t *testing.T, n int) {
	t.Helper()
	for range n {
		if err := f.mon.Tick(t.Context()); err != nil {
			t.Fatalf("Tick: %v", err)
		}
		f.clock.Add(f.mon.Config().Interval)
	}
}

func (f *fixture) transitions() []Transition {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.seen)
}

// scrape returns the exposition lines of the registry's metrics named
// name (with labels and value), as /metrics serves them.
func (f *fixture) scrape(t *testing.T, name string) []string {
	t.Helper()
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(f.reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	var out []string
	sc := bufio.NewScanner(rec.Body)
	for sc.Scan() {
		if line := sc.Text(); strings.HasPrefix(line, name+"{") || strings.HasPrefix(line, name+" ") {
			out = append(out, line)
		}
	}
	return out
}

func (f *fixture) metric(t *testing.T, line string) {
	t.Helper()
	name := line[:strings.IndexAny(line, "{ ")]
	if got := f.scrape(t, name); !slices.Contains(got, line) {
		t.Errorf("metrics lack %s; %s is:\n\t%s", line, name, strings.Join(got, "\n\t"))
	}
}

// TestMonitorEndToEnd probes a real upstream over HTTP and the real
// SQLite store, kills and restarts the upstream, and checks states,
// subscribers, stored records and metrics.
func TestMonitorEndToEnd(t *testing.T) {
	ctx := t.Context()
	db := openStore(t)
	u := newUpstream(t)
	f := newFixture(t, Config{}, db)
	must(t, f.mon.Add("bankid", PingProber(u.probe)))
	must(t, f.mon.Add("store", PingProber(db.Ping)))
	must(t, f.mon.Add("minid", nil)) // passive only
	iv := f.mon.Config().Interval
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * iv) }

	if got := f.mon.State("bankid"); got != Unknown {
		t.Errorf("before the first round: %s", got)
	}
	f.tick(t, 2) // rounds 0, 1
	u.stop()
	f.tick(t, 3) // rounds 2, 3, 4: down at 4
	if got := f.mon.State("bankid"); got != Down {
		t.Fatalf("after 3 failed probes: %s", got)
	}
	st, _ := f.mon.Status("bankid")
	if st.LastFailure != FailureConnect || !st.LastProbe.Equal(at(4)) || !st.Since.Equal(at(4)) {
		t.Errorf("status = %+v", st)
	}
	f.metric(t, `varde_component_state{component="bankid",state="down"} 1`)
	f.metric(t, `varde_component_state{component="bankid",state="up"} 0`)
	f.metric(t, `varde_probe_failures_total{component="bankid",reason="connect"} 3`)

	u.restart()
	f.tick(t, 3)  // rounds 5, 6, 7: degraded at 7
	f.tick(t, 10) // rounds 8..17: up once the failures left the window, at 13
	if got := f.mon.State("bankid"); got != Up {
		t.Fatalf("after recovery: %s", got)
	}

	want := []Transition{
		{Component: "bankid", From: Unknown, To: Up, Reason: ReasonProbesOK, At: at(0), Since: at(0)},
		{Component: "store", From: Unknown, To: Up, Reason: ReasonProbesOK, At: at(0), Since: at(0)},
		{Component: "bankid", From: Up, To: Down, Reason: ReasonProbeFailures, At: at(4), Since: at(2)},
		{Component: "bankid", From: Down, To: Degraded, Reason: ReasonProbesOK, At: at(7), Since: at(5)},
		{Component: "bankid", From: Degraded, To: Up, Reason: ReasonProbesOK, At: at(13), Since: at(5)},
	}
	got := f.transitions()
	// Probes of one round run concurrently: order by time, then name.
	slices.SortFunc(got, func(a, b Transition) int {
		return cmp.Or(a.At.Compare(b.At), strings.Compare(a.Component, b.Component))
	})
	sameTransitions(t, got, want)

	// What the store holds: every transition, and every probe in order.
	stored, err := db.ListHealthTransitions(ctx, store.HealthQuery{Component: "bankid"})
	must(t, err)
	if len(stored) != 4 {
		t.Fatalf("%d bankid transitions stored, want 4", len(stored))
	}
	for i, tr := range stored {
		w := want[[]int{0, 2, 3, 4}[i]]
		if tr.Node != "node-a" || tr.From != string(w.From) || tr.To != string(w.To) || tr.Reason != w.Reason ||
			!tr.Time.Equal(w.At) || !tr.Since.Equal(w.Since) {
			t.Errorf("stored transition %d = %+v, want %+v", i, tr, w)
		}
	}
	probes, err := db.ListProbes(ctx, store.HealthQuery{Component: "bankid", Node: "node-a"})
	must(t, err)
	if len(probes) != 18 {
		t.Fatalf("%d bankid probes stored, want 18", len(probes))
	}
	var states, oks []string
	for i, p := range probes {
		if !p.Time.Equal(at(i)) {
			t.Errorf("probe %d at %v, want %v", i, p.Time, at(i))
		}
		states = append(states, p.State[:1])
		ok := "o"
		if !p.OK {
			ok = "f"
		}
		oks = append(oks, ok)
	}
	if got, want := strings.Join(oks, ""), "oofffooooooooooooo"; got != want {
		t.Errorf("stored probe results %s, want %s", got, want)
		for _, p := range probes {
			t.Logf("probe %+v", p)
		}
	}
	if got, want := strings.Join(states, ""), "uuuuddddddddduuuuu"; got != want {
		// Down is stored as "down", degraded as "degraded": both start
		// with d; the transitions above tell them apart.
		t.Errorf("stored states %s, want %s", got, want)
	}
	if probes[2].Reason != FailureConnect {
		t.Errorf("stored failure reason %q, want %q", probes[2].Reason, FailureConnect)
	}

	// Detection time from the stored records: from the first failed probe
	// after the last good one to the transition to down.
	var firstFailed time.Time
	for _, p := range probes {
		if p.Time.After(stored[1].Time) {
			break
		}
		if p.OK {
			firstFailed = time.Time{}
		} else if firstFailed.IsZero() {
			firstFailed = p.Time
		}
	}
	if d := stored[1].Time.Sub(firstFailed); d != 2*iv || !firstFailed.Equal(stored[1].Since) {
		t.Errorf("detection time %v (first failure %v, since %v), want %v", d, firstFailed, stored[1].Since, 2*iv)
	}

	// The store is a component like the others, and minid has no evidence.
	if got := f.mon.State("store"); got != Up {
		t.Errorf("store: %s", got)
	}
	snap := f.mon.Snapshot()
	var names []string
	for _, s := range snap {
		names = append(names, s.Component+"="+string(s.State))
	}
	if got, want := strings.Join(names, " "), "bankid=up minid=unknown store=up"; got != want {
		t.Errorf("Snapshot = %s, want %s", got, want)
	}
	if snap[1].Probed || !snap[0].Probed {
		t.Errorf("Probed flags: %+v", snap)
	}
	f.metric(t, `varde_component_state{component="minid",state="unknown"} 1`)
	f.metric(t, `varde_probe_duration_seconds_count{component="bankid"} 18`)
	f.metric(t, `varde_probe_duration_seconds_count{component="store"} 18`)
	f.metric(t, `varde_component_transitions_total{component="bankid",state="down"} 1`)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// passive is a monitor, recording to db, of one component known from
// real logins only: minid.
func passive(t *testing.T) (db *sqlstore.DB, f *fixture) {
	t.Helper()
	db = openStore(t)
	f = newFixture(t, Config{}, db)
	must(t, f.mon.Add("minid", nil))
	return db, f
}

// TestMonitorObserve drives a component from real logins only.
func TestMonitorObserve(t *testing.T) {
	db, f := passive(t)
	for range 4 {
		f.mon.Observe("minid", Success)
	}
	for range 6 {
		f.mon.Observe("minid", Error)
	}
	f.mon.Observe("nobody", Error) // ignored
	if got := f.mon.State("minid"); got != Down {
		t.Fatalf("after 6 of 10 logins failed: %s", got)
	}
	if got := f.mon.State("nobody"); got != Unknown {
		t.Errorf("unknown component: %s", got)
	}
	// The transition waits for the next round's flush.
	stored, err := db.ListHealthTransitions(t.Context(), store.HealthQuery{})
	must(t, err)
	if len(stored) != 0 {
		t.Errorf("%d transitions stored before a flush", len(stored))
	}
	f.clock.Add(3 * time.Minute) // the logins leave the window
	f.tick(t, 1)
	if got := f.mon.State("minid"); got != Degraded {
		t.Errorf("after the window passed: %s, want degraded", got)
	}
	f.clock.Add(2 * time.Minute) // a window in which no login failed
	f.tick(t, 1)
	if got := f.mon.State("minid"); got != Unknown {
		t.Errorf("after a quiet window: %s, want unknown", got)
	}
	if got, want := storedTransitions(t, db, "minid"), "unknown>down:login_failures down>degraded:login_retry degraded>unknown:logins_ok"; got != want {
		t.Errorf("stored transitions %s, want %s", got, want)
	}
	if n := len(f.transitions()); n != 3 {
		t.Errorf("subscriber saw %d transitions, want 3", n)
	}
	// Passive components have no probe records.
	probes, err := db.ListProbes(t.Context(), store.HealthQuery{})
	must(t, err)
	if len(probes) != 0 {
		t.Errorf("%d probes stored", len(probes))
	}
}

// TestMonitorObserveRefusal: one account refused on every try weighs as
// one failed login; many accounts refused make the component down, and
// the stored transition says why.
func TestMonitorObserveRefusal(t *testing.T) {
	db, f := passive(t)
	for range 9 {
		f.mon.Observe("minid", Success)
	}
	for range 100 {
		f.mon.ObserveRefusal("minid", "the same account")
	}
	f.mon.ObserveRefusal("nobody", "x") // ignored
	if got := f.mon.State("minid"); got != Up {
		t.Fatalf("after 9 logins and one account refused 100 times: %s, want up", got)
	}
	for i := range 20 {
		f.mon.ObserveRefusal("minid", fmt.Sprint("account ", i))
	}
	if got := f.mon.State("minid"); got != Down {
		t.Fatalf("after 21 accounts refused and 9 logins: %s, want down", got)
	}
	f.tick(t, 1)
	if got, want := storedTransitions(t, db, "minid"), "unknown>up:logins_ok up>degraded:login_refusals degraded>down:login_refusals"; got != want {
		t.Errorf("stored transitions %s, want %s", got, want)
	}
}

// storedTransitions lists component's stored transitions as
// "from>to:reason", space-separated.
func storedTransitions(t *testing.T, db *sqlstore.DB, component string) string {
	t.Helper()
	stored, err := db.ListHealthTransitions(t.Context(), store.HealthQuery{Component: component})
	must(t, err)
	var got []string
	for _, tr := range stored {
		got = append(got, tr.From+">"+tr.To+":"+tr.Reason)
	}
	return strings.Join(got, " ")
}

// slowProber takes d on the fake clock.
type slowProber struct {
	clock *fakeClock
	d     time.Duration
}

func (p slowProber) Probe(context.Context) error {
	p.clock.Add(p.d)
	return nil
}

func TestMonitorSlowProbes(t *testing.T) {
	db := openStore(t)
	f := newFixture(t, Config{}, db)
	must(t, f.mon.Add("slow", slowProber{f.clock, 2 * time.Second}))
	f.tick(t, 3)
	if got := f.mon.State("slow"); got != Degraded {
		t.Errorf("after 3 slow probes: %s", got)
	}
	probes, err := db.ListProbes(t.Context(), store.HealthQuery{Component: "slow"})
	must(t, err)
	for _, p := range probes {
		if !p.OK || p.Reason != SlowReason || p.Duration != 2*time.Second {
			t.Errorf("stored %+v, want a 2s slow success", p)
		}
	}
	f.metric(t, `varde_probe_duration_seconds_bucket{component="slow",le="2.5"} 3`)
	f.metric(t, `varde_probe_duration_seconds_bucket{component="slow",le="1"} 0`)
}

// stuckProber ignores its context until released.
type stuckProber struct {
	calls   atomic.Int32
	release chan struct{}
}

func (p *stuckProber) Probe(context.Context) error {
	p.calls.Add(1)
	<-p.release
	return nil
}

type panicProber struct{}

func (panicProber) Probe(context.Context) error { panic("bug") }

func TestMonitorBoundsProbes(t *testing.T) {
	f := newFixture(t, Config{Interval: time.Second, ProbeTimeout: 50 * time.Millisecond}, nil)
	stuck := &stuckProber{release: make(chan struct{})}
	defer close(stuck.release)
	must(t, f.mon.Add("stuck", stuck))
	must(t, f.mon.Add("panics", panicProber{}))

	start := time.Now()
	f.tick(t, 3)
	// Three probe timeouts are 150ms; a round that waited for the stuck
	// prober would wait for ever, so the bound is room for a busy machine.
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("3 rounds with a stuck prober took %v", d)
	}
	if n := stuck.calls.Load(); n != 1 {
		t.Errorf("stuck prober started %d times, want once", n)
	}
	if got := f.mon.State("stuck"); got != Down {
		t.Errorf("stuck: %s", got)
	}
	if got := f.mon.State("panics"); got != Down {
		t.Errorf("panics: %s", got)
	}
	f.metric(t, `varde_probe_failures_total{component="stuck",reason="timeout"} 3`)
	f.metric(t, `varde_probe_failures_total{component="panics",reason="error"} 3`)
}

// gateProber counts probes in flight.
type gateProber struct {
	inFlight, peak *atomic.Int32
}

func (p gateProber) Probe(ctx context.Context) error {
	n := p.inFlight.Add(1)
	defer p.inFlight.Add(-1)
	for {
		old := p.peak.Load()
		if n <= old || p.peak.CompareAndSwap(old, n) {
			break
		}
	}
	select {
	case <-time.After(20 * time.Millisecond):
	case <-ctx.Done():
	}
	return nil
}

func TestMonitorConcurrency(t *testing.T) {
	f := newFixture(t, Config{Concurrency: 2}, nil)
	var inFlight, peak atomic.Int32
	for _, name := range []string{"a", "b", "c", "d", "e", "f"} {
		must(t, f.mon.Add(name, gateProber{&inFlight, &peak}))
	}
	f.tick(t, 1)
	if p := peak.Load(); p != 2 {
		t.Errorf("peak probes in flight %d, want 2", p)
	}
}

// flakyRecorder is the real store behind a switch that makes writes fail.
type flakyRecorder struct {
	*sqlstore.DB
	fail atomic.Bool
}

var errStoreDown = errors.New("store down")

func (r *flakyRecorder) RecordProbes(ctx context.Context, ps []*store.ProbeRecord) error {
	if r.fail.Load() {
		return errStoreDown
	}
	return r.DB.RecordProbes(ctx, ps)
}

func (r *flakyRecorder) RecordHealthTransitions(ctx context.Context, ts []*store.HealthTransition) error {
	if r.fail.Load() {
		return errStoreDown
	}
	return r.DB.RecordHealthTransitions(ctx, ts)
}

func TestMonitorStoreUnavailable(t *testing.T) {
	ctx := t.Context()
	rec := &flakyRecorder{DB: openStore(t)}
	f := newFixture(t, Config{MaxPending: 5}, rec)
	must(t, f.mon.Add("a", PingProber(func(context.Context) error { return nil })))
	rec.fail.Store(true)
	for range 7 {
		if err := f.mon.Tick(ctx); !errors.Is(err, errStoreDown) {
			t.Fatalf("Tick with the store down: %v", err)
		}
		f.clock.Add(time.Second)
	}
	if got := f.mon.State("a"); got != Up {
		t.Errorf("state while the store is down: %s", got)
	}
	f.metric(t, `varde_health_record_errors_total 7`)
	// 7 probes + 1 transition, 5 kept: the 3 oldest probes are dropped.
	f.metric(t, `varde_health_records_dropped_total 3`)

	rec.fail.Store(false)
	must(t, f.mon.Flush(ctx))
	probes, err := rec.ListProbes(ctx, store.HealthQuery{})
	must(t, err)
	var times []time.Duration
	for _, p := range probes {
		times = append(times, p.Time.Sub(t0))
	}
	if want := []time.Duration{3 * time.Second, 4 * time.Second, 5 * time.Second, 6 * time.Second}; !slices.Equal(times, want) {
		t.Errorf("stored probes at %v, want %v", times, want)
	}
	trs, err := rec.ListHealthTransitions(ctx, store.HealthQuery{})
	must(t, err)
	if len(trs) != 1 || trs[0].To != store.HealthUp {
		t.Errorf("stored transitions %+v, want unknown to up", trs)
	}
	must(t, f.mon.Flush(ctx)) // nothing left
}

func TestMonitorPrunes(t *testing.T) {
	ctx := t.Context()
	db := openStore(t)
	f := newFixture(t, Config{Retention: time.Hour}, db)
	old := &store.ProbeRecord{Component: "x", Node: "node-b", Time: t0.Add(-2 * time.Hour), State: store.HealthUp}
	count := func() int {
		ps, err := db.ListProbes(ctx, store.HealthQuery{Component: "x"})
		must(t, err)
		return len(ps)
	}
	must(t, db.RecordProbes(ctx, []*store.ProbeRecord{old}))
	f.tick(t, 1)
	if n := count(); n != 0 {
		t.Errorf("%d old probes after the first round", n)
	}
	// Pruning runs once an hour, not every round.
	must(t, db.RecordProbes(ctx, []*store.ProbeRecord{old}))
	f.clock.Add(30 * time.Minute)
	f.tick(t, 1)
	if n := count(); n != 1 {
		t.Errorf("%d old probes half an hour later, want 1", n)
	}
	f.clock.Add(30 * time.Minute)
	f.tick(t, 1)
	if n := count(); n != 0 {
		t.Errorf("%d old probes an hour later", n)
	}
}

// TestMonitorRun runs the real schedule briefly: probes repeat, ctx
// stops it, and what was pending is written on the way out.
func TestMonitorRun(t *testing.T) {
	db := openStore(t)
	mon, err := NewMonitor(Options{Config: Config{Interval: 20 * time.Millisecond}, Node: "n", Store: db})
	must(t, err)
	var calls atomic.Int32
	must(t, mon.Add("a", PingProber(func(context.Context) error { calls.Add(1); return nil })))
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- mon.Run(ctx) }()
	deadline := time.After(5 * time.Second)
	for calls.Load() < 3 {
		select {
		case <-deadline:
			t.Fatal("fewer than 3 probes in 5s")
		case <-time.After(5 * time.Millisecond):
		}
	}
	mon.Observe("a", Success) // nothing to record, but must not race with Run
	cancel()
	select {
	case err := <-done:
		must(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	probes, err := db.ListProbes(context.Background(), store.HealthQuery{Component: "a"})
	must(t, err)
	if len(probes) < 3 || len(probes) != int(calls.Load()) {
		t.Errorf("%d probes stored, %d run", len(probes), calls.Load())
	}
}

func TestMonitorConcurrentUse(t *testing.T) {
	f := newFixture(t, Config{}, openStore(t))
	must(t, f.mon.Add("a", PingProber(func(context.Context) error { return nil })))
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				_ = f.mon.State("a")
				_ = f.mon.Snapshot()
			}
		}
	})
	var workers sync.WaitGroup
	for range 4 {
		workers.Go(func() {
			for range 200 {
				f.mon.Observe("a", Error)
			}
		})
	}
	workers.Go(func() { f.tick(t, 3) })
	workers.Go(func() { _ = f.mon.Add("b", nil) })
	workers.Wait()
	close(stop)
	wg.Wait()
	if got := f.mon.State("a"); got != Down {
		t.Errorf("after every login failed: %s", got)
	}
}

func TestNewMonitorErrors(t *testing.T) {
	if _, err := NewMonitor(Options{Config: Config{ProbeWindow: 2}}); err == nil {
		t.Error("NewMonitor with an invalid config succeeded")
	}
	reg := prometheus.NewRegistry()
	if _, err := NewMonitor(Options{Registerer: reg}); err != nil {
		t.Fatal(err)
	}
	if _, err := NewMonitor(Options{Registerer: reg}); err == nil {
		t.Error("two monitors registered their metrics on one registry")
	}
	mon, err := NewMonitor(Options{})
	must(t, err)
	must(t, mon.Add("a", nil))
	for _, name := range []string{"", "a"} {
		if err := mon.Add(name, nil); err == nil {
			t.Errorf("Add(%q) succeeded", name)
		}
	}
	if _, ok := mon.Status("b"); ok {
		t.Error("Status of an unknown component is ok")
	}
}

func TestUnsubscribe(t *testing.T) {
	f := newFixture(t, Config{}, nil)
	must(t, f.mon.Add("a", nil))
	var n atomic.Int32
	unsubscribe := f.mon.Subscribe(func(Transition) { n.Add(1) })
	for range 10 {
		f.mon.Observe("a", Success) // unknown → up at the 10th
	}
	unsubscribe()
	for range 10 {
		f.mon.Observe("a", Error) // → down
	}
	if n.Load() != 1 || len(f.transitions()) != 2 {
		t.Errorf("unsubscribed saw %d, other subscriber %d; want 1 and 2", n.Load(), len(f.transitions()))
	}
}

// TestFailingLoginsDoNotFlap: a provider whose probes pass but whose
// every login fails, with a broker that sends it logins only while it is
// usable. Once its logins made it Down it is never Up again: it is
// retried as Degraded once per login window and goes Down again, never
// more than twice per window.
func TestFailingLoginsDoNotFlap(t *testing.T) {
	f := newFixture(t, Config{}, nil)
	must(t, f.mon.Add("bankid", PingProber(func(context.Context) error { return nil })))
	for range 30 * 12 { // 30 minutes of 5 s rounds
		f.tick(t, 1)
		if f.mon.State("bankid").Usable() {
			for range 3 {
				f.mon.Observe("bankid", Error)
			}
		}
	}
	ts := f.transitions()
	if len(ts) < 2 || ts[0].To != Up || ts[1].To != Down {
		t.Fatalf("transitions %+v, want up, then down from the failed logins", ts)
	}
	for _, tr := range ts[1:] {
		if tr.To == Up || tr.To == Unknown {
			t.Errorf("%v: %s -> %s (%s) though every login fails", tr.At, tr.From, tr.To, tr.Reason)
		}
	}
	window := f.mon.Config().LoginWindow
	if limit := 2 * int(30*time.Minute/window); len(ts)-1 > limit {
		t.Errorf("%d state changes in 30 minutes, want at most %d", len(ts)-1, limit)
	}
	for i := 3; i < len(ts); i += 2 {
		if gap := ts[i].At.Sub(ts[i-2].At); ts[i].To == Down && gap < window {
			t.Errorf("down again %v after the last time, want at least %v", gap, window)
		}
	}
}

// A login that changes a component's state while a probe of it runs
// comes first: the probe's change, made later, is recorded later, so
// the stored history read in time order ends in the state the
// component is in.
func TestProbeChangeAfterLoginChange(t *testing.T) {
	ctx := t.Context()
	db := openStore(t)
	f := newFixture(t, Config{FailuresToDown: 1, MinLogins: 4}, db)
	must(t, f.mon.Add("a", PingProber(func(context.Context) error {
		f.clock.Add(2 * time.Second)
		for _, o := range []Outcome{Success, Success, Success, Error} {
			f.mon.Observe("a", o) // logins: degraded, while the probe runs
		}
		f.clock.Add(time.Second)
		return errStoreDown
	})))
	must(t, f.mon.Tick(ctx))
	if got := f.mon.State("a"); got != Down {
		t.Fatalf("state %s, want down", got)
	}
	trs, err := db.ListHealthTransitions(ctx, store.HealthQuery{Component: "a"})
	must(t, err)
	var got []string
	for _, tr := range trs {
		got = append(got, fmt.Sprintf("%s->%s@%v", tr.From, tr.To, tr.Time.Sub(t0)))
	}
	if last := trs[len(trs)-1]; last.To != store.HealthDown {
		t.Errorf("stored history in time order %v ends in %s, want down", got, last.To)
	}
	seen := f.transitions()
	for i := 1; i < len(seen); i++ {
		if seen[i].At.Before(seen[i-1].At) {
			t.Errorf("transition %d at %v, before the one before it at %v", i, seen[i].At, seen[i-1].At)
		}
	}
}

// With the default concurrency, components that all hang (an egress
// proxy gone) are probed at once: a round lasts one probe timeout, not
// one per batch, so the interval and the detection time hold.
func TestMonitorRoundWithManyHanging(t *testing.T) {
	f := newFixture(t, Config{Interval: 2 * time.Second, ProbeTimeout: 400 * time.Millisecond, SlowProbe: 100 * time.Millisecond}, nil)
	for i := range 9 {
		must(t, f.mon.Add(fmt.Sprintf("eid-%d", i), PingProber(func(ctx context.Context) error {
			<-ctx.Done()
			return ctx.Err()
		})))
	}
	start := time.Now()
	f.tick(t, 1)
	if d := time.Since(start); d >= 800*time.Millisecond {
		t.Errorf("a round with 9 components hanging took %v, want about the probe timeout 400ms", d)
	}
}

// A round that finds the previous probe still hanging starts none; it
// is a timeout recorded with how long the upstream has gone without
// answering, not a probe of 0 s, and adds no sample to the duration
// histogram.
func TestMonitorHangingProbeRecordedTruthfully(t *testing.T) {
	ctx := t.Context()
	db := openStore(t)
	f := newFixture(t, Config{Interval: time.Second, ProbeTimeout: 50 * time.Millisecond}, db)
	stuck := &stuckProber{release: make(chan struct{})}
	defer close(stuck.release)
	must(t, f.mon.Add("stuck", stuck))
	f.tick(t, 3)

	probes, err := db.ListProbes(ctx, store.HealthQuery{Component: "stuck"})
	must(t, err)
	var got []string
	for _, p := range probes {
		got = append(got, fmt.Sprintf("+%v %v ok=%v %s", p.Time.Sub(t0), p.Duration, p.OK, p.Reason))
	}
	want := []string{"+0s 0s ok=false timeout", "+1s 1s ok=false timeout", "+2s 2s ok=false timeout"}
	if !slices.Equal(got, want) {
		t.Errorf("stored probes of a hanging upstream:\n\t%s\nwant\n\t%s", strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
	f.metric(t, `varde_probe_duration_seconds_count{component="stuck"} 1`)
	f.metric(t, `varde_probe_failures_total{component="stuck",reason="timeout"} 3`)
}

// With the store down and more transitions waiting than MaxPending,
// the oldest transitions are dropped after every probe result; the
// counter says so and each drop of transitions is logged as an error,
// since it leaves a gap in the history incidents are built from.
func TestMonitorDroppedTransitionsAreLogged(t *testing.T) {
	ctx := t.Context()
	rec := &flakyRecorder{DB: openStore(t)}
	rec.fail.Store(true)
	var logs syncBuffer
	clock := &fakeClock{t: t0}
	reg := prometheus.NewRegistry()
	mon, err := NewMonitor(Options{Config: Config{MaxPending: 1, FailuresToDown: 1, SuccessesToRecover: 1},
		Node: "node-a", Store: rec, Registerer: reg, Now: clock.Now, Log: slog.New(slog.NewTextHandler(&logs, nil))})
	must(t, err)
	var failing atomic.Bool
	must(t, mon.Add("a", PingProber(func(context.Context) error {
		if failing.Load() {
			return errors.New("down")
		}
		return nil
	})))
	for _, fail := range []bool{false, true} { // unknown → up, up → down
		failing.Store(fail)
		if err := mon.Tick(ctx); !errors.Is(err, errStoreDown) {
			t.Fatalf("Tick with the store down: %v", err)
		}
		clock.Add(time.Second)
	}
	f := &fixture{mon: mon, reg: reg}
	// 2 probes + 2 transitions, 1 kept: both probes and the first
	// transition dropped.
	f.metric(t, `varde_health_records_dropped_total 3`)
	if got := logs.String(); !strings.Contains(got, "level=ERROR") || !strings.Contains(got, "health transitions dropped unwritten") || !strings.Contains(got, "count=1") {
		t.Errorf("log after a transition was dropped:\n%s", got)
	}
	rec.fail.Store(false)
	must(t, mon.Flush(ctx))
	trs, err := rec.ListHealthTransitions(ctx, store.HealthQuery{})
	must(t, err)
	if len(trs) != 1 || trs[0].To != store.HealthDown {
		t.Errorf("stored transitions %+v, want the latest, up to down", trs)
	}
}

// syncBuffer is a strings.Builder safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A node that starts while the other nodes' probes find a component
// Down takes that state from the shared store (Seed) instead of being
// Unknown, and so offering a dead provider, until its own probes catch
// up; it leaves Down only as its own probes allow. Results older than
// the seeding bound, or of a component the fleet finds Up, change
// nothing the probes would not.
func TestMonitorSeedsFromFleet(t *testing.T) {
	testSeedsFromFleet(t, openStore(t))
}

func testSeedsFromFleet(t *testing.T, db *sqlstore.DB) {
	ctx := t.Context()
	var down atomic.Bool
	down.Store(true)
	failing := PingProber(func(context.Context) error {
		if down.Load() {
			return errStoreDown
		}
		return nil
	})
	a := newFixture(t, Config{}, db)
	must(t, a.mon.Add("dead", failing))
	must(t, a.mon.Add("fine", PingProber(func(context.Context) error { return nil })))
	a.tick(t, 3)
	if got := a.mon.State("dead"); got != Down {
		t.Fatalf("node-a: dead is %s after 3 failed probes", got)
	}

	clock := &fakeClock{t: a.clock.Now()}
	b, err := NewMonitor(Options{Node: "node-b", Store: db, Now: clock.Now})
	must(t, err)
	var seen []Transition
	b.Subscribe(func(tr Transition) { seen = append(seen, tr) })
	must(t, b.Add("dead", failing))
	must(t, b.Add("fine", PingProber(func(context.Context) error { return nil })))
	must(t, b.Seed(ctx))
	if got := b.State("dead"); got != Down || got.Usable() {
		t.Errorf("node-b started during the outage: dead is %s, want down as the fleet sees it", got)
	}
	if got := b.State("fine"); got != Up {
		t.Errorf("node-b: fine is %s, want up as the fleet sees it", got)
	}
	if len(seen) == 0 || seen[0].Component != "dead" || seen[0].To != Down || seen[0].Reason != ReasonSeeded {
		t.Errorf("node-b's transitions on seeding: %+v", seen)
	}
	down.Store(false)
	for i := range 3 {
		if got := b.State("dead"); got != Down {
			t.Errorf("dead is %s after %d good probes of node-b's, want down until 3", got, i)
		}
		must(t, b.Tick(ctx))
		clock.Add(b.Config().Interval)
	}
	if got := b.State("dead"); got != Degraded {
		t.Errorf("dead is %s after 3 good probes of node-b's, want degraded", got)
	}

	// Results older than the bound are not the fleet's view any more.
	late := &fakeClock{t: a.clock.Now().Add(time.Minute)}
	c, err := NewMonitor(Options{Node: "node-c", Store: db, Now: late.Now})
	must(t, err)
	must(t, c.Add("dead", failing))
	must(t, c.Seed(ctx))
	if got := c.State("dead"); got != Unknown {
		t.Errorf("node-c seeded from a minute-old probe: dead is %s, want unknown", got)
	}
}

// A restarted node takes the state at least half of the fleet finds a
// component in: one node of three whose own logins through a working
// provider failed does not make the provider Down for it while the two
// others find it Up; two of three finding it Down do.
func TestMonitorSeedsFromFleetMajority(t *testing.T) {
	ctx := t.Context()
	db := openStore(t)
	clock := &fakeClock{t: t0}
	node := func(name string) *Monitor {
		m, err := NewMonitor(Options{Node: name, Store: db, Now: clock.Now})
		must(t, err)
		for _, id := range []string{"p", "q"} {
			must(t, m.Add(id, PingProber(func(context.Context) error { return nil })))
		}
		must(t, m.Seed(ctx))
		return m
	}
	a, b, c := node("node-a"), node("node-b"), node("node-c")
	for range 10 {
		a.Observe("p", Error)
		a.Observe("q", Error)
		b.Observe("q", Error)
	}
	for _, m := range []*Monitor{a, b, c} {
		must(t, m.Tick(ctx))
	}
	if a.State("p") != Down || b.State("p") != Up || b.State("q") != Down || c.State("q") != Up {
		t.Fatalf("fleet before the restart: p %s, %s, %s; q %s, %s, %s",
			a.State("p"), b.State("p"), c.State("p"), a.State("q"), b.State("q"), c.State("q"))
	}
	clock.Add(time.Second)
	d := node("node-d")
	if got := d.State("p"); got != Up {
		t.Errorf("node-d seeded while one node of three finds p down: p is %s, want up", got)
	}
	if got := d.State("q"); got != Down {
		t.Errorf("node-d seeded while two nodes of three find q down: q is %s, want down", got)
	}
}

// A component added after the first round is seeded from the other
// nodes' probes before its own first probe, as those added before.
func TestMonitorSeedsComponentAddedLater(t *testing.T) {
	ctx := t.Context()
	db := openStore(t)
	a := newFixture(t, Config{}, db)
	must(t, a.mon.Add("dead", PingProber(func(context.Context) error { return errStoreDown })))
	a.tick(t, 3)
	if got := a.mon.State("dead"); got != Down {
		t.Fatalf("node-a: dead is %s after 3 failed probes", got)
	}

	clock := &fakeClock{t: a.clock.Now()}
	b, err := NewMonitor(Options{Node: "node-b", Store: db, Now: clock.Now})
	must(t, err)
	must(t, b.Add("store", PingProber(func(context.Context) error { return nil })))
	must(t, b.Seed(ctx))
	must(t, b.Tick(ctx))
	must(t, b.Add("dead", PingProber(func(context.Context) error { return nil })))
	must(t, b.Tick(ctx))
	if got := b.State("dead"); got != Down {
		t.Errorf("dead, added to node-b after its first round, is %s after one good probe, want down as the fleet saw it", got)
	}
}

// A node seeded while the fleet finds a component Down only from failed
// logins (their probes pass) takes that as login evidence: its own good
// probes do not lift it while the other nodes still hold it Down, and it
// lapses as the other nodes' does once those failures leave the login
// window, not held by probe hysteresis it never saw.
func TestMonitorSeedsLoginDownAsLoginEvidence(t *testing.T) {
	ctx := t.Context()
	db := openStore(t)
	a := newFixture(t, Config{}, db)
	must(t, a.mon.Add("p", PingProber(func(context.Context) error { return nil })))
	a.tick(t, 1)
	for range 10 {
		a.mon.Observe("p", Error)
	}
	a.tick(t, 1)
	if got := a.mon.State("p"); got != Down {
		t.Fatalf("node-a: p is %s after failed logins, want down", got)
	}

	clock := &fakeClock{t: a.clock.Now()}
	b, err := NewMonitor(Options{Node: "node-b", Store: db, Now: clock.Now})
	must(t, err)
	var seen []Transition
	b.Subscribe(func(tr Transition) { seen = append(seen, tr) })
	must(t, b.Add("p", PingProber(func(context.Context) error { return nil })))
	must(t, b.Seed(ctx))
	if got := b.State("p"); got != Down {
		t.Fatalf("node-b seeded while the fleet's logins through p fail: p is %s, want down", got)
	}
	step := b.Config().Interval
	for range 3 {
		must(t, b.Tick(ctx))
		clock.Add(step)
	}
	if got := b.State("p"); got != Down {
		t.Errorf("p is %s after 3 good probes of node-b's while the fleet's failed logins are in the window, want down", got)
	}
	window := b.Config().LoginWindow
	for clock.Now().Before(a.clock.Now().Add(window + step)) {
		must(t, b.Tick(ctx))
		clock.Add(step)
	}
	if got := b.State("p"); got != Degraded {
		t.Errorf("p is %s once the seeded failures left the login window, want degraded", got)
	}
	if last := seen[len(seen)-1]; last.Reason != ReasonLoginRetry {
		t.Errorf("the seeded login Down lapsed with %+v, want reason %s", last, ReasonLoginRetry)
	}
	for clock.Now().Before(a.clock.Now().Add(3*window + step)) {
		must(t, b.Tick(ctx))
		clock.Add(step)
	}
	if got := b.State("p"); got != Up {
		t.Errorf("p is %s two login windows after the fleet's last failed login, with good probes, want up", got)
	}
}

// A component that goes down is logged, at warn, with why its last
// probe failed: the operator reads at info what to look at, rather than
// a bare "probe_failures".
func TestMonitorDownLogsTheFailure(t *testing.T) {
	ctx := t.Context()
	var logs syncBuffer
	clock := &fakeClock{t: t0}
	mon, err := NewMonitor(Options{Config: Config{FailuresToDown: 1, SuccessesToRecover: 1},
		Node: "node-a", Store: openStore(t), Registerer: prometheus.NewRegistry(), Now: clock.Now,
		Log: slog.New(slog.NewTextHandler(&logs, nil))})
	must(t, err)
	var failing atomic.Bool
	must(t, mon.Add("bankid", PingProber(func(context.Context) error {
		if failing.Load() {
			return &ProbeError{FailureConnect, errors.New("dial tcp: lookup bankid.example.no: no such host")}
		}
		return nil
	})))
	for _, fail := range []bool{false, true, false} { // unknown → up, up → down, down → up
		failing.Store(fail)
		must(t, mon.Tick(ctx))
		clock.Add(time.Second)
	}
	var down, up string
	for l := range strings.Lines(logs.String()) {
		switch {
		case strings.Contains(l, "component state changed") && strings.Contains(l, "to=down"):
			down = l
		case strings.Contains(l, "component state changed") && strings.Contains(l, "from=down"):
			up = l
		}
	}
	if !strings.Contains(down, "level=WARN") || !strings.Contains(down, "failure=connect") ||
		!strings.Contains(down, `dial tcp: lookup bankid.example.no: no such host"`) {
		t.Errorf("the change to down does not say why:\n%s", logs.String())
	}
	if up == "" || strings.Contains(up, "err=") {
		t.Errorf("the change back up: %q, want one without an error", up)
	}
}
