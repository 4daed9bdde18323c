package status_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/health"
	"github.com/varde-eid/varde/internal/status"
	"github.com/varde-eid/varde/internal/store"
	"github.com/varde-eid/varde/internal/store/sqlstore"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// harness is one node: a monitor probing "store" (always fine) and
// "bankid" (failing while fail is set), the status service and engine.
type harness struct {
	t    testing.TB
	db   *sqlstore.DB
	clk  *clock
	mon  *health.Monitor
	svc  *status.Service
	eng  *status.Engine
	fail atomic.Bool
}

func newHarness(t testing.TB, db *sqlstore.DB, clk *clock, node string) *harness {
	t.Helper()
	h := &harness{t: t, db: db, clk: clk}
	mon, err := health.NewMonitor(health.Options{Node: node, Store: db, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"store", status.NodePrefix + node} {
		if err := mon.Add(c, health.PingProber(func(context.Context) error { return nil })); err != nil {
			t.Fatal(err)
		}
	}
	if err := mon.Add("bankid", health.PingProber(func(context.Context) error {
		if h.fail.Load() {
			return &health.ProbeError{Reason: health.FailureConnect, Err: errors.New("connection refused")}
		}
		return nil
	})); err != nil {
		t.Fatal(err)
	}
	h.mon = mon
	h.svc = &status.Service{
		Store: db, Monitor: mon, Node: node, Now: clk.Now,
		Components: []status.Info{{ID: "bankid", Kind: status.KindProvider, Name: map[string]string{"en": "Demo BankID", "nb": "Demo BankID"}}},
		Config:     status.Config{OpenAfter: time.Minute, ResolveAfter: 5 * time.Minute},
	}
	h.eng = status.NewEngine(h.svc)
	t.Cleanup(mon.Subscribe(h.eng.Observe))
	return h
}

func openDB(t testing.TB) *sqlstore.DB {
	t.Helper()
	db, err := sqlstore.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "status.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// round advances the clock one probe interval, probes and evaluates.
func (h *harness) round() {
	h.t.Helper()
	h.clk.Add(5 * time.Second)
	ctx := context.Background()
	if err := h.mon.Tick(ctx); err != nil {
		h.t.Fatal(err)
	}
	if err := h.eng.Evaluate(ctx); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) open() []*store.Incident {
	h.t.Helper()
	in, err := h.db.ListIncidents(context.Background(), store.IncidentQuery{Open: true})
	if err != nil {
		h.t.Fatal(err)
	}
	return in
}

func (h *harness) audit(at time.Time, typ, result, reason, provider, person, attempt, browser string) {
	h.t.Helper()
	h.auditVia(at, typ, result, reason, provider, person, attempt, browser, "")
}

func (h *harness) auditVia(at time.Time, typ, result, reason, provider, person, attempt, browser, via string) {
	h.t.Helper()
	d := map[string]string{}
	if via != "" {
		d["via"] = via
	}
	if attempt != "" {
		d["attempt"] = attempt
	}
	if browser != "" {
		d["browser"] = browser
	}
	err := h.db.AppendAudit(context.Background(), &store.AuditEvent{Time: at, Type: typ, Result: result, Reason: reason,
		Provider: provider, PersonID: person, ClientID: "bank", Details: d})
	if err != nil {
		h.t.Fatal(err)
	}
}

func TestIncidentLifecycle(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)}
	h := newHarness(t, openDB(t), clk, "n1")
	for range 3 {
		h.round()
	}
	if got := h.mon.State("bankid"); got != health.Up {
		t.Fatalf("bankid = %s before the outage, want up", got)
	}
	h.audit(clk.Now(), "authentication", "success", "", "bankid", "pZ", "z1", "bZ") // before: not affected

	h.fail.Store(true)
	h.round()
	firstFailed := clk.Now() // the probe that failed first started here
	for range 2 {
		h.round()
	}
	if got := h.mon.State("bankid"); got != health.Down {
		t.Fatalf("bankid = %s after 3 failed probes, want down", got)
	}
	// Down, but not for OpenAfter yet: no incident.
	for clk.Now().Sub(firstFailed) < time.Minute-5*time.Second {
		h.round()
		if n := len(h.open()); n != 0 {
			t.Fatalf("incident opened %v after the outage began, before OpenAfter", clk.Now().Sub(firstFailed))
		}
	}
	h.round()
	open := h.open()
	if len(open) != 1 {
		t.Fatalf("%d incidents open %v after the outage began, want 1", len(open), clk.Now().Sub(firstFailed))
	}
	in := open[0]
	if in.Component != "bankid" || in.Severity != store.SeverityDown || !in.StartedAt.Equal(firstFailed) || !in.OpenedAt.Equal(clk.Now()) {
		t.Fatalf("opened incident = %+v, want bankid down started %v opened %v", in, firstFailed, clk.Now())
	}

	// While it lasts, its title says the component is down.
	if pub, err := h.svc.Incident(ctx, in.ID); err != nil || pub.Title["en"] != "Demo BankID is down" || pub.Title["nb"] != "Demo BankID er nede" {
		t.Errorf("open incident's title = %v (%v), want it to say Demo BankID is down", pub.Title, err)
	}

	// What people went through during the outage.
	w := firstFailed.Add(10 * time.Second)
	h.auditVia(w, "routing", "rerouted", "provider_down", "bankid", "", "a1", "bA", "start")                   // A chose bankid as it went down…
	h.audit(w.Add(time.Second), "authentication", "success", "", "passkey", "pA", "a1", "bA")                  // …and got in with a passkey
	h.auditVia(w.Add(2*time.Second), "routing", "rerouted", "provider_down", "bankid", "", "a2", "bA", "hint") // the bank asked for bankid
	h.auditVia(w.Add(2*time.Second), "routing", "rerouted", "provider_down", "bankid", "", "g1", "bG", "page") // G saw it down…
	h.audit(w.Add(3*time.Second), "authentication", "success", "", "minid", "pG", "g1", "bG")                  // …and used MinID: not counted
	h.audit(w.Add(3*time.Second), "authentication", "success", "", "passkey", "pA", "a2", "bA")
	h.audit(w.Add(4*time.Second), "authentication", "failure", "token_timeout", "bankid", "", "b1", "bB")  // B fails mid-flow, gives up…
	h.audit(w.Add(5*time.Second), "authentication", "success", "", "minid", "pB", "b2", "bB")              // …and later logs in afresh
	h.audit(w.Add(6*time.Second), "routing", "failure", "no_provider_available", "bankid", "", "c1", "bC") // C's client takes bankid only
	h.audit(w.Add(7*time.Second), "routing", "failure", "no_provider_available", "bankid", "", "c1", "bC") // (reloads)
	h.audit(w.Add(8*time.Second), "authentication", "failure", "cancelled", "bankid", "", "d1", "bD")      // D cancelled: not the outage
	h.audit(w.Add(9*time.Second), "authentication", "failure", "token_error", "minid", "", "e1", "bE")     // another provider
	h.audit(w.Add(10*time.Second), "consent", "success", "", "bankid", "pF", "f1", "bF")                   // not a login
	// A callback forged with the state of a login its sender started:
	// anyone can send one, so it is not the outage.
	h.audit(w.Add(11*time.Second), "authentication", "failure", "unverified_response", "bankid", "", "h1", "bH")
	// A login through bankid for a client that does not accept it: bankid
	// worked, so it is not the outage either.
	h.audit(w.Add(12*time.Second), "authentication", "failure", "provider_not_accepted", "bankid", "pI", "i1", "bI")
	// Varde's own store failed a login through bankid: not bankid's outage.
	h.audit(w.Add(13*time.Second), "authentication", "failure", "node_error", "bankid", "", "j1", "bJ")
	// bankid vouched for K at a level below what the client requires:
	// bankid worked, and Varde's policy refused K. Not the outage.
	h.audit(w.Add(14*time.Second), "authentication", "failure", "insufficient_level", "bankid", "pK", "k1", "bK")
	// bankid's result for L was good, and Varde's store failed to start
	// the session: not bankid's outage.
	h.audit(w.Add(15*time.Second), "authentication", "failure", "session_error", "bankid", "pL", "l1", "bL")
	// bankid's result for M was good and came back after M's login
	// attempt had expired: M took too long, not bankid.
	h.audit(w.Add(16*time.Second), "authentication", "failure", "attempt_expired", "bankid", "", "m1", "bM")

	h.fail.Store(false)
	var recoveredAt time.Time
	for range 200 {
		h.round()
		if cur, err := h.db.GetIncident(ctx, in.ID); err != nil {
			t.Fatal(err)
		} else if !cur.RecoveredAt.IsZero() {
			recoveredAt = cur.RecoveredAt
			break
		}
	}
	if recoveredAt.IsZero() || h.mon.State("bankid") != health.Up {
		t.Fatalf("incident never recovering; bankid %s", h.mon.State("bankid"))
	}
	for clk.Now().Sub(recoveredAt) < 5*time.Minute-5*time.Second {
		h.round()
		if len(h.open()) != 1 {
			t.Fatalf("resolved %v after recovery, before ResolveAfter", clk.Now().Sub(recoveredAt))
		}
	}
	h.round()
	if len(h.open()) != 0 {
		t.Fatalf("still open %v after recovery", clk.Now().Sub(recoveredAt))
	}
	resolvedAt := clk.Now()

	pub, err := h.svc.Incident(ctx, in.ID)
	if err != nil {
		t.Fatal(err)
	}
	if pub.Status != "resolved" || !pub.ResolvedAt.Equal(resolvedAt) || !pub.RCADueAt.Equal(resolvedAt.Add(72*time.Hour)) || pub.RCAOverdue {
		t.Errorf("published = status %s resolved %v due %v overdue %v", pub.Status, pub.ResolvedAt, pub.RCADueAt, pub.RCAOverdue)
	}
	// Over, its title no longer says the component is down.
	if want := map[string]string{"en": "Demo BankID was down", "nb": "Demo BankID var nede", "da": "Demo BankID var nede"}; !maps.Equal(pub.Title, want) {
		t.Errorf("resolved incident's title = %v, want %v", pub.Title, want)
	}
	if want := int64(recoveredAt.Sub(firstFailed) / time.Second); pub.DurationSeconds != want {
		t.Errorf("duration = %ds, want %ds", pub.DurationSeconds, want)
	}
	if pub.PeopleAffected != 3 || pub.FailedAttempts != 2 || pub.Rerouted != 2 {
		t.Errorf("people %d failed %d rerouted %d, want 3 2 2", pub.PeopleAffected, pub.FailedAttempts, pub.Rerouted)
	}
	var kinds []string
	for _, u := range pub.Timeline {
		kinds = append(kinds, u.Kind)
	}
	if len(kinds) < 3 || kinds[0] != store.UpdateOpened || kinds[len(kinds)-1] != store.UpdateResolved || kinds[len(kinds)-2] != store.UpdateRecovered {
		t.Errorf("timeline = %v, want opened … recovered resolved", kinds)
	}

	if _, err := h.svc.AddNote(ctx, in.ID, "ops", "Upstream certificate expired; renewed."); err != nil {
		t.Fatal(err)
	}
	// The RCA deadline passes.
	clk.Add(72 * time.Hour)
	if pub, _ := h.svc.Incident(ctx, in.ID); pub.RCAOverdue {
		t.Errorf("overdue at the deadline")
	}
	clk.Add(time.Second)
	sum, err := h.svc.Summary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Recent) != 1 || !sum.Recent[0].RCAOverdue {
		t.Fatalf("summary at the deadline: recent %+v, want one overdue", sum.Recent)
	}
	if err := h.svc.PublishRCA(ctx, in.ID, "ops", "The upstream's TLS certificate expired."); err != nil {
		t.Fatal(err)
	}
	pub, _ = h.svc.Incident(ctx, in.ID)
	if pub.RCAOverdue || pub.RCAOnTime || pub.RCA == "" {
		t.Errorf("after a late RCA: overdue %v on time %v rca %q", pub.RCAOverdue, pub.RCAOnTime, pub.RCA)
	}

	rep, err := h.svc.Report(ctx, firstFailed.Add(-time.Hour), clk.Now(), "")
	if err != nil {
		t.Fatal(err)
	}
	var bank *status.ComponentReport
	for i := range rep.Components {
		if rep.Components[i].Component == "bankid" {
			bank = &rep.Components[i]
		}
	}
	if bank == nil || bank.Incidents != 1 || bank.PeopleAffected != 3 || bank.RCAsDue != 1 || bank.RCAsOnTime != 0 {
		t.Fatalf("bankid report = %+v", bank)
	}
	if bank.DowntimeMinutes <= 0 || bank.AvailabilityPercent == nil || *bank.AvailabilityPercent >= 100 || bank.MTTRMinutes == nil {
		t.Errorf("bankid downtime %v availability %v mttr %v", bank.DowntimeMinutes, bank.AvailabilityPercent, bank.MTTRMinutes)
	}
	if rep.Total.Incidents != 1 {
		t.Errorf("total incidents = %d", rep.Total.Incidents)
	}
}

