package health

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/varde-eid/varde/internal/store"
)

// Recorder is where a Monitor writes the health history: the writing
// half of store.Health. If it also has store.Health's
// DeleteProbesBefore, the monitor prunes probe results older than
// Config.Retention.
type Recorder interface {
	RecordProbes(ctx context.Context, ps []*store.ProbeRecord) error
	RecordHealthTransitions(ctx context.Context, ts []*store.HealthTransition) error
}

// probeLister is the optional ability to read probe results back,
// which Seed uses.
type probeLister interface {
	ListProbes(ctx context.Context, q store.HealthQuery) ([]*store.ProbeRecord, error)
}

// pruner is the optional ability to delete old probe results.
type pruner interface {
	DeleteProbesBefore(ctx context.Context, before time.Time) (int64, error)
}

// Options are what NewMonitor builds a Monitor from.
type Options struct {
	// Config holds the schedule and thresholds; zero fields take their
	// defaults.
	Config Config
	// Node names this node in the records it writes.
	Node string
	// Store receives every probe result and transition, in batches; nil
	// records nothing.
	Store Recorder
	// Registerer receives the metrics; nil leaves them unregistered.
	Registerer prometheus.Registerer
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log receives state changes and store errors; nil discards them.
	Log *slog.Logger
}

// Monitor keeps the health state of components: it probes them on a
// schedule (Run, or one round at a time with Tick), takes the outcomes of
// real logins (Observe), answers State and Snapshot from memory without
// locking, records probe results and transitions to the store, exports
// metrics and tells subscribers about transitions. It is safe for
// concurrent use.
type Monitor struct {
	cfg  Config
	node string
	rec  Recorder
	now  func() time.Time
	log  *slog.Logger
	met  *metrics

	// comps is replaced, never changed, when a component is added, so
	// readers load it without a lock.
	comps atomic.Pointer[registry]
	addMu sync.Mutex

	subMu   sync.RWMutex
	subs    []subscriber
	nextSub uint64

	// tickMu makes probe rounds take turns.
	tickMu sync.Mutex
	// probed is closed when the first round has probed every component.
	probed     chan struct{}
	probedOnce sync.Once
	// writeMu guards inflight, closed when the running write (prune,
	// then flush) ends and nil when none runs; lastPrune belongs to the
	// writes, which run one at a time.
	writeMu   sync.Mutex
	inflight  chan struct{}
	lastPrune time.Time

	// flushMu keeps flushes in order; pendMu guards the records waiting
	// for the next flush.
	flushMu    sync.Mutex
	pendMu     sync.Mutex
	pendProbes []*store.ProbeRecord
	pendTrans  []*store.HealthTransition
}

type registry struct {
	byName map[string]*component
	list   []*component // by name
}

type subscriber struct {
	id uint64
	fn func(Transition)
}

// component is one monitored component.
type component struct {
	name   string
	prober Prober
	// seeded is set once Seed has looked for the other nodes' view of
	// it.
	seeded atomic.Bool
	// running is set while a probe of this component is in flight, so a
	// probe that ignores its deadline is never started twice.
	running atomic.Bool
	// runningSince is when the probe in flight started; it is set
	// before running is released to other rounds' reads.
	runningSince atomic.Pointer[time.Time]

	// mu guards the fields below and orders transitions.
	mu          sync.Mutex
	m           *machine
	lastProbe   time.Time
	lastFailure string
	// lastErr is the last failed probe's error, for the log of the
	// transition it brings: an operator reads there why, at info.
	lastErr error

	// status is the latest Status, for lock-free reads.
	status atomic.Pointer[Status]
}

