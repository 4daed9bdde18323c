package status

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/varde-eid/varde/internal/health"
	"github.com/varde-eid/varde/internal/store"
)

// Author is the author of the timeline entries Varde writes itself.
const Author = "varde"

// Engine opens, follows and resolves incidents from the monitor's
// measurements (see the package documentation for the rules). Build it
// with NewEngine, feed it transitions with Observe (subscribe it to the
// monitor), and run it with Run or one step at a time with Evaluate.
type Engine struct {
	svc *Service

	mu sync.Mutex
	// evidence is, per component, when its current unhealthy run began
	// (the Since of the transition that left the healthy states), learnt
	// from transitions; missing after a restart, when the monitor's
	// Status.Since stands in.
	evidence map[string]time.Time
	// counted is when each open incident's people were last counted,
	// and tallies those counts, to carry on from.
	counted map[string]time.Time
	tallies map[string]*tally
	// nodes is this node's view of the other nodes ("node:<name>"): down
	// while silent, up otherwise, as last recorded; missing until read
	// back from the store.
	nodes map[string]health.Status
	// known holds the other nodes' components ("node:<name>") this engine
	// has met: on the page when it started (seeded), or probing since.
	known  map[string]bool
	seeded bool
}

// NewEngine returns an engine over svc.
func NewEngine(svc *Service) *Engine {
	return &Engine{svc: svc, evidence: map[string]time.Time{}, counted: map[string]time.Time{}, tallies: map[string]*tally{},
		nodes: map[string]health.Status{}, known: map[string]bool{}}
}

// Observe takes one health transition (health.Monitor.Subscribe). It only
// notes when the evidence of an unhealthy run began; it returns at once.
func (e *Engine) Observe(t health.Transition) {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case unhealthy(t.To) && !unhealthy(t.From):
		since := t.Since
		if since.IsZero() {
			since = t.At
		}
		e.evidence[t.Component] = since.UTC()
	case !unhealthy(t.To):
		delete(e.evidence, t.Component)
	}
}

func unhealthy(s health.State) bool { return s == health.Degraded || s == health.Down }