// TestShortOutageOpensNoIncident: down for three probes, then degraded
// until the failures leave the probe window, about 70 s in all: below a
// two-minute threshold.
func TestShortOutageOpensNoIncident(t *testing.T) {
	h := newHarness(t, openDB(t), &clock{t: time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)}, "n1")
	h.svc.Config.OpenAfter = 2 * time.Minute
	h.round()
	h.fail.Store(true)
	for range 3 {
		h.round()
	}
	if h.mon.State("bankid") != health.Down {
		t.Fatalf("bankid %s after 3 failed probes", h.mon.State("bankid"))
	}
	h.fail.Store(false)
	for range 40 {
		h.round()
	}
	in, err := h.db.ListIncidents(context.Background(), store.IncidentQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(in) != 0 {
		t.Fatalf("a short outage opened %d incidents", len(in))
	}
}

func TestMaintenanceSuppressesIncident(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)}
	h := newHarness(t, openDB(t), clk, "n1")
	if _, err := h.svc.Announce(ctx, []string{"bankid"}, clk.Now().Add(time.Minute), clk.Now().Add(time.Hour), "Certificate rollover", ""); err != nil {
		t.Fatal(err)
	}
	sum, err := h.svc.Summary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Maintenance) != 1 || sum.Maintenance[0].Status != "scheduled" {
		t.Fatalf("maintenance = %+v, want one scheduled", sum.Maintenance)
	}
	for range 15 {
		h.round()
	}
	sum, _ = h.svc.Summary(ctx)
	if st := stateOf(sum, "bankid"); st != status.InMaintenance {
		t.Errorf("bankid during maintenance = %s", st)
	}
	h.fail.Store(true)
	for range 30 {
		h.round()
	}
	if n := len(h.open()); n != 0 {
		t.Fatalf("%d incidents opened during announced maintenance", n)
	}
	sum, _ = h.svc.Summary(ctx)
	if st := stateOf(sum, "bankid"); st != status.Down {
		t.Errorf("bankid measured down during maintenance shows %s, want down", st)
	}
	if _, err := h.svc.Announce(ctx, []string{"bankid"}, clk.Now(), clk.Now(), "empty", ""); !errors.Is(err, status.ErrBadWindow) {
		t.Errorf("empty window: %v", err)
	}
}