// NewMonitor returns a monitor with no components; Add registers them.
func NewMonitor(o Options) (*Monitor, error) {
	cfg := o.Config.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	met, err := newMetrics(o.Registerer)
	if err != nil {
		return nil, fmt.Errorf("health metrics: %w", err)
	}
	m := &Monitor{cfg: cfg, node: o.Node, rec: o.Store, now: o.Now, log: o.Log, met: met, probed: make(chan struct{})}
	if m.now == nil {
		m.now = time.Now
	}
	if m.log == nil {
		m.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	m.comps.Store(&registry{byName: map[string]*component{}})
	return m, nil
}

// Config returns the configuration in effect, defaults filled in.
func (m *Monitor) Config() Config { return m.cfg }

// Add registers a component. p probes it actively; with a nil p the
// component's state comes from real logins only. Names are unique and
// appear in metrics, records and pages (a provider's ID, "store",
// "node:<name>").
func (m *Monitor) Add(name string, p Prober) error {
	if name == "" {
		return errors.New("health: empty component name")
	}
	m.addMu.Lock()
	defer m.addMu.Unlock()
	old := m.comps.Load()
	if _, ok := old.byName[name]; ok {
		return fmt.Errorf("health: component %q added twice", name)
	}
	c := &component{name: name, prober: p, m: newMachine(&m.cfg)}
	c.publish()
	reg := &registry{byName: make(map[string]*component, len(old.byName)+1), list: append(slices.Clip(old.list), c)}
	for k, v := range old.byName {
		reg.byName[k] = v
	}
	reg.byName[name] = c
	slices.SortFunc(reg.list, func(a, b *component) int { return cmp.Compare(a.name, b.name) })
	m.met.setState(name, Unknown)
	m.comps.Store(reg)
	return nil
}

// State returns component's current state; Unknown for a name never
// added. It takes no lock: the login page may call it on every render.
func (m *Monitor) State(component string) State {
	if c := m.comps.Load().byName[component]; c != nil {
		return c.status.Load().State
	}
	return Unknown
}

// Status returns component's current status, and false for a name never
// added.
func (m *Monitor) Status(component string) (Status, bool) {
	if c := m.comps.Load().byName[component]; c != nil {
		return *c.status.Load(), true
	}
	return Status{}, false
}

// Snapshot returns every component's status, ordered by name.
func (m *Monitor) Snapshot() []Status {
	list := m.comps.Load().list
	out := make([]Status, len(list))
	for i, c := range list {
		out[i] = *c.status.Load()
	}
	return out
}

// Subscribe calls fn with every transition from now on, in order for
// each component, until the returned function is called. fn runs while
// the component's state is locked: it must return quickly and must not
// call Observe or unsubscribe (State, Status and Snapshot are fine). To
// do slow work (webhooks), hand the transition to a goroutine of your
// own.
func (m *Monitor) Subscribe(fn func(Transition)) (unsubscribe func()) {
	m.subMu.Lock()
	defer m.subMu.Unlock()
	m.nextSub++
	id := m.nextSub
	m.subs = append(m.subs, subscriber{id, fn})
	return func() {
		m.subMu.Lock()
		defer m.subMu.Unlock()
		m.subs = slices.DeleteFunc(m.subs, func(s subscriber) bool { return s.id == id })
	}
}

// Observe takes the outcome of one real login through component. The
// broker reports Success when a provider finishes and Error when it
// fails on its own side (an eID's time-out included). Unknown
// components and outcomes are ignored.
func (m *Monitor) Observe(component string, o Outcome) {
	m.login(component, func(mc *machine, at time.Time) (Transition, bool) { return mc.observe(at, o) })
}

// ObserveRefusal takes one real login through component that the
// component answered for, naming an account, and that was refused on
// what it said about that account: an upstream eID's signed ID token
// without an identifier Varde accepts, say. One account may be refused
// on every try, so a refusal counts as a failed login once per account
// while it is in the login window, however often that account tries;
// many accounts refused are the component failing everyone. account is
// an opaque handle, the same for each login of the account ("" counts
// every time). Unknown components are ignored.
func (m *Monitor) ObserveRefusal(component, account string) {
	m.login(component, func(mc *machine, at time.Time) (Transition, bool) { return mc.refuse(at, account) })
}

// login feeds one real login through component to its machine with
// take, now, and publishes the transition it makes, if any.
func (m *Monitor) login(component string, take func(mc *machine, at time.Time) (Transition, bool)) {
	c := m.comps.Load().byName[component]
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	at := m.now() // under the lock, so changes are made in time order
	if t, ok := take(c.m, at); ok {
		m.changed(c, t)
	}
}

// seedAge bounds, in probe intervals, the age of the probe results Seed
// takes: a node still running has written newer ones.
const seedAge = 3

// Seed sets each component that has a prober and no probe result of
// this node's yet to the state the other nodes' latest probes found it
// in, so a node starting during an outage does not offer a provider the
// rest of the fleet knows is Down while its own probes catch up
// (Config.FailuresToDown of them). It reads, from the Recorder if it
// can list probe results (store.Health can), each node's latest probe
// result of the last seedAge intervals, and takes the state at least
// half of those nodes found the component in or worse: the median,
// the worse of the two middle ones for an even count (transition
// reason ReasonSeeded). So one node that alone finds a provider Down
// (its own logins through it failed, say) does not make a restarted
// node shun a provider the rest of the fleet finds working, and with a
// single other node its state is taken. A state those nodes' own
// probes show is seeded as probe evidence, and the component's own
// probes go on from there with the usual hysteresis; one their logins
// alone show is seeded as login evidence, which lapses with the login
// window (machine.seedLogins). With no such results the
// component stays Unknown. A component is seeded once: Tick seeds those
// added since, before probing them. Seed waits for the store at most
// Config.ProbeTimeout.
func (m *Monitor) Seed(ctx context.Context) error {
	var want []*component
	for _, c := range m.comps.Load().list {
		if c.prober != nil && !c.seeded.Load() && c.status.Load().LastProbe.IsZero() {
			want = append(want, c)
		}
	}
	if len(want) == 0 {
		return nil
	}
	l, ok := m.rec.(probeLister)
	if !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, m.cfg.ProbeTimeout)
	defer cancel()
	at := m.now()
	recs, err := l.ListProbes(ctx, store.HealthQuery{Since: at.Add(-seedAge * m.cfg.Interval)})
	if err != nil {
		return fmt.Errorf("seed health states: %w", err)
	}
	// The latest result of each node, per component, and whether the
	// node's own probes in the span show the trouble it records.
	type key struct{ component, node string }
	latest := map[key]*store.ProbeRecord{}
	failed := map[key]bool{}
	slow := map[key]bool{}
	for _, r := range recs { // oldest first
		k := key{r.Component, r.Node}
		latest[k] = r
		failed[k] = failed[k] || !r.OK
		slow[k] = slow[k] || !r.OK || r.Reason == SlowReason
	}
	views := map[string][]view{}
	for k, r := range latest {
		if State(r.State).severity() == 0 {
			continue // unknown, or not a state
		}
		probed := State(r.State) == Up || (State(r.State) == Down && failed[k]) || (State(r.State) == Degraded && slow[k])
		views[k.component] = append(views[k.component], view{r, probed})
	}
	for _, c := range want {
		c.mu.Lock()
		if v, ok := fleetView(views[c.name]); ok && c.lastProbe.IsZero() && c.m.probes.state == Unknown {
			seed := c.m.seed
			if !v.probed {
				seed = c.m.seedLogins
			}
			if t, ok := seed(at, v.r.Time, State(v.r.State)); ok {
				m.changed(c, t)
			}
		}
		c.seeded.Store(true)
		c.mu.Unlock()
	}
	return nil
}