// Run evaluates every Config.Interval until ctx ends.
func (e *Engine) Run(ctx context.Context) error {
	t := time.NewTicker(e.svc.cfg().Interval)
	defer t.Stop()
	for {
		if err := e.Evaluate(ctx); err != nil && ctx.Err() == nil {
			e.svc.log().Warn("status: evaluate incidents", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Evaluate applies the incident rules once, at the service's now.
func (e *Engine) Evaluate(ctx context.Context) error {
	s := e.svc
	now := s.now()
	open, err := s.Store.ListIncidents(ctx, store.IncidentQuery{Open: true})
	if err != nil {
		return fmt.Errorf("list open incidents: %w", err)
	}
	maint, err := s.Store.ListMaintenance(ctx, now, now.Add(time.Nanosecond))
	if err != nil {
		return fmt.Errorf("list maintenance: %w", err)
	}
	byComp := map[string]*store.Incident{}
	ids := map[string]bool{}
	for _, in := range open {
		byComp[in.Component] = in
		ids[in.ID] = true
	}
	e.mu.Lock()
	maps.DeleteFunc(e.counted, func(id string, _ time.Time) bool { return !ids[id] }) // resolved by another node
	maps.DeleteFunc(e.tallies, func(id string, _ *tally) bool { return !ids[id] })
	e.mu.Unlock()
	deps, err := s.departures(ctx)
	if err != nil {
		return err
	}
	others, err := s.peers(ctx, now, deps)
	if err != nil {
		return err
	}
	comps, gone, err := e.withOtherNodes(ctx, s.Monitor.Snapshot(), others, deps, now)
	if err != nil {
		return err
	}
	var errs []error
	for _, st := range comps {
		in := byComp[st.Component]
		var err error
		switch {
		case in == nil && unhealthy(st.State) && !inMaintenance(announcedBy(maint, e.start(st)), st.Component, now):
			err = e.maybeOpen(ctx, st, now)
		case in != nil:
			if st, err = e.cluster(ctx, in, st, others); err == nil {
				err = e.follow(ctx, in, st, now)
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", st.Component, err))
		}
		delete(byComp, st.Component)
	}
	// What is left belongs to components this node does not monitor:
	// nodes that are gone, and, if no live node probes them either,
	// components that were removed.
	for comp, in := range byComp {
		reason, ok := gone[comp]
		switch {
		case ok:
		case others.probed(comp):
			continue
		default:
			reason = ReasonRemoved
		}
		if in.RecoveredAt.IsZero() {
			in.RecoveredAt = now // measured until now
		}
		if err := e.resolve(ctx, in, now, reason); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", comp, err))
		}
	}
	return errors.Join(errs...)
}

// withOtherNodes adds to snapshot this node's view of the other nodes
// the page shows: down while silent (no probe result for three probe
// intervals), up otherwise. A change of that view is recorded as a
// transition of this node's, so that reports count a silent node's down
// time as they count any component's. The nodes are those on the page
// when the engine started (read once, from the summary) and those that
// have probed since (others); which are silent comes from others. A
// node that is gone (Service.gone) is left out and forgotten, its view
// ending in unknown; gone says why, by component.
func (e *Engine) withOtherNodes(ctx context.Context, snapshot []health.Status, others peers, deps map[string]*store.NodeDeparture, now time.Time) (out []health.Status, gone map[string]string, err error) {
	e.mu.Lock()
	seeded := e.seeded
	e.mu.Unlock()
	if !seeded {
		sum, err := e.svc.Summary(ctx)
		if err != nil {
			return nil, nil, err
		}
		e.mu.Lock()
		for _, c := range sum.Components {
			if c.Kind == KindNode {
				e.known[c.ID] = true
			}
		}
		e.seeded = true
		e.mu.Unlock()
	}
	own := map[string]bool{}
	for _, st := range snapshot {
		own[st.Component] = true
	}
	e.mu.Lock()
	for k := range others.state {
		if strings.HasPrefix(k[1], NodePrefix) {
			e.known[k[1]] = true
		}
	}
	ids := slices.Sorted(maps.Keys(e.known))
	e.mu.Unlock()
	out, gone = slices.Clip(snapshot), map[string]string{}
	for _, id := range ids {
		if own[id] {
			continue
		}
		silent := !others.probed(id)
		why, err := e.svc.gone(ctx, id, silent, now, deps)
		if err != nil {
			return nil, nil, err
		}
		if why != "" {
			gone[id] = why
			if err := e.leave(ctx, id, why, now); err != nil {
				return nil, nil, err
			}
			continue
		}
		st, err := e.otherNode(ctx, id, silent, now)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, st)
	}
	return out, gone, nil
}

// leave ends this node's view of another node that is gone: a
// transition to unknown, for why, unless the view was unknown already,
// so that reports stop counting it down from now; and the engine no
// longer follows it (it is followed again if it comes back).
func (e *Engine) leave(ctx context.Context, id, why string, now time.Time) error {
	prev, err := e.lastView(ctx, id, health.Unknown)
	if err != nil {
		return err
	}
	if prev.State != health.Unknown {
		t := &store.HealthTransition{Component: id, Node: e.svc.Node, Time: now, From: string(prev.State), To: string(health.Unknown), Reason: why, Since: now}
		if err := e.svc.Store.RecordHealthTransitions(ctx, []*store.HealthTransition{t}); err != nil {
			return fmt.Errorf("record transition: %w", err)
		}
		e.svc.log().Info("node gone", "component", id, "from", prev.State, "reason", why)
	}
	e.mu.Lock()
	delete(e.known, id)
	delete(e.nodes, id)
	e.mu.Unlock()
	return nil
}

// lastView is this node's latest view of another node: remembered, else
// read back from its transitions; def if it has none.
func (e *Engine) lastView(ctx context.Context, id string, def health.State) (health.Status, error) {
	e.mu.Lock()
	prev, ok := e.nodes[id]
	e.mu.Unlock()
	if ok {
		return prev, nil
	}
	prev = health.Status{Component: id, State: def}
	ts, err := e.svc.Store.ListHealthTransitions(ctx, store.HealthQuery{Component: id, Node: e.svc.Node})
	if err != nil {
		return prev, fmt.Errorf("list transitions: %w", err)
	}
	if n := len(ts); n > 0 {
		prev.State, prev.Reason, prev.Since = health.State(ts[n-1].To), ts[n-1].Reason, ts[n-1].Since.UTC()
	}
	return prev, nil
}

// otherNode is this node's view of another node, recording a change.
func (e *Engine) otherNode(ctx context.Context, id string, silent bool, now time.Time) (health.Status, error) {
	s := e.svc
	prev, err := e.lastView(ctx, id, health.Up)
	if err != nil {
		return prev, err
	}
	cur := health.Status{Component: id, State: health.Up, Reason: health.ReasonProbesOK, Since: now}
	if silent {
		cur = health.Status{Component: id, State: health.Down, Reason: ReasonSilent, Since: now.Add(-s.silentAfter())}
	}
	if cur.State == prev.State {
		cur = prev
	} else {
		t := &store.HealthTransition{Component: id, Node: s.Node, Time: now, From: string(prev.State), To: string(cur.State), Reason: cur.Reason, Since: cur.Since}
		if err := s.Store.RecordHealthTransitions(ctx, []*store.HealthTransition{t}); err != nil {
			return prev, fmt.Errorf("record transition: %w", err)
		}
		s.log().Warn("node state changed", "component", id, "from", prev.State, "to", cur.State, "reason", cur.Reason)
	}
	e.mu.Lock()
	e.nodes[id] = cur
	e.mu.Unlock()
	return cur, nil
}

// ReasonSilent is the reason a node is down when it has recorded no probe
// result for three probe intervals.
const ReasonSilent = "silent"

// start is when component's current unhealthy run began.
func (e *Engine) start(st health.Status) time.Time {
	e.mu.Lock()
	since, ok := e.evidence[st.Component]
	e.mu.Unlock()
	if !ok || (!st.Since.IsZero() && st.Since.Before(since)) {
		since = st.Since.UTC()
	}
	return since
}

func (e *Engine) maybeOpen(ctx context.Context, st health.Status, now time.Time) error {
	s := e.svc
	start := e.start(st)
	if start.IsZero() || now.Sub(start) < s.cfg().OpenAfter {
		return nil
	}
	// What happened during announced maintenance is not an incident: a
	// run that began in a window counts from its end. Only a window
	// announced by the time the run began counts: one announced while
	// the component was already unhealthy does not excuse it.
	maint, err := s.Store.ListMaintenance(ctx, start, now)
	if err != nil {
		return fmt.Errorf("list maintenance: %w", err)
	}
	if start = afterMaintenance(announcedBy(maint, start), st.Component, start); now.Sub(start) < s.cfg().OpenAfter {
		return nil
	}
	id, err := s.newID()
	if err != nil {
		return err
	}
	in := &store.Incident{
		ID: id, Component: st.Component, Components: []string{st.Component},
		Severity: string(st.State), StartedAt: start, OpenedAt: now,
		Updates: []*store.IncidentUpdate{{Time: now, Kind: store.UpdateOpened, State: string(st.State), Reason: st.Reason, Author: Author}},
	}
	if err := s.Store.OpenIncident(ctx, in); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return nil // another node opened it first
		}
		return fmt.Errorf("open incident: %w", err)
	}
	s.log().Warn("incident opened", "incident", in.ID, "component", in.Component, "severity", in.Severity, "started", start)
	return e.recount(ctx, in, now)
}

// cluster is st, this node's view of in's component, made the view of
// the cluster: the worst state of this node's and of every other live
// node's latest, so that nodes that disagree follow the incident alike
// and it recovers only once no node measures the component unhealthy.
// When it is up, Since is when the last node recovered. Each other
// node's state is the one its latest probe result left the component in
// or, for components known from logins only, its latest transition
// since the incident started.
func (e *Engine) cluster(ctx context.Context, in *store.Incident, st health.Status, others peers) (health.Status, error) {
	if len(others.alive) == 0 {
		return st, nil
	}
	ts, err := e.svc.Store.ListHealthTransitions(ctx, store.HealthQuery{Component: in.Component, Since: in.StartedAt})
	if err != nil {
		return st, fmt.Errorf("list transitions: %w", err)
	}
	last := map[string]*store.HealthTransition{}
	for _, t := range ts {
		last[t.Node] = t
	}
	var changed time.Time
	for node := range others.alive {
		state, ok := others.state[[2]string{node, in.Component}]
		t := last[node]
		if t != nil && !ok {
			state = t.To
		}
		if t != nil {
			changed = later(changed, t.Time.UTC())
		}
		if rank(health.State(state)) > rank(st.State) {
			st.State, st.Reason = health.State(state), ""
			if t != nil && t.To == state {
				st.Reason = t.Reason
			}
		}
	}
	if st.State == health.Up && changed.After(st.Since) {
		st.Since = changed
	}
	return st, nil
}

// rank orders states for "the worst of": unknown (no evidence), up,
// degraded, down.
func rank(s health.State) int {
	switch s {
	case health.Up:
		return 1
	case health.Degraded:
		return 2
	case health.Down:
		return 3
	}
	return 0
}

// announcedBy is the windows of ms announced at or before t.
func announcedBy(ms []*store.Maintenance, t time.Time) []*store.Maintenance {
	return slices.DeleteFunc(slices.Clone(ms), func(m *store.Maintenance) bool { return m.CreatedAt.After(t) })
}

// afterMaintenance is t, or the end of the announced windows for
// component that cover it.
func afterMaintenance(ms []*store.Maintenance, component string, t time.Time) time.Time {
	for moved := true; moved; {
		moved = false
		for _, m := range ms {
			if inMaintenance([]*store.Maintenance{m}, component, t) {
				t, moved = m.End.UTC(), true
			}
		}
	}
	return t
}

// follow moves an open incident along: worse, recovered, relapsed,
// resolved, and recounts the people affected now and then.
func (e *Engine) follow(ctx context.Context, in *store.Incident, st health.Status, now time.Time) error {
	s := e.svc
	last := lastState(in)
	var note *store.IncidentUpdate
	changed := false
	switch {
	case unhealthy(st.State):
		if !in.RecoveredAt.IsZero() || string(st.State) != last {
			in.RecoveredAt = time.Time{}
			if st.State == health.Down {
				in.Severity = store.SeverityDown
			}
			note = &store.IncidentUpdate{Kind: store.UpdateState, State: string(st.State), Reason: st.Reason}
			changed = true
		}
	case st.State == health.Up:
		if in.RecoveredAt.IsZero() {
			rec := st.Since.UTC()
			if rec.IsZero() || rec.Before(in.StartedAt) {
				rec = now
			}
			in.RecoveredAt = rec
			note = &store.IncidentUpdate{Kind: store.UpdateRecovered, State: string(st.State), Reason: st.Reason}
			changed = true
		} else if now.Sub(in.RecoveredAt) >= s.cfg().ResolveAfter {
			return e.resolve(ctx, in, now, "")
		}
	}
	if changed {
		if err := s.Store.UpdateIncident(ctx, in); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return nil // another node moved it; next round sees its version
			}
			return fmt.Errorf("update incident: %w", err)
		}
		// The incident is stored as it now is, but the timeline gets
		// no entry that says what its last automatic one says already.
		if !repeats(in, note) {
			note.IncidentID, note.Time, note.Author = in.ID, now, Author
			if err := s.Store.AddIncidentUpdate(ctx, note); err != nil {
				return fmt.Errorf("add timeline entry: %w", err)
			}
			in.Updates = append(in.Updates, note)
		}
	}
	e.mu.Lock()
	due := now.Sub(e.counted[in.ID]) >= s.cfg().RecountEvery
	e.mu.Unlock()
	if due {
		return e.recount(ctx, in, now)
	}
	return nil
}