func stateOf(sum *status.Summary, id string) status.State {
	for _, c := range sum.Components {
		if c.ID == id {
			return c.State
		}
	}
	return ""
}

func TestTwoNodesOpenOneIncident(t *testing.T) {
	db := openDB(t)
	clk := &clock{t: time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)}
	a, b := newHarness(t, db, clk, "a"), newHarness(t, db, clk, "b")
	a.fail.Store(true)
	b.fail.Store(true)
	ctx := context.Background()
	for range 20 {
		clk.Add(5 * time.Second)
		for _, h := range []*harness{a, b} {
			if err := h.mon.Tick(ctx); err != nil {
				t.Fatal(err)
			}
		}
		var wg sync.WaitGroup
		for _, h := range []*harness{a, b} {
			wg.Go(func() {
				if err := h.eng.Evaluate(ctx); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}
	if n := len(a.open()); n != 1 {
		t.Fatalf("two nodes opened %d incidents for one outage", n)
	}
	sum, err := a.svc.Summary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Node b's own probes make it a component on a's page, operational
	// while it keeps probing, down once it has been silent for three
	// intervals.
	if st := stateOf(sum, "node:b"); st != status.Operational {
		t.Errorf("node:b on a's page = %q, want operational", st)
	}
	for range 4 {
		clk.Add(5 * time.Second)
		if err := a.mon.Tick(ctx); err != nil {
			t.Fatal(err)
		}
	}
	sum, err = a.svc.Summary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st := stateOf(sum, "node:b"); st != status.Down {
		t.Errorf("node:b silent for 20 s = %q, want down", st)
	}
	if sum.Overall != status.Down {
		t.Errorf("overall = %s, want down", sum.Overall)
	}
	if len(sum.History) != len(sum.Components) || len(sum.History[0].Days) != status.HistoryDays {
		t.Fatalf("history = %d components", len(sum.History))
	}
}

func TestSummaryHistory(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Date(2026, 11, 2, 23, 59, 45, 0, time.UTC)}
	h := newHarness(t, openDB(t), clk, "n1")
	for range 4 { // two probes on the 2nd, two on the 3rd
		h.round()
	}
	h.fail.Store(true)
	h.round() // one failed probe on the 3rd
	sum, err := h.svc.Summary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var bank status.History
	for _, hi := range sum.History {
		if hi.Component == "bankid" {
			bank = hi
		}
	}
	days := bank.Days
	if len(days) != status.HistoryDays {
		t.Fatalf("%d days", len(days))
	}
	last, prev := days[len(days)-1], days[len(days)-2]
	if !last.Date.Equal(time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC)) || last.Probes != 3 || last.OK != 2 || *last.Percent != 66.667 {
		t.Errorf("today = %+v (percent %v)", last, last.Percent)
	}
	if prev.Probes != 2 || prev.OK != 2 || prev.Worst != status.Operational {
		t.Errorf("yesterday = %+v", prev)
	}
	if days[0].Percent != nil || days[0].Worst != status.Unknown {
		t.Errorf("a day without probes = %+v", days[0])
	}
	if *bank.Percent != 80 {
		t.Errorf("90-day percent = %v, want 80", *bank.Percent)
	}
	if want := time.Date(2026, 11, 2, 23, 59, 50, 0, time.UTC); !sum.DataFrom.Equal(want) { // a round probes 5 s after it starts
		t.Errorf("data from %v, want the first probe's %v", sum.DataFrom, want)
	}
}