// view is one node's latest probe result of a component, for Seed:
// probed is set if its state is what the node's own probes in the span
// found (a failed probe for Down; a failed or slow one for Degraded),
// not only its logins.
type view struct {
	r      *store.ProbeRecord
	probed bool
}

// fleetView returns, of the nodes' latest results vs, one in the state
// at least half of them found the component in or worse, or false for
// none. Of those in that state it returns the earliest the node's
// probes back, or, if the nodes' logins alone put it there, the latest.
func fleetView(vs []view) (view, bool) {
	if len(vs) == 0 {
		return view{}, false
	}
	slices.SortFunc(vs, func(a, b view) int {
		return cmp.Or(cmp.Compare(State(b.r.State).severity(), State(a.r.State).severity()), a.r.Time.Compare(b.r.Time))
	})
	// Worst first: the result at index (n-1)/2 has at least half of the
	// n results at its severity or worse.
	mid := vs[(len(vs)-1)/2].r.State
	var same []view
	for _, v := range vs {
		if v.r.State == mid {
			same = append(same, v)
		}
	}
	if i := slices.IndexFunc(same, func(v view) bool { return v.probed }); i >= 0 {
		return same[i], true
	}
	return same[len(same)-1], true
}

// Probed is closed once a round (Tick) has probed every component, its
// probes each within Config.ProbeTimeout; until then the probed
// components are Unknown unless seeded (Seed). A node reports ready
// only after it.
func (m *Monitor) Probed() <-chan struct{} { return m.probed }