// repeats reports whether note says what the timeline's last automatic
// entry says.
func repeats(in *store.Incident, note *store.IncidentUpdate) bool {
	for _, u := range slices.Backward(in.Updates) {
		if u.Author == Author {
			return u.Kind == note.Kind && u.State == note.State
		}
	}
	return false
}

// lastState is the component state the timeline last recorded.
func lastState(in *store.Incident) string {
	for _, u := range slices.Backward(in.Updates) {
		if u.State != "" {
			return u.State
		}
	}
	return ""
}

// ReasonRemoved is the reason of the timeline entry that resolves an
// incident whose component no node monitors any more.
const ReasonRemoved = "component_removed"

// resolve resolves in at now, for reason ("" when the component stayed
// up).
func (e *Engine) resolve(ctx context.Context, in *store.Incident, now time.Time, reason string) error {
	s := e.svc
	in.ResolvedAt = now
	if err := e.count(ctx, in, now); err != nil {
		return err
	}
	if err := s.Store.UpdateIncident(ctx, in); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return nil
		}
		return fmt.Errorf("resolve incident: %w", err)
	}
	e.mu.Lock()
	delete(e.counted, in.ID)
	delete(e.tallies, in.ID)
	e.mu.Unlock()
	note := &store.IncidentUpdate{IncidentID: in.ID, Time: now, Kind: store.UpdateResolved, State: string(health.Up), Reason: reason, Author: Author}
	if reason == ReasonRemoved {
		note.State = ""
	}
	if err := s.Store.AddIncidentUpdate(ctx, note); err != nil {
		return fmt.Errorf("add timeline entry: %w", err)
	}
	s.log().Info("incident resolved", "incident", in.ID, "component", in.Component,
		"duration", in.RecoveredAt.Sub(in.StartedAt), "people_affected", in.PeopleAffected, "failed_attempts", in.FailedAttempts)
	return nil
}