// TestRecordedMatchesMonitor: a tool beside the nodes reads the same
// states back from the store as the node's monitor holds.
func TestRecordedMatchesMonitor(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)}
	h := newHarness(t, openDB(t), clk, "n1")
	h.round()
	h.fail.Store(true)
	for range 4 {
		h.round()
	}
	rec := &status.Recorded{Store: h.db, Node: "n1", Now: clk.Now}
	if err := rec.Load(ctx); err != nil {
		t.Fatal(err)
	}
	got := map[string]health.State{}
	for _, s := range rec.Snapshot() {
		got[s.Component] = s.State
	}
	for _, s := range h.mon.Snapshot() {
		if got[s.Component] != s.State {
			t.Errorf("%s: recorded %s, monitor %s", s.Component, got[s.Component], s.State)
		}
	}
	if got["bankid"] != health.Down {
		t.Errorf("bankid recorded %s, want down", got["bankid"])
	}
	clk.Add(time.Minute) // nobody probes any more
	if err := rec.Load(ctx); err != nil {
		t.Fatal(err)
	}
	for _, s := range rec.Snapshot() {
		if s.State != health.Unknown {
			t.Errorf("%s after a silent minute: %s, want unknown", s.Component, s.State)
		}
	}
}

// TestNodesThatDisagreeKeepOneTimeline: node a measures bankid up again
// while node b still measures it down. The incident stays open without
// a new timeline entry for as long as they disagree, and recovers once,
// when b measures it up too.
func TestNodesThatDisagreeKeepOneTimeline(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	clk := &clock{t: time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)}
	a, b := newHarness(t, db, clk, "a"), newHarness(t, db, clk, "b")
	step := func() {
		clk.Add(5 * time.Second)
		for _, h := range []*harness{a, b} {
			if err := h.mon.Tick(ctx); err != nil {
				t.Fatal(err)
			}
		}
		for _, h := range []*harness{a, b} {
			if err := h.eng.Evaluate(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	a.fail.Store(true)
	b.fail.Store(true)
	for range 24 {
		step()
	}
	a.fail.Store(false) // only a's path to bankid comes back
	for range 120 {     // ten minutes
		step()
	}
	open := a.open()
	if len(open) != 1 {
		t.Fatalf("%d open incidents, want 1", len(open))
	}
	in := open[0]
	if !in.RecoveredAt.IsZero() || len(in.Updates) != 1 {
		t.Fatalf("after ten minutes in which b still measured bankid down: recovered %v, %d timeline entries", in.RecoveredAt, len(in.Updates))
	}
	b.fail.Store(false)
	for range 100 {
		step()
	}
	all, err := db.ListIncidents(ctx, store.IncidentQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1 || all[0].ResolvedAt.IsZero() {
		t.Fatalf("%d incidents, resolved %v; want one, resolved", len(all), all[0].ResolvedAt)
	}
	// b leaves down through degraded (its failed probes are still in
	// its window) before it is up.
	if got, want := kindsOf(all[0]), "opened:down state:degraded recovered:up resolved:up"; got != want {
		t.Errorf("timeline %s, want %s", got, want)
	}
	if rec := all[0].RecoveredAt; rec.Before(clk.Now().Add(-100 * 5 * time.Second)) {
		t.Errorf("recovered at %v, before b measured bankid up", rec)
	}
}

func kindsOf(in *store.Incident) string {
	var out []string
	for _, u := range in.Updates {
		out = append(out, u.Kind+":"+u.State)
	}
	return strings.Join(out, " ")
}

// TestIncidentAfterMaintenanceStartsWhenItEnds: what a component did
// during announced maintenance is not an incident. Still recovering when
// the window ends (degraded by hysteresis), it opens none; still down,
// it opens one that starts when the window ended.
func TestIncidentAfterMaintenanceStartsWhenItEnds(t *testing.T) {
	tests := []struct {
		name string
		// fixed is how long before the window's end bankid works again.
		fixed time.Duration
		// want is whether an incident opens, starting at the window's end.
		want bool
	}{
		{"recovering at the end", 30 * time.Second, false},
		{"down after the end", -5 * time.Minute, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			clk := &clock{t: time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)}
			h := newHarness(t, openDB(t), clk, "n1")
			start, end := clk.Now().Add(time.Minute), clk.Now().Add(31*time.Minute)
			if _, err := h.svc.Announce(ctx, []string{"bankid"}, start, end, "Certificate rollover", ""); err != nil {
				t.Fatal(err)
			}
			for range 24 {
				h.round()
			}
			h.fail.Store(true)
			for clk.Now().Before(end.Add(-tt.fixed)) {
				h.round()
			}
			h.fail.Store(false)
			for range 120 {
				h.round()
			}
			all, err := h.db.ListIncidents(ctx, store.IncidentQuery{})
			if err != nil {
				t.Fatal(err)
			}
			if !tt.want {
				if len(all) != 0 {
					t.Fatalf("%d incidents, started %v, for a window that ended on time", len(all), all[0].StartedAt)
				}
				return
			}
			if len(all) != 1 {
				t.Fatalf("%d incidents, want 1", len(all))
			}
			if in := all[0]; !in.StartedAt.Equal(end) || in.OpenedAt.Before(end.Add(time.Minute)) {
				t.Errorf("incident started %v, opened %v; want started at the window's end %v, opened a minute later", in.StartedAt, in.OpenedAt, end)
			}
		})
	}
}

// TestRCADueEarlyInAQuarterCountsInThatQuarter: an incident resolved in
// the last 72 hours of a quarter has its RCA due in the next one, and
// that quarter's report counts it, once, and lists the incident, so
// the RCA it counts can be read; its incidents and people stay in the
// quarter it started in.
func TestRCADueEarlyInAQuarterCountsInThatQuarter(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	clk := &clock{t: time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)}
	h := newHarness(t, db, clk, "n1")
	h.round()
	in := &store.Incident{ID: "x1", Component: "bankid", Components: []string{"bankid"}, Severity: store.SeverityDown,
		StartedAt: time.Date(2026, 3, 30, 10, 0, 0, 0, time.UTC), OpenedAt: time.Date(2026, 3, 30, 10, 1, 0, 0, time.UTC)}
	if err := db.OpenIncident(ctx, in); err != nil {
		t.Fatal(err)
	}
	in.RecoveredAt = time.Date(2026, 3, 30, 11, 0, 0, 0, time.UTC)
	in.ResolvedAt = time.Date(2026, 3, 30, 11, 5, 0, 0, time.UTC) // RCA due 2 April, never published
	in.PeopleAffected = 7
	if err := db.UpdateIncident(ctx, in); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		from, to                  time.Time
		incidents, people, rcaDue int
		listed                    int
	}{
		{time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC), 1, 7, 0, 1},
		{time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC), 0, 0, 1, 1},
	}
	for _, tt := range tests {
		rep, err := h.svc.Report(ctx, tt.from, tt.to, "")
		if err != nil {
			t.Fatal(err)
		}
		if got := rep.Total; got.Incidents != tt.incidents || got.PeopleAffected != int64(tt.people) || got.RCAsDue != tt.rcaDue || got.RCAsOnTime != 0 {
			t.Errorf("%s: incidents %d, people %d, RCAs due %d (on time %d); want %d, %d, %d (0)", rep.Title,
				got.Incidents, got.PeopleAffected, got.RCAsDue, got.RCAsOnTime, tt.incidents, tt.people, tt.rcaDue)
		}
		if want := tt.listed; len(rep.Incidents) != want {
			t.Errorf("%s lists %d incidents, want %d", rep.Title, len(rep.Incidents), want)
		}
	}
}

