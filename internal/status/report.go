package status

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/varde-eid/varde/internal/store"
)

// ErrBadPeriod is returned for a report period that is empty or reversed.
var ErrBadPeriod = errors.New("the report period must end after it starts")

// Reports kept in memory and computed at once (see Report).
const (
	reportsKept   = 16
	reportsAtOnce = 2
)

// reportKey names a report: the period asked for and its title.
type reportKey struct {
	from, to time.Time
	title    string
}

// Report returns the resilience report over [from, to) (to is capped at
// now, so a quarter in progress is reported to date, and the report's To
// says how far), for every component this node knows, every node that
// ran in the period and every component an incident it counts affected
// (one removed from the configuration since, too).
//
// Reports are public, so each is computed at most once per
// Config.CacheFor and shared, as Summary is: callers asking for the same
// period and title while it is computed wait for it, and later ones get
// it until it is CacheFor old. At most two reports are computed at once;
// a caller that would start a third gets ErrBusy. The value is shared:
// callers must not change it.
func (s *Service) Report(ctx context.Context, from, to time.Time, title string) (*Report, error) {
	from, to = from.UTC(), to.UTC()
	if !to.After(from) {
		return nil, ErrBadPeriod
	}
	now := s.now()
	b := memoBounds{keep: reportsKept, running: reportsAtOnce}
	return s.reports.get(ctx, reportKey{from, to, title}, now, b, func(ctx context.Context) (*Report, time.Time, error) {
		rep, err := s.report(ctx, from, to, title, now)
		return rep, now.Add(s.cfg().CacheFor), err
	})
}

// report computes the report over [from, to) at now.
func (s *Service) report(ctx context.Context, from, to time.Time, title string, now time.Time) (*Report, error) {
	end := earlier(to, now)
	loc := s.zone()
	rep := &Report{Version: 1, GeneratedAt: now, Title: title, TimeZone: loc.String(), From: from, To: end, Components: []ComponentReport{}, Incidents: []Incident{}, Maintenance: []Maintenance{}}
	if title == "" {
		rep.Title = from.In(loc).Format(time.DateOnly) + " – " + to.In(loc).Format(time.DateOnly)
	}
	since, err := s.dataFrom(ctx)
	if err != nil {
		return nil, err
	}
	rep.DataFrom = since
	if !end.After(from) {
		rep.To = to
		rep.Unmeasured = UnmeasuredNotStarted
		return rep, nil
	}
	// Availability is a share of the measured span only: time before
	// the first health record holds no recorded outage, for want of any
	// record, not for want of an outage.
	measuredFrom := later(from, since)
	switch {
	case since.IsZero():
		rep.Unmeasured = UnmeasuredNoRecords
		measuredFrom = end
	case !since.Before(end):
		rep.Unmeasured = UnmeasuredBeforeData
		measuredFrom = end
	default:
		rep.MeasuredFrom, rep.MeasuredTo = measuredFrom, end
	}
	maint, err := s.Store.ListMaintenance(ctx, from, end)
	if err != nil {
		return nil, fmt.Errorf("list maintenance: %w", err)
	}
	// The windows listed are those that count, as componentReport
	// counts them: not cancelled, and with some of their time after
	// their announcement in the period.
	for _, m := range maint {
		if m.CancelledAt.IsZero() && later(later(m.Start, m.CreatedAt.UTC()), from).Before(earlier(m.End, end)) {
			rep.Maintenance = append(rep.Maintenance, publishMaintenance(m, now))
		}
	}
	// Incidents resolved up to RCADeadline before the period have their
	// RCA due in it.
	incs, err := s.Store.ListIncidents(ctx, store.IncidentQuery{Since: from.Add(-RCADeadline), Until: end})
	if err != nil {
		return nil, fmt.Errorf("list incidents: %w", err)
	}
	slices.SortFunc(incs, func(a, b *store.Incident) int { return a.StartedAt.Compare(b.StartedAt) })
	// Every incident the report counts is listed: one resolved before
	// the period whose RCA fell due in it too, so that an RCA counted as
	// due (or late) can be read.
	for _, in := range incs {
		if in.ResolvedAt.IsZero() || !in.ResolvedAt.Before(from) || rcaDueIn(in, from, end, now) {
			rep.Incidents = append(rep.Incidents, s.publish(in, now))
		}
	}
	buckets, err := s.dailyProbes(ctx, now)
	if err != nil {
		return nil, err
	}
	comps, err := s.components(ctx, now, nil, buckets)
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(comps))
	for _, c := range comps {
		ids = append(ids, c.ID)
	}
	ids = append(ids, goneNodes(ids, buckets, rep.Incidents, dayStart(from, loc), end)...)
	// A component removed from the configuration keeps its incidents,
	// and the RCAs due for them, in the reports of when they happened.
	var removed []string
	for _, in := range rep.Incidents {
		for _, c := range in.Components {
			if !slices.Contains(ids, c) && !slices.Contains(removed, c) {
				removed = append(removed, c)
			}
		}
	}
	slices.Sort(removed)
	ids = append(ids, removed...)
	total := ComponentReport{Component: "all"}
	for _, id := range ids {
		cr, _, _, err := s.componentReport(ctx, id, from, measuredFrom, end, now, maint, incs)
		if err != nil {
			return nil, err
		}
		rep.Components = append(rep.Components, cr)
		if a := cr.AvailabilityPercent; a != nil && (total.AvailabilityPercent == nil || *a < *total.AvailabilityPercent) {
			total.AvailabilityPercent = a
		}
		total.DowntimeMinutes += cr.DowntimeMinutes
		total.DegradedMinutes += cr.DegradedMinutes
		total.MaintenanceMinutes += cr.MaintenanceMinutes
	}
	// An incident that affected several components counts once in the
	// total, not once for each of them.
	totalRecovery, totalRecovered := countIncidents(&total, incs, ids, from, end, now)
	finishReport(&total, totalRecovery, totalRecovered)
	rep.Total = total
	return rep, nil
}