// Run probes every component each Config.Interval, starting at once,
// until ctx ends; then it writes what is still pending and returns. Each
// round first seeds the components not yet seeded from the other
// nodes' probes (Seed). Old probe results are pruned once an hour.
func (m *Monitor) Run(ctx context.Context) error {
	ticker := time.NewTicker(m.cfg.Interval)
	defer ticker.Stop()
	for {
		if err := m.Tick(ctx); err != nil && ctx.Err() == nil {
			m.log.Warn("health round", "err", err)
		}
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			return m.write(fctx, time.Time{}, 5*time.Second, true)
		case <-ticker.C:
		}
	}
}

// Tick runs one round: it seeds the components not yet seeded (Seed),
// slides every component's login window to now, probes every component that has a prober (all at once, or
// Config.Concurrency at a time, each within Config.ProbeTimeout), prunes old probe results if an hour
// has passed, and flushes the records to the store. Rounds take turns.
// A round waits at most Config.Interval for the store: writes it no
// longer waits for go on in the background, and later rounds probe but
// write nothing until they end, so a store that hangs does not stop the
// probing or freeze the states logins are routed by.
// Results of probes cut short because ctx ended are not counted.
func (m *Monitor) Tick(ctx context.Context) error {
	m.tickMu.Lock()
	defer m.tickMu.Unlock()
	if err := m.Seed(ctx); err != nil && ctx.Err() == nil {
		m.log.Warn("health states not seeded from the other nodes' probes", "err", err)
	}
	list := m.comps.Load().list
	at := m.now()
	for _, c := range list {
		c.mu.Lock()
		if t, ok := c.m.refresh(at); ok {
			m.changed(c, t)
		}
		c.mu.Unlock()
	}

	sem := make(chan struct{}, cmp.Or(m.cfg.Concurrency, max(len(list), 1)))
	var wg sync.WaitGroup
start:
	for _, c := range list {
		if c.prober == nil {
			continue
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			break start
		}
		wg.Go(func() {
			defer func() { <-sem }()
			m.probe(ctx, c)
		})
	}
	wg.Wait()
	if ctx.Err() == nil {
		m.probedOnce.Do(func() { close(m.probed) })
	}
	return m.write(ctx, at, m.cfg.Interval, false)
}

// errWriting is a round's answer while an earlier round's writes still
// wait for the store.
var errWriting = errors.New("record health: the store has not finished an earlier write; records stay pending")

// write prunes (unless at is zero) and flushes in a goroutine, one write
// at a time, and waits for it at most wait or until ctx ends. With a
// write still running it returns errWriting, or with after it first
// waits for that write too (within the same bounds). The store may not
// stop a write it has begun when ctx ends (package sqlstore does not),
// so the write may outlast the wait.
func (m *Monitor) write(ctx context.Context, at time.Time, wait time.Duration, after bool) error {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	late := fmt.Errorf("record health: the store has not answered in %v; records stay pending", wait)
	m.writeMu.Lock()
	for m.inflight != nil {
		prev := m.inflight
		m.writeMu.Unlock()
		if !after {
			return errWriting
		}
		select {
		case <-prev:
		case <-timer.C:
			return late
		case <-ctx.Done():
			return ctx.Err()
		}
		m.writeMu.Lock()
	}
	done := make(chan struct{})
	m.inflight = done
	m.writeMu.Unlock()
	var err error
	go func() {
		if !at.IsZero() {
			m.prune(ctx, at)
		}
		err = m.Flush(ctx)
		m.writeMu.Lock()
		m.inflight = nil
		m.writeMu.Unlock()
		close(done)
	}()
	select {
	case <-done:
		return err
	case <-timer.C:
		return late
	case <-ctx.Done():
		return ctx.Err()
	}
}