// recount counts the people affected so far and stores the figures when
// they changed.
func (e *Engine) recount(ctx context.Context, in *store.Incident, now time.Time) error {
	counted := in.CountedAt
	if err := e.count(ctx, in, now); err != nil {
		return err
	}
	if !in.CountedAt.Equal(counted) {
		if err := e.svc.Store.UpdateIncident(ctx, in); err != nil && !errors.Is(err, store.ErrConflict) {
			return fmt.Errorf("update incident counts: %w", err)
		}
	}
	e.mu.Lock()
	e.counted[in.ID] = now
	e.mu.Unlock()
	return nil
}

// count sets in's people, failed and rerouted figures from the audit log
// over its window: from its start to its recovery, or to now, and moves
// its CountedAt to now only when they changed (or were never counted),
// so CountedAt says when the published figures last changed. It carries
// on from the incident's last count, reading only the events appended
// since (see tally), so a recount costs what was logged since the last,
// however long the incident has lasted.
func (e *Engine) count(ctx context.Context, in *store.Incident, now time.Time) error {
	end := in.RecoveredAt
	if end.IsZero() {
		end = now
	}
	comps := in.Components
	if len(comps) == 0 {
		comps = []string{in.Component}
	}
	e.mu.Lock()
	t := e.tallies[in.ID]
	delete(e.tallies, in.ID) // until it is brought up to date
	e.mu.Unlock()
	if t == nil || !slices.Equal(t.components, comps) || !t.from.Equal(in.StartedAt) {
		t = newTally(comps, in.StartedAt)
	}
	if err := e.svc.advance(ctx, t, end); err != nil {
		return err
	}
	e.mu.Lock()
	e.tallies[in.ID] = t
	e.mu.Unlock()
	a := t.result()
	if in.CountedAt.IsZero() || a.People != in.PeopleAffected || a.FailedAttempts != in.FailedAttempts || a.Rerouted != in.Rerouted {
		in.PeopleAffected, in.FailedAttempts, in.Rerouted, in.CountedAt = a.People, a.FailedAttempts, a.Rerouted, now
	}
	return nil
}