// goneNodes are the nodes not among ids that recorded probe results on
// the days of [day, end) (day the start of the day that holds the
// period's start) or had an incident in it: a node that is gone now
// still counts in a report of when it ran, by name.
func goneNodes(ids []string, buckets []*store.ProbeBucket, incs []Incident, day, end time.Time) []string {
	var out []string
	add := func(id string) {
		if strings.HasPrefix(id, NodePrefix) && !slices.Contains(ids, id) && !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	for _, b := range buckets {
		if !b.Start.Before(day) && b.Start.Before(end) {
			add(b.Component)
		}
	}
	for _, in := range incs {
		add(in.Component)
	}
	slices.Sort(out)
	return out
}

// componentReport computes one component's figures over [from, end),
// its availability over the measured span [measuredFrom, end) (none if
// that is empty).
func (s *Service) componentReport(ctx context.Context, id string, from, measuredFrom, end, now time.Time, maint []*store.Maintenance, incs []*store.Incident) (cr ComponentReport, recovery time.Duration, recovered int, err error) {
	cr.Component = id
	// A window counts from when it was announced, and excuses only the
	// down and degraded time that began after that: announcing one over
	// an outage already measured changes nothing.
	var windows []window
	for _, m := range maint {
		if m.CancelledAt.IsZero() && slices.Contains(m.Components, id) {
			sp := span{later(later(m.Start, m.CreatedAt.UTC()), from), earlier(m.End, end)}
			windows = append(windows, window{sp, m.CreatedAt.UTC()})
		}
	}
	maintTime := total(merge(spansOf(windows, time.Time{})))
	down, degraded, err := s.badTime(ctx, id, from, end, now)
	if err != nil {
		return cr, 0, 0, err
	}
	downTime := total(down) - excused(down, windows)
	cr.DowntimeMinutes = minutes(downTime)
	cr.DegradedMinutes = minutes(total(degraded) - excused(degraded, windows))
	cr.MaintenanceMinutes = minutes(maintTime)
	// A component first measured later than the store's first record
	// (one configured later, or seen by this node only since it
	// started) is measured from its own first record.
	if measuredFrom.Before(end) {
		q := store.HealthQuery{Component: id, Node: s.Node}
		if strings.HasPrefix(id, NodePrefix) {
			q.Node = ""
		}
		first, err := s.firstRecord(ctx, q)
		if err != nil {
			return cr, 0, 0, err
		}
		if first.IsZero() {
			first = end
		}
		measuredFrom = later(measuredFrom, first)
	}
	if measuredFrom.Before(end) {
		cr.MeasuredFrom = measuredFrom
		// The time left out is the windows' time not counted as down: a
		// window announced after an outage in it began excuses none of
		// that outage, which stays within the measured span, so the
		// availability is never below 0 or above 100 %.
		m := []span{{measuredFrom, end}}
		all := merge(spansOf(windows, time.Time{}))
		bad := unexcused(clip(down, measuredFrom, end), windows)
		a := 100.0
		if period := end.Sub(measuredFrom) - overlap(m, all) + overlap(bad, all); period > 0 {
			a = roundTo(100*(1-float64(total(bad))/float64(period)), 3)
		}
		a = min(max(a, 0), 100)
		cr.AvailabilityPercent = &a
	}
	recovery, recovered = countIncidents(&cr, incs, []string{id}, from, end, now)
	finishReport(&cr, recovery, recovered)
	return cr, recovery, recovered, nil
}

// countIncidents adds to cr the incidents of incs that affected any of
// ids: each once, however many of ids it affected. Those begun in
// [from, end) count as incidents, with their people and failed
// attempts, and the time to recovery of those recovered; those whose
// RCA fell due in [from, end) by now count as RCAs due.
func countIncidents(cr *ComponentReport, incs []*store.Incident, ids []string, from, end, now time.Time) (recovery time.Duration, recovered int) {
	for _, in := range incs {
		if !slices.ContainsFunc(ids, func(id string) bool { return slices.Contains(in.Components, id) || in.Component == id }) {
			continue
		}
		if !in.StartedAt.Before(from) && in.StartedAt.Before(end) {
			cr.Incidents++
			cr.PeopleAffected += in.PeopleAffected
			cr.FailedAttempts += in.FailedAttempts
			if !in.RecoveredAt.IsZero() {
				recovery += in.RecoveredAt.Sub(in.StartedAt)
				recovered++
			}
		}
		if !rcaDueIn(in, from, end, now) {
			continue
		}
		due := in.ResolvedAt.Add(RCADeadline)
		cr.RCAsDue++
		if !in.RCAPublishedAt.IsZero() && !in.RCAPublishedAt.After(due) {
			cr.RCAsOnTime++
		}
	}
	return recovery, recovered
}

// rcaDueIn says whether the incident's RCA fell due in [from, end), by
// now.
func rcaDueIn(in *store.Incident, from, end, now time.Time) bool {
	if in.ResolvedAt.IsZero() {
		return false
	}
	due := in.ResolvedAt.Add(RCADeadline)
	return !due.Before(from) && due.Before(end) && !now.Before(due)
}

func finishReport(cr *ComponentReport, recovery time.Duration, recovered int) {
	if recovered > 0 {
		m := roundTo(minutes(recovery/time.Duration(recovered)), 2)
		cr.MTTRMinutes = &m
	}
	if cr.RCAsDue > 0 {
		p := roundTo(100*float64(cr.RCAsOnTime)/float64(cr.RCAsDue), 1)
		cr.RCAOnTimePercent = &p
	}
	cr.DowntimeMinutes = roundTo(cr.DowntimeMinutes, 2)
	cr.DegradedMinutes = roundTo(cr.DegradedMinutes, 2)
	cr.MaintenanceMinutes = roundTo(cr.MaintenanceMinutes, 2)
}

// badTime returns the spans of [from, end) in which this node measured
// the component down, and those it measured it degraded, from the
// recorded transitions. A node is also down while any other node found
// it silent: a node cannot record its own death.
//
// Reading the transitions before from (they say the state at from)
// costs the more the longer the store has run, so what they give up to
// the zone's last midnight at least settleAfter ago (the zone's, as for
// the uptime bars) is computed once and kept (see settledSpans); only
// the time since is read again.
func (s *Service) badTime(ctx context.Context, id string, from, end, now time.Time) (down, degraded []span, err error) {
	cut := earlier(end, later(from, dayStart(now.Add(-settleAfter), s.zone())))
	var pre map[string]nodeSpans
	since := time.Time{}
	if cut.After(from) {
		key := spanKey{id, from, cut}
		pre, err = s.settled.get(ctx, key, now, memoBounds{keep: settledKept}, func(ctx context.Context) (map[string]nodeSpans, time.Time, error) {
			m, err := s.transitionSpans(ctx, id, nil, time.Time{}, from, cut)
			return m, now.Add(settledFor), err
		})
		if err != nil {
			return nil, nil, err
		}
		since = cut
	}
	byNode := pre
	if end.After(cut) {
		if byNode, err = s.transitionSpans(ctx, id, pre, since, cut, end); err != nil {
			return nil, nil, err
		}
	}
	for node, p := range byNode {
		down = append(down, p.down...)
		if node == s.Node {
			degraded = p.degraded
		}
	}
	return merge(down), degraded, nil
}

// Settled transition spans kept in memory, and for how long.
const (
	settledKept = 256
	// settledFor is a day: transitions recorded later than settleAfter
	// (a node cut off from the store for longer) count within a day.
	settledFor = 24 * time.Hour
)

// spanKey names the settled spans of a component over [from, cut).
type spanKey struct {
	component string
	from, cut time.Time
}

// nodeSpans is what one node's transitions say of a component over a
// stretch of time: when they left it down, when degraded, and the state
// they left it in at the end.
type nodeSpans struct {
	down, degraded []span
	state          string
}

// transitionSpans reads the component's transitions (this node's, or
// every node's for a node) recorded at or after since (from the first
// if since is zero) and before end, and turns them into each node's
// spans of [from, end), carrying on from start: each node's spans and
// state at since. The maps and spans of start are not changed.
func (s *Service) transitionSpans(ctx context.Context, id string, start map[string]nodeSpans, since, from, end time.Time) (map[string]nodeSpans, error) {
	q := store.HealthQuery{Component: id, Node: s.Node, Since: since, Until: end}
	if strings.HasPrefix(id, NodePrefix) {
		q.Node = ""
	}
	ts, err := s.Store.ListHealthTransitions(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("list transitions: %w", err)
	}
	byNode := map[string][]*store.HealthTransition{}
	for node := range start {
		byNode[node] = nil
	}
	for _, t := range ts {
		byNode[t.Node] = append(byNode[t.Node], t)
	}
	out := make(map[string]nodeSpans, len(byNode))
	for node, ts := range byNode {
		p := start[node]
		dn, dg, state := spans(cmp.Or(p.state, store.HealthUnknown), ts, from, end)
		out[node] = nodeSpans{down: join(p.down, dn), degraded: join(p.degraded, dg), state: state}
	}
	return out, nil
}

// join is a followed by b, in a new slice: a span of a that ends where
// the first of b begins is one span with it, as if never cut in two.
func join(a, b []span) []span {
	out := slices.Concat(a, b)
	if n := len(a); n > 0 && len(b) > 0 && a[n-1].to.Equal(b[0].from) {
		out[n-1].to = b[0].to
		out = slices.Delete(out, n, n+1)
	}
	return out
}

// spans returns the spans of [from, end) in which one node's transitions
// ts (oldest first), from state at the first of them, left the
// component down, and degraded, and the state they left it in.
func spans(state string, ts []*store.HealthTransition, from, end time.Time) (down, degraded []span, last string) {
	since := from
	flush := func(until time.Time) {
		if !until.After(since) {
			return
		}
		switch state {
		case store.HealthDown:
			down = append(down, span{since, until})
		case store.HealthDegraded:
			degraded = append(degraded, span{since, until})
		}
	}
	for _, t := range ts {
		at := t.Time.UTC()
		if at.Before(from) {
			state = t.To
			continue
		}
		flush(at)
		state, since = t.To, at
	}
	flush(end)
	return down, degraded, state
}

// span is [from, to).
type span struct{ from, to time.Time }

func merge(ss []span) []span {
	ss = slices.DeleteFunc(ss, func(s span) bool { return !s.to.After(s.from) })
	slices.SortFunc(ss, func(a, b span) int { return a.from.Compare(b.from) })
	var out []span
	for _, s := range ss {
		if n := len(out); n > 0 && !s.from.After(out[n-1].to) {
			out[n-1].to = later(out[n-1].to, s.to)
			continue
		}
		out = append(out, s)
	}
	return out
}

// clip is the parts of ss within [from, to).
func clip(ss []span, from, to time.Time) []span {
	var out []span
	for _, x := range ss {
		if lo, hi := later(x.from, from), earlier(x.to, to); hi.After(lo) {
			out = append(out, span{lo, hi})
		}
	}
	return out
}

func total(ss []span) time.Duration {
	var d time.Duration
	for _, s := range ss {
		d += s.to.Sub(s.from)
	}
	return d
}

// window is an announced maintenance window's span and when it was
// announced.
type window struct {
	span
	announced time.Time
}

// spansOf is the spans of the windows announced at or before t (all of
// them if t is zero).
func spansOf(ws []window, t time.Time) []span {
	var out []span
	for _, w := range ws {
		if t.IsZero() || !w.announced.After(t) {
			out = append(out, w.span)
		}
	}
	return out
}

// excused is how much of bad lies within the windows that were announced
// by the time each of its spans began.
func excused(bad []span, ws []window) time.Duration {
	var d time.Duration
	for _, x := range bad {
		d += overlap([]span{x}, merge(spansOf(ws, x.from)))
	}
	return d
}

// unexcused is the parts of bad (merged) outside the windows that were
// announced by the time each of its spans began.
func unexcused(bad []span, ws []window) []span {
	var out []span
	for _, x := range bad {
		rest := []span{x}
		for _, y := range merge(spansOf(ws, x.from)) {
			var next []span
			for _, r := range rest {
				next = append(next, clip([]span{r}, r.from, earlier(r.to, y.from))...)
				next = append(next, clip([]span{r}, later(r.from, y.to), r.to)...)
			}
			rest = next
		}
		out = append(out, rest...)
	}
	return out
}

// overlap is how much of a lies within b (b merged).
func overlap(a, b []span) time.Duration {
	var d time.Duration
	for _, x := range a {
		for _, y := range b {
			if lo, hi := later(x.from, y.from), earlier(x.to, y.to); hi.After(lo) {
				d += hi.Sub(lo)
			}
		}
	}
	return d
}

func minutes(d time.Duration) float64 { return d.Minutes() }

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// dataFrom is the time of the oldest health record in the store, a
// probe result or a state change; zero when there is none. Probe
// results are pruned by age, state changes are kept.
func (s *Service) dataFrom(ctx context.Context) (time.Time, error) {
	return s.firstRecord(ctx, store.HealthQuery{})
}

// firstRecord is the time of the oldest health record q selects, a
// probe result or a state change; zero when there is none.
func (s *Service) firstRecord(ctx context.Context, q store.HealthQuery) (time.Time, error) {
	q.Limit = 1
	var first time.Time
	ts, err := s.Store.ListHealthTransitions(ctx, q)
	if err != nil {
		return time.Time{}, fmt.Errorf("list health transitions: %w", err)
	}
	if len(ts) > 0 {
		first = ts[0].Time.UTC()
	}
	ps, err := s.Store.ListProbes(ctx, q)
	if err != nil {
		return time.Time{}, fmt.Errorf("list probes: %w", err)
	}
	if len(ps) > 0 && (first.IsZero() || ps[0].Time.Before(first)) {
		first = ps[0].Time.UTC()
	}
	return first, nil
}