// probe probes c once and takes the result. A round that finds the
// previous probe of c still running starts none: it counts as a timeout
// and is recorded with how long that probe has run, the time the
// component has gone without answering, and is no new sample of
// varde_probe_duration_seconds.
func (m *Monitor) probe(ctx context.Context, c *component) {
	pctx, cancel := context.WithTimeout(ctx, m.cfg.ProbeTimeout)
	defer cancel()
	start := m.now()
	hung, err := runProbe(pctx, c, start)
	d := max(m.now().Sub(start), 0)
	if ctx.Err() != nil {
		return // stopping: not the component's fault
	}
	kind, reason := probeOK, ""
	switch {
	case err != nil:
		kind, reason = probeFailed, FailureReason(err)
		if errors.Is(pctx.Err(), context.DeadlineExceeded) || hung != nil {
			reason = FailureTimeout
		}
		m.met.failures.WithLabelValues(c.name, reason).Inc()
		m.log.Debug("probe failed", "component", c.name, "reason", reason, "err", err)
	case d > m.cfg.SlowProbe:
		kind, reason = probeSlow, SlowReason
	}
	if hung != nil {
		d = max(start.Sub(*hung), 0)
	} else {
		m.met.duration.WithLabelValues(c.name).Observe(d.Seconds())
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lastProbe, c.lastFailure, c.lastErr = start, "", nil
	if kind == probeFailed {
		c.lastFailure, c.lastErr = reason, err
	}
	// The result counts from the probe's start, and a change it makes
	// happens now: a login may have changed the state since the start.
	end := m.now()
	if end.Before(start) {
		end = start
	}
	t, changed := c.m.probe(start, end, kind)
	if changed {
		m.changed(c, t) // publishes
	} else {
		c.publish()
	}
	m.pending([]*store.ProbeRecord{{Component: c.name, Node: m.node, Time: start, Duration: d,
		OK: kind != probeFailed, Reason: reason, State: string(c.m.cur.state)}}, nil)
}

// runProbe runs c's prober, started at start, within ctx's deadline
// even if the prober ignores it. A prober still running from an earlier
// round is not started again: runProbe fails at once and returns when
// that one started.
func runProbe(ctx context.Context, c *component, start time.Time) (hung *time.Time, err error) {
	if !c.running.CompareAndSwap(false, true) {
		since := start
		if p := c.runningSince.Load(); p != nil {
			since = *p
		}
		return &since, &ProbeError{FailureTimeout, fmt.Errorf("previous probe, started %s, still running", since.Format(time.RFC3339))}
	}
	c.runningSince.Store(&start)
	done := make(chan error, 1)
	go func() {
		err := safeProbe(ctx, c.prober)
		c.running.Store(false) // before the result, so the next round may start
		done <- err
	}()
	select {
	case err := <-done:
		return nil, err
	case <-ctx.Done():
		return nil, &ProbeError{FailureTimeout, ctx.Err()}
	}
}

// safeProbe runs p, turning a panic into a failure.
func safeProbe(ctx context.Context, p Prober) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &ProbeError{FailureOther, fmt.Errorf("probe panicked: %v", r)}
		}
	}()
	return p.Probe(ctx)
}

// changed publishes a transition of c; c.mu is held.
func (m *Monitor) changed(c *component, t Transition) {
	t.Component = c.name
	c.publish()
	m.met.setState(c.name, t.To)
	m.met.transitions.WithLabelValues(c.name, string(t.To)).Inc()
	level := slog.LevelInfo
	if t.To == Down || t.To == Degraded {
		level = slog.LevelWarn
	}
	attrs := []any{"component", c.name, "from", t.From, "to", t.To, "reason", t.Reason, "since", t.Since}
	if t.To == Down && c.lastErr != nil {
		// Why the last probe failed, so the log says what to look at.
		attrs = append(attrs, "failure", c.lastFailure, "err", c.lastErr.Error())
	}
	m.log.Log(context.Background(), level, "component state changed", attrs...)
	m.pending(nil, []*store.HealthTransition{{Component: c.name, Node: m.node, Time: t.At,
		From: string(t.From), To: string(t.To), Reason: t.Reason, Since: t.Since}})
	m.subMu.RLock()
	defer m.subMu.RUnlock()
	for _, s := range m.subs {
		s.fn(t)
	}
}