// stepper returns a step: it advances clk one probe interval, and each
// node it is given probes and evaluates.
func stepper(t *testing.T, clk *clock) func(hs ...*harness) {
	return func(hs ...*harness) {
		t.Helper()
		clk.Add(5 * time.Second)
		for _, h := range hs {
			if err := h.mon.Tick(context.Background()); err != nil {
				t.Fatal(err)
			}
			if err := h.eng.Evaluate(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestSilentNodeIsDown: node b stops recording anything for ten
// minutes.
// Node a's engine finds it silent, opens an incident for it and resolves
// it once b is back, and the report counts the silence as b's down time.
func TestSilentNodeIsDown(t *testing.T) {
	db := openDB(t)
	from := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	clk := &clock{t: from.Add(10 * time.Hour)}
	a, b := newHarness(t, db, clk, "a"), newHarness(t, db, clk, "b")
	step := stepper(t, clk)
	for range 60 {
		step(a, b)
	}
	silent := clk.Now()
	for range 120 { // b records nothing for ten minutes
		step(a)
	}
	open := a.open()
	if len(open) != 1 || open[0].Component != "node:b" || open[0].Severity != store.SeverityDown {
		t.Fatalf("open incidents %+v, want node:b down", open)
	}
	if got := open[0].StartedAt.Sub(silent); got < 0 || got > 30*time.Second {
		t.Errorf("incident started %v after b fell silent, want within 30 s", got)
	}
	back := clk.Now()
	for range 120 { // b is back for ten minutes
		step(a, b)
	}
	if open := a.open(); len(open) != 0 {
		t.Fatalf("%d incidents still open ten minutes after b came back", len(open))
	}
	reportsDown(t, a, from, from.Add(24*time.Hour), "node:b", back.Sub(silent))
}

// reportsDown checks that h's report over [from, to) counts component
// down for about want (within a minute), in one incident.
func reportsDown(t *testing.T, h *harness, from, to time.Time, component string, want time.Duration) {
	t.Helper()
	rep, err := h.svc.Report(context.Background(), from, to, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range rep.Components {
		if c.Component != component {
			continue
		}
		down := time.Duration(c.DowntimeMinutes * float64(time.Minute))
		if down < want-time.Minute || down > want+time.Minute || c.Incidents != 1 {
			t.Errorf("%s in the report: down %v in %d incidents, want about %v in 1", component, down, c.Incidents, want)
		}
		return
	}
	t.Errorf("%s is not in the report", component)
}

// TestIncidentOfRemovedComponentResolves: bankid is down with an
// incident open when the node restarts without it in its configuration.
// No node monitors it any more, so its incident is resolved, saying so.
func TestIncidentOfRemovedComponentResolves(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)}
	h := newHarness(t, openDB(t), clk, "n1")
	h.fail.Store(true)
	for range 20 {
		h.round()
	}
	if n := len(h.open()); n != 1 {
		t.Fatalf("%d incidents open, want 1", n)
	}
	// The node restarts; its configuration no longer has bankid.
	mon, err := health.NewMonitor(health.Options{Node: "n1", Store: h.db, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"store", "node:n1"} {
		if err := mon.Add(c, health.PingProber(func(context.Context) error { return nil })); err != nil {
			t.Fatal(err)
		}
	}
	h.mon = mon
	h.svc = &status.Service{Store: h.db, Monitor: mon, Node: "n1", Now: clk.Now}
	h.eng = status.NewEngine(h.svc)
	h.round()
	if n := len(h.open()); n != 0 {
		t.Fatalf("%d incidents still open for a component no node monitors", n)
	}
	all, err := h.db.ListIncidents(ctx, store.IncidentQuery{})
	if err != nil {
		t.Fatal(err)
	}
	last := all[0].Updates[len(all[0].Updates)-1]
	if last.Kind != store.UpdateResolved || last.Reason != status.ReasonRemoved || all[0].RecoveredAt.IsZero() {
		t.Errorf("last timeline entry %+v, recovered %v; want resolved because the component was removed", last, all[0].RecoveredAt)
	}
}

// TestReportTotalCountsAnIncidentOnce: an incident that affected two
// components counts in each component's figures, and once in the
// total: its incident, people, failed attempts and RCA.
func TestReportTotalCountsAnIncidentOnce(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	clk := &clock{t: time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)}
	h := newHarness(t, db, clk, "n1")
	h.round()
	in := &store.Incident{ID: "x2", Component: "bankid", Components: []string{"bankid", "node:n1"}, Severity: store.SeverityDown,
		StartedAt: time.Date(2026, 4, 10, 10, 0, 0, 0, time.UTC), OpenedAt: time.Date(2026, 4, 10, 10, 1, 0, 0, time.UTC)}
	if err := db.OpenIncident(ctx, in); err != nil {
		t.Fatal(err)
	}
	in.RecoveredAt = time.Date(2026, 4, 10, 11, 0, 0, 0, time.UTC)
	in.ResolvedAt = time.Date(2026, 4, 10, 11, 5, 0, 0, time.UTC)
	in.PeopleAffected, in.FailedAttempts = 7, 11
	in.RCA, in.RCAPublishedAt = "The bank's certificate expired.", time.Date(2026, 4, 11, 9, 0, 0, 0, time.UTC)
	if err := db.UpdateIncident(ctx, in); err != nil {
		t.Fatal(err)
	}
	rep, err := h.svc.Report(ctx, time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range in.Components {
		i := slices.IndexFunc(rep.Components, func(c status.ComponentReport) bool { return c.Component == id })
		if i < 0 {
			t.Fatalf("no figures for %s in %+v", id, rep.Components)
		}
		if c := rep.Components[i]; c.Incidents != 1 || c.PeopleAffected != 7 || c.RCAsDue != 1 {
			t.Errorf("%s: incidents %d, people %d, RCAs due %d; want 1, 7, 1", id, c.Incidents, c.PeopleAffected, c.RCAsDue)
		}
	}
	got := rep.Total
	if got.Incidents != 1 || got.PeopleAffected != 7 || got.FailedAttempts != 11 || got.RCAsDue != 1 || got.RCAsOnTime != 1 ||
		got.MTTRMinutes == nil || *got.MTTRMinutes != 60 {
		t.Errorf("total: incidents %d, people %d, failed %d, RCAs due %d (on time %d), MTTR %v; want 1, 7, 11, 1 (1), 60",
			got.Incidents, got.PeopleAffected, got.FailedAttempts, got.RCAsDue, got.RCAsOnTime, got.MTTRMinutes)
	}
}

// TestReportKeepsARemovedComponentsIncidents: an incident of a component
// since removed from the configuration still counts in the report of
// the period it happened in, under that component and in the total,
// its overdue RCA too.
func TestReportKeepsARemovedComponentsIncidents(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	clk := &clock{t: time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)}
	h := newHarness(t, db, clk, "n1")
	h.round()
	in := &store.Incident{ID: "x3", Component: "oldbank", Components: []string{"oldbank"}, Severity: store.SeverityDown,
		StartedAt: time.Date(2026, 4, 10, 10, 0, 0, 0, time.UTC), OpenedAt: time.Date(2026, 4, 10, 10, 1, 0, 0, time.UTC)}
	if err := db.OpenIncident(ctx, in); err != nil {
		t.Fatal(err)
	}
	in.RecoveredAt = time.Date(2026, 4, 10, 11, 0, 0, 0, time.UTC)
	in.ResolvedAt = time.Date(2026, 4, 10, 11, 5, 0, 0, time.UTC) // RCA due 13 April, never published
	in.PeopleAffected = 5
	if err := db.UpdateIncident(ctx, in); err != nil {
		t.Fatal(err)
	}
	rep, err := h.svc.Report(ctx, time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC), "")
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(rep.Components, func(c status.ComponentReport) bool { return c.Component == "oldbank" })
	if i < 0 {
		t.Errorf("no figures for the removed component in %+v", rep.Components)
	} else if c := rep.Components[i]; c.Incidents != 1 || c.PeopleAffected != 5 || c.RCAsDue != 1 || c.AvailabilityPercent != nil {
		t.Errorf("oldbank: incidents %d, people %d, RCAs due %d, availability %v; want 1, 5, 1, none measured here",
			c.Incidents, c.PeopleAffected, c.RCAsDue, c.AvailabilityPercent)
	}
	if got := rep.Total; got.Incidents != 1 || got.PeopleAffected != 5 || got.RCAsDue != 1 || got.RCAsOnTime != 0 {
		t.Errorf("total: incidents %d, people %d, RCAs due %d (on time %d); want 1, 5, 1 (0)", got.Incidents, got.PeopleAffected, got.RCAsDue, got.RCAsOnTime)
	}
}

// TestSummaryAgedOut: the summary says when the last incident left the
// page: HistoryDays after the latest resolution before its window (of
// incidents whose root-cause analysis is published: one owed stays).
func TestSummaryAgedOut(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 2, 12, 0, 0, 0, time.UTC)
	clk := &clock{t: now}
	h := newHarness(t, openDB(t), clk, "n1")
	days := func(n int) time.Time { return now.AddDate(0, 0, -n) }
	for i, resolved := range []time.Time{days(120), days(95), days(10)} {
		in := &store.Incident{ID: fmt.Sprintf("inc-%d", i), Component: fmt.Sprintf("c%d", i), Severity: store.SeverityDown,
			StartedAt: resolved.Add(-2 * time.Hour), OpenedAt: resolved.Add(-time.Hour)}
		if err := h.db.OpenIncident(ctx, in); err != nil {
			t.Fatal(err)
		}
		in.RecoveredAt, in.ResolvedAt = resolved.Add(-time.Minute), resolved
		in.RCA, in.RCAPublishedAt = "A certificate expired.", resolved.Add(time.Hour)
		if err := h.db.UpdateIncident(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	sum, err := h.svc.Summary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := days(95).AddDate(0, 0, status.HistoryDays); !sum.AgedOut.Equal(want) || len(sum.Recent) != 1 {
		t.Errorf("aged out %v with %d recent, want %v with 1", sum.AgedOut, len(sum.Recent), want)
	}
}

// TestOverallGradesWhoCanLogIn: a way to log in that is down while
// another works makes the overall state degraded (people log in another
// way), not down; with no way to log in left, or the store down (nobody
// can log in), it is down.
func TestOverallGradesWhoCanLogIn(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)}
	db := openDB(t)
	mon, err := health.NewMonitor(health.Options{Node: "n1", Store: db, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	failing := map[string]*atomic.Bool{}
	for _, c := range []string{"store", status.NodePrefix + "n1", "bankid", "minid"} {
		failing[c] = &atomic.Bool{}
		if err := mon.Add(c, health.PingProber(func(context.Context) error {
			if failing[c].Load() {
				return &health.ProbeError{Reason: health.FailureConnect, Err: errors.New("connection refused")}
			}
			return nil
		})); err != nil {
			t.Fatal(err)
		}
	}
	svc := &status.Service{Store: db, Monitor: mon, Node: "n1", Now: clk.Now, Components: []status.Info{
		{ID: "bankid", Kind: status.KindProvider, Name: map[string]string{"en": "Demo BankID"}},
		{ID: "minid", Kind: status.KindProvider, Name: map[string]string{"en": "MinID"}},
	}}
	overall := func(down ...string) status.State {
		t.Helper()
		for c, f := range failing {
			f.Store(slices.Contains(down, c))
		}
		for range 10 {
			clk.Add(5 * time.Second)
			if err := mon.Tick(ctx); err != nil {
				t.Fatal(err)
			}
		}
		clk.Add(time.Minute) // past the summary the node shares
		sum, err := svc.Summary(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return sum.Overall
	}
	for _, tt := range []struct {
		down []string
		want status.State
	}{
		{nil, status.Operational},
		{[]string{"bankid"}, status.Degraded},
		{[]string{"bankid", "minid"}, status.Down},
		{[]string{"store"}, status.Down},
		{[]string{"store", "bankid"}, status.Down},
	} {
		if got := overall(tt.down...); got != tt.want {
			t.Errorf("with %v down: overall %s, want %s", tt.down, got, tt.want)
		}
	}
}