// publish makes c's current status visible to readers; c.mu is held.
func (c *component) publish() {
	c.status.Store(&Status{Component: c.name, State: c.m.cur.state, Since: c.m.cur.since, Reason: c.m.cur.reason,
		Probed: c.prober != nil, LastProbe: c.lastProbe, LastFailure: c.lastFailure})
}

// pending queues records for the next flush, dropping the oldest probe
// results (then the oldest transitions) beyond Config.MaxPending.
func (m *Monitor) pending(ps []*store.ProbeRecord, ts []*store.HealthTransition) {
	if m.rec == nil {
		return
	}
	m.pendMu.Lock()
	defer m.pendMu.Unlock()
	m.pendProbes = append(m.pendProbes, ps...)
	m.pendTrans = append(m.pendTrans, ts...)
	m.trimLocked()
}

// requeue puts records a flush could not write back in front of those
// queued since.
func (m *Monitor) requeue(ps []*store.ProbeRecord, ts []*store.HealthTransition) {
	m.pendMu.Lock()
	defer m.pendMu.Unlock()
	m.pendProbes = append(ps, m.pendProbes...)
	m.pendTrans = append(ts, m.pendTrans...)
	m.trimLocked()
}

// trimLocked keeps at most Config.MaxPending records, dropping the
// oldest probe results first and, when transitions alone are too many,
// the oldest transitions; a dropped transition leaves a gap in the
// history incidents are built from, so it is logged. pendMu is held.
func (m *Monitor) trimLocked() {
	over := len(m.pendProbes) + len(m.pendTrans) - m.cfg.MaxPending
	if over <= 0 {
		return
	}
	n := min(over, len(m.pendProbes))
	m.pendProbes = slices.Delete(m.pendProbes, 0, n)
	if nt := over - n; nt > 0 {
		first, last := m.pendTrans[0], m.pendTrans[nt-1]
		m.log.Error("health transitions dropped unwritten: the store has not taken them and more than max pending records wait",
			"count", nt, "max_pending", m.cfg.MaxPending, "first", first.Time, "first_component", first.Component, "last", last.Time)
		m.pendTrans = slices.Delete(m.pendTrans, 0, nt)
	}
	m.met.dropped.Add(float64(over))
}

// Flush writes the pending probe results and transitions to the store,
// in one batch each. What it cannot write stays pending for the next
// flush.
func (m *Monitor) Flush(ctx context.Context) error {
	if m.rec == nil {
		return nil
	}
	m.flushMu.Lock()
	defer m.flushMu.Unlock()
	m.pendMu.Lock()
	ps, ts := m.pendProbes, m.pendTrans
	m.pendProbes, m.pendTrans = nil, nil
	m.pendMu.Unlock()

	var errs []error
	if len(ts) > 0 {
		if err := m.rec.RecordHealthTransitions(ctx, ts); err != nil {
			errs = append(errs, err)
		} else {
			ts = nil
		}
	}
	if len(ps) > 0 {
		if err := m.rec.RecordProbes(ctx, ps); err != nil {
			errs = append(errs, err)
		} else {
			ps = nil
		}
	}
	if len(errs) == 0 {
		return nil
	}
	m.requeue(ps, ts)
	m.met.recordErrs.Inc()
	return fmt.Errorf("record health: %w", errors.Join(errs...))
}

// prune deletes probe results older than the retention, once per
// pruneEvery; it runs in write, one at a time.
func (m *Monitor) prune(ctx context.Context, at time.Time) {
	p, ok := m.rec.(pruner)
	if !ok || m.cfg.Retention < 0 || ctx.Err() != nil || (!m.lastPrune.IsZero() && at.Sub(m.lastPrune) < pruneEvery) {
		return
	}
	m.lastPrune = at
	n, err := p.DeleteProbesBefore(ctx, at.Add(-m.cfg.Retention))
	if err != nil {
		m.log.Warn("prune probe results", "err", err)
		return
	}
	if n > 0 {
		m.log.Info("pruned probe results", "count", n, "before", at.Add(-m.cfg.Retention))
	}
}
