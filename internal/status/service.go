package status

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/varde-eid/varde/internal/health"
	"github.com/varde-eid/varde/internal/store"
)

// RCADeadline is how long after an incident's resolution its root-cause
// analysis is due.
const RCADeadline = 72 * time.Hour

// HistoryDays is how many days of history the page shows.
const HistoryDays = 90

// recentWindow is how far back the page lists past incidents.
const recentWindow = HistoryDays * 24 * time.Hour

// NodePrefix starts the component name of a node.
const NodePrefix = "node:"

// Store is what the status package reads and writes.
type Store interface {
	store.Incidents
	store.Maintenances
	ListProbes(ctx context.Context, q store.HealthQuery) ([]*store.ProbeRecord, error)
	SummarizeProbes(ctx context.Context, q store.HealthQuery, width time.Duration) ([]*store.ProbeBucket, error)
	ListHealthTransitions(ctx context.Context, q store.HealthQuery) ([]*store.HealthTransition, error)
	// RecordHealthTransitions records this node's view of other nodes
	// (the engine finds them silent, and back).
	RecordHealthTransitions(ctx context.Context, ts []*store.HealthTransition) error
	ListAuditRange(ctx context.Context, q store.AuditQuery) ([]*store.AuditEvent, error)
	store.Nodes
}

// Monitor is this node's view of component health.
type Monitor interface {
	Snapshot() []health.Status
	Config() health.Config
}

// Info describes a component for people.
type Info struct {
	ID   string
	Kind string
	// Name by language tag; "en" is the fallback.
	Name map[string]string
}

// Config holds the incident rules. Zero fields take their defaults.
type Config struct {
	// OpenAfter is how long a component must be degraded or down before
	// an incident opens. Default 1m.
	OpenAfter time.Duration
	// ResolveAfter is how long it must then be up again before the
	// incident resolves. Default 5m.
	ResolveAfter time.Duration
	// Interval is how often the engine evaluates. Default 5s.
	Interval time.Duration
	// RecountEvery is how often people affected are recounted while an
	// incident is open. Default 30s.
	RecountEvery time.Duration
	// CountGrace is how long after an incident's window events still
	// tell whether an affected attempt got through (a person who was
	// rerouted finishes a little later). Default 15m.
	CountGrace time.Duration
	// CacheFor is how long a computed Summary is served again: the page
	// and its API show a change at most this long after it was
	// measured. Default 10s (the API's max-age).
	CacheFor time.Duration
	// NodeGoneAfter is how long another node may record nothing before
	// it counts as gone rather than down: it leaves the page and its
	// incident resolves. Default 24h.
	NodeGoneAfter time.Duration
}

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.OpenAfter, time.Minute)
	def(&c.ResolveAfter, 5*time.Minute)
	def(&c.Interval, 5*time.Second)
	def(&c.RecountEvery, 30*time.Second)
	def(&c.CountGrace, 15*time.Minute)
	def(&c.CacheFor, 10*time.Second)
	def(&c.NodeGoneAfter, 24*time.Hour)
	return c
}

// Service answers what the status page, its API and feed, the export and
// the reports show, and runs the incident rules (Engine).
type Service struct {
	Store   Store
	Monitor Monitor
	// Node is this node's name.
	Node string
	// Components describes the components by ID; unknown ones are shown
	// by ID.
	Components []Info
	Config     Config
	// Zone is the zone whose days the uptime bars and the node list
	// count, from midnight to midnight there (config pages.time_zone,
	// ADR 39); nil means UTC.
	Zone *time.Location
	Now  func() time.Time
	Rand io.Reader
	Log  *slog.Logger

	// summary is the Summary last computed and reports the reports,
	// each shared for Config.CacheFor; days the probe counts of settled
	// days and settled the transition spans of settled time.
	summary memo[struct{}, *Summary]
	reports memo[reportKey, *Report]
	// incidents are the incidents Incident looked up, nil for an ID
	// with none, each kept for Config.CacheFor.
	incidents memo[string, *Incident]
	days      dayCounts
	settled   memo[spanKey, map[string]nodeSpans]
}

func (s *Service) now() time.Time {
	if s.Now == nil {
		return time.Now().UTC()
	}
	return s.Now().UTC()
}

func (s *Service) cfg() Config { return s.Config.WithDefaults() }

func (s *Service) log() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log
}

func (s *Service) newID() (string, error) {
	r := s.Rand
	if r == nil {
		r = rand.Reader
	}
	var b [8]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

// PublicState maps a measured health state to a public one.
func PublicState(h health.State) State {
	switch h {
	case health.Up:
		return Operational
	case health.Degraded:
		return Degraded
	case health.Down:
		return Down
	}
	return Unknown
}

// overallOf is what component comps[i] adds to the overall state: its
// own state, except that one down while another of its kind works is
// degraded overall. A node down while another node is operational:
// logins go on through the nodes that serve. A way to log in (a
// provider) down while another is operational or degraded: people log
// in another way, and the page names the ones that are down. The
// component's own row still reads down; the store down, or every way to
// log in, leaves nobody able to log in, and the overall state down.
func overallOf(comps []Component, i int) State {
	st := comps[i].State
	if st.severity() <= Degraded.severity() {
		return st
	}
	for _, c := range comps {
		switch {
		case c.Kind != comps[i].Kind:
		case c.Kind == KindNode && c.State == Operational,
			c.Kind == KindProvider && (c.State == Operational || c.State == Degraded):
			return Degraded
		}
	}
	return st
}

// severity orders public states for "the worst of".
func (st State) severity() int {
	switch st {
	case Operational:
		return 1
	case InMaintenance:
		return 2
	case Degraded:
		return 3
	case Down:
		return 4
	}
	return 0
}

func (s *Service) info(id string) Info {
	for _, in := range s.Components {
		if in.ID == id {
			return in
		}
	}
	in := Info{ID: id, Name: map[string]string{"en": id}}
	switch {
	case strings.HasPrefix(id, NodePrefix):
		in.Kind = KindNode
		name := strings.TrimPrefix(id, NodePrefix)
		in.Name = map[string]string{"en": "Varde node " + name, "nb": "Varde-node " + name, "da": "Varde-node " + name}
	case id == "store":
		in.Kind = KindStore
	default:
		in.Kind = KindProvider
	}
	return in
}

// Title is an incident's title by language, from the component's name
// and the severity, in the past tense once the component works again
// (over), so that a page or feed read later does not say it is down.
func (s *Service) title(component, severity string, over bool) map[string]string {
	name := s.info(component).Name
	get := func(lang string) string {
		if n := name[lang]; n != "" {
			return n
		}
		if n := name["en"]; n != "" {
			return n
		}
		return component
	}
	switch {
	case severity == store.SeverityDown && over:
		return map[string]string{"en": get("en") + " was down", "nb": get("nb") + " var nede", "da": get("da") + " var nede"}
	case severity == store.SeverityDown:
		return map[string]string{"en": get("en") + " is down", "nb": get("nb") + " er nede", "da": get("da") + " er nede"}
	case over:
		return map[string]string{"en": get("en") + " was degraded", "nb": get("nb") + " fungerte dårlig", "da": get("da") + " fungerede dårligt"}
	}
	return map[string]string{"en": get("en") + " is degraded", "nb": get("nb") + " fungerer dårlig", "da": get("da") + " fungerer dårligt"}
}

// Summary returns everything the status page shows, as this node sees it
// now, or as it saw it at most Config.CacheFor ago: every page view and
// API call shares that value, and concurrent callers share one
// computation. The value is shared: callers must not change it.
func (s *Service) Summary(ctx context.Context) (*Summary, error) {
	now := s.now()
	return s.summary.get(ctx, struct{}{}, now, memoBounds{}, func(ctx context.Context) (*Summary, time.Time, error) {
		sum, err := s.summarize(ctx)
		return sum, now.Add(s.cfg().CacheFor), err
	})
}

// summarize computes the Summary at now.
func (s *Service) summarize(ctx context.Context) (*Summary, error) {
	now := s.now()
	sum := &Summary{Version: 1, GeneratedAt: now, Node: s.Node, Overall: Operational, TimeZone: s.zone().String()}
	since, err := s.dataFrom(ctx)
	if err != nil {
		return nil, err
	}
	sum.DataFrom = since
	maint, err := s.Store.ListMaintenance(ctx, now.Add(-recentWindow), time.Time{})
	if err != nil {
		return nil, fmt.Errorf("list maintenance: %w", err)
	}
	buckets, err := s.dailyProbes(ctx, now)
	if err != nil {
		return nil, err
	}
	comps, err := s.components(ctx, now, maint, buckets)
	if err != nil {
		return nil, err
	}
	incs, err := s.Store.ListIncidents(ctx, store.IncidentQuery{Since: now.Add(-recentWindow)})
	if err != nil {
		return nil, fmt.Errorf("list incidents: %w", err)
	}
	owed, err := s.owedBeforeWindow(ctx, now, incs)
	if err != nil {
		return nil, err
	}
	// Incidents resolved before the window have left the page; the
	// last to leave did so HistoryDays after its resolution.
	last, err := s.Store.LastResolvedBy(ctx, now.Add(-recentWindow))
	if err != nil {
		return nil, err
	}
	if !last.IsZero() {
		sum.AgedOut = last.Add(recentWindow)
	}
	// So have the windows that ended before it.
	old, err := s.Store.ListMaintenance(ctx, time.Time{}, now.Add(-recentWindow))
	if err != nil {
		return nil, fmt.Errorf("list maintenance: %w", err)
	}
	for _, m := range old {
		if left := m.End.Add(recentWindow); !m.End.IsZero() && !left.After(now) && left.After(sum.AgedOut) {
			sum.AgedOut = left
		}
	}
	hist := s.history(now, comps, incs, buckets)
	for i := range comps {
		for _, h := range hist {
			if h.Component == comps[i].ID {
				comps[i].Uptime90 = h.Percent
			}
		}
		if st := overallOf(comps, i); st.severity() > sum.Overall.severity() {
			sum.Overall = st
		}
	}
	sum.Components, sum.History = comps, hist
	sum.Open, sum.Recent = []Incident{}, []Incident{}
	for _, in := range slices.Concat(incs, owed) {
		pub := s.publish(in, now)
		if in.ResolvedAt.IsZero() {
			sum.Open = append(sum.Open, pub)
		} else {
			sum.Recent = append(sum.Recent, pub)
		}
	}
	sum.Maintenance, sum.RecentMaintenance, sum.CancelledMaintenance = []Maintenance{}, []Maintenance{}, []Maintenance{}
	for _, m := range maint {
		pm := publishMaintenance(m, now)
		switch pm.Status {
		case "scheduled", "in_progress":
			sum.Maintenance = append(sum.Maintenance, pm)
		case "completed":
			sum.RecentMaintenance = append(sum.RecentMaintenance, pm)
		case "cancelled":
			sum.CancelledMaintenance = append(sum.CancelledMaintenance, pm)
		}
	}
	slices.SortStableFunc(sum.RecentMaintenance, func(a, b Maintenance) int { return b.End.Compare(a.End) })
	slices.SortStableFunc(sum.CancelledMaintenance, func(a, b Maintenance) int { return b.CancelledAt.Compare(a.CancelledAt) })
	return sum, nil
}

// MaxOwedKept bounds the incidents resolved before the page's 90 days
// that stay on it because their root-cause analysis is still owed: the
// newest MaxOwedKept of them. Each is overdue, so the page, the API and
// varde_status_rcas_overdue show at least this many until operators
// publish some, and then the older ones come back in turn.
const MaxOwedKept = 100

// owedBeforeWindow returns the incidents resolved before the page's 90
// days whose root-cause analysis is not published (at most MaxOwedKept,
// newest first), leaving out those already in recent: a report owed
// stays on the page until it is published.
func (s *Service) owedBeforeWindow(ctx context.Context, now time.Time, recent []*store.Incident) ([]*store.Incident, error) {
	owed, err := s.Store.ListIncidents(ctx, store.IncidentQuery{RCAOwed: true, Limit: MaxOwedKept + len(recent)})
	if err != nil {
		return nil, fmt.Errorf("list incidents owing an RCA: %w", err)
	}
	owed = slices.DeleteFunc(owed, func(in *store.Incident) bool { return !in.ResolvedAt.Before(now.Add(-recentWindow)) })
	return owed[:min(len(owed), MaxOwedKept)], nil
}

// components lists every component with its public state: the monitor's
// (node, store, providers) and the other nodes seen in the store.
func (s *Service) components(ctx context.Context, now time.Time, maint []*store.Maintenance, buckets []*store.ProbeBucket) ([]Component, error) {
	var out []Component
	seen := map[string]bool{}
	for _, st := range s.Monitor.Snapshot() {
		in := s.info(st.Component)
		c := Component{ID: st.Component, Name: in.Name, Kind: in.Kind, State: PublicState(st.State), Reason: st.Reason}
		if !st.Since.IsZero() {
			since := st.Since.UTC()
			c.Since = &since
		}
		out = append(out, c)
		seen[st.Component] = true
	}
	others, err := s.otherNodes(ctx, now, seen, buckets)
	if err != nil {
		return nil, err
	}
	out = append(out, others...)
	for i := range out {
		if inMaintenance(maint, out[i].ID, now) && out[i].State.severity() < Degraded.severity() {
			out[i].State = InMaintenance
		}
	}
	slices.SortStableFunc(out, func(a, b Component) int {
		return cmp.Or(cmp.Compare(kindOrder(a.Kind), kindOrder(b.Kind)), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

func kindOrder(k string) int {
	switch k {
	case KindProvider:
		return 0
	case KindNode:
		return 1
	}
	return 2
}

// silentAfter is how long a node may record no probe result before it
// counts as gone: three probe intervals.
func (s *Service) silentAfter() time.Duration { return 3 * s.Monitor.Config().Interval }

// peers is what the other nodes recorded lately.
type peers struct {
	// alive holds the nodes that recorded a probe result within
	// silentAfter.
	alive map[string]bool
	// state is, by node and component, the state its latest probe
	// result left the component in.
	state map[[2]string]string
}

// probed reports whether a live node probes component.
func (p peers) probed(component string) bool {
	for k := range p.state {
		if k[1] == component {
			return true
		}
	}
	return false
}

// peers reads what the other nodes recorded lately, leaving out those
// that left after their latest record (deps).
func (s *Service) peers(ctx context.Context, now time.Time, deps map[string]*store.NodeDeparture) (peers, error) {
	ps, err := s.Store.ListProbes(ctx, store.HealthQuery{Since: now.Add(-s.silentAfter())})
	if err != nil {
		return peers{}, fmt.Errorf("list probes: %w", err)
	}
	p := peers{alive: map[string]bool{}, state: map[[2]string]string{}}
	last := map[string]time.Time{}
	for _, r := range ps {
		if r.Node != s.Node {
			p.alive[r.Node] = true
			p.state[[2]string{r.Node, r.Component}] = r.State
			last[r.Node] = later(last[r.Node], r.Time)
		}
	}
	for node, at := range last {
		if d := deps[node]; d != nil && at.Before(d.LeftAt) {
			delete(p.alive, node)
			maps.DeleteFunc(p.state, func(k [2]string, _ string) bool { return k[0] == node })
		}
	}
	return p, nil
}

// otherNodes finds the nodes that recorded their own probes in the last
// 90 days and are not this one: a node is operational while it keeps
// recording, down once it has been silent for three intervals, and no
// longer listed once it is gone (see gone).
func (s *Service) otherNodes(ctx context.Context, now time.Time, seen map[string]bool, buckets []*store.ProbeBucket) ([]Component, error) {
	deps, err := s.departures(ctx)
	if err != nil {
		return nil, err
	}
	var out []Component
	for _, b := range buckets {
		if !strings.HasPrefix(b.Component, NodePrefix) || seen[b.Component] {
			continue
		}
		seen[b.Component] = true
		recent, err := s.Store.ListProbes(ctx, store.HealthQuery{Component: b.Component, Since: now.Add(-s.silentAfter())})
		if err != nil {
			return nil, fmt.Errorf("list probes: %w", err)
		}
		why, err := s.gone(ctx, b.Component, len(recent) == 0, now, deps)
		if err != nil {
			return nil, err
		}
		if why != "" {
			continue
		}
		in := s.info(b.Component)
		c := Component{ID: b.Component, Name: in.Name, Kind: KindNode, State: Operational}
		if len(recent) == 0 {
			c.State, c.Reason = Down, ReasonSilent
		} else if last := recent[len(recent)-1]; !last.OK {
			c.State, c.Reason = Degraded, last.Reason
		}
		out = append(out, c)
	}
	return out, nil
}

func inMaintenance(ms []*store.Maintenance, component string, at time.Time) bool {
	for _, m := range ms {
		if m.CancelledAt.IsZero() && !at.Before(m.Start) && at.Before(m.End) && slices.Contains(m.Components, component) {
			return true
		}
	}
	return false
}

// dailyProbes counts the recorded probe results of the last 90 days per
// component and day of the service's zone: one read serves the uptime
// bars and finds the other nodes. Days that ended more than settleAfter
// ago are counted once and kept in memory; only the others are read
// again.
func (s *Service) dailyProbes(ctx context.Context, now time.Time) ([]*store.ProbeBucket, error) {
	loc := s.zone()
	today := dayStart(now, loc)
	return s.days.read(ctx, s.Store, now, addDays(today, -HistoryDays+1, loc), addDays(today, 1, loc), loc)
}

// history builds each component's last 90 days, days of the service's
// zone, from the daily probe counts.
func (s *Service) history(now time.Time, comps []Component, incs []*store.Incident, buckets []*store.ProbeBucket) []History {
	loc := s.zone()
	first := addDays(dayStart(now, loc), -HistoryDays+1, loc)
	byComp := map[string][]*store.ProbeBucket{}
	for _, b := range buckets {
		byComp[b.Component] = append(byComp[b.Component], b)
	}
	// The days, and which a bucket is by its start: days are not all
	// 24 hours long.
	starts := make([]time.Time, HistoryDays+1)
	index := make(map[int64]int, HistoryDays)
	for i := range starts {
		starts[i] = addDays(first, i, loc)
		index[starts[i].UnixMicro()] = i
	}
	out := make([]History, 0, len(comps))
	for _, c := range comps {
		h := History{Component: c.ID, Days: make([]Day, HistoryDays)}
		var probes, ok int64
		for i := range h.Days {
			d := &h.Days[i]
			d.Date, d.Day = starts[i], dateOf(starts[i], loc)
			d.Worst = Unknown
			end := starts[i+1]
			for _, in := range incs {
				if slices.Contains(in.Components, c.ID) && in.StartedAt.Before(end) && (in.RecoveredAt.IsZero() || !in.RecoveredAt.Before(d.Date)) {
					d.Incidents = append(d.Incidents, in.ID)
				}
			}
		}
		for _, b := range byComp[c.ID] {
			i, found := index[b.Start.UnixMicro()]
			if !found || i >= HistoryDays {
				continue
			}
			d := &h.Days[i]
			d.Probes, d.OK = b.Probes, b.OK
			d.Percent = percent(b.OK, b.Probes)
			switch {
			case b.Down > 0:
				d.Worst = Down
			case b.Degraded > 0:
				d.Worst = Degraded
			case b.Up > 0:
				d.Worst = Operational
			}
			probes += b.Probes
			ok += b.OK
		}
		h.Percent = percent(ok, probes)
		out = append(out, h)
	}
	return out
}

// percent is 100*n/of, rounded to three decimals; nil when of is 0.
func percent(n, of int64) *float64 {
	if of <= 0 {
		return nil
	}
	p := roundTo(100*float64(n)/float64(of), 3)
	return &p
}

func roundTo(f float64, places int) float64 {
	m := 1.0
	for range places {
		m *= 10
	}
	if f >= 0 {
		return float64(int64(f*m+0.5)) / m
	}
	return -float64(int64(-f*m+0.5)) / m
}

// Incident returns one incident as published; store.ErrNotFound if
// unknown. Like Summary, it reads the store at most once per ID every
// Config.CacheFor, an unknown ID included, and the value is shared:
// callers must not change it. At most incidentsAtOnce IDs are read at
// once: a caller that would start one more gets ErrBusy.
func (s *Service) Incident(ctx context.Context, id string) (*Incident, error) {
	now := s.now()
	pub, err := s.incidents.get(ctx, id, now, memoBounds{keep: maxIncidentsKept, running: incidentsAtOnce}, func(ctx context.Context) (*Incident, time.Time, error) {
		until := now.Add(s.cfg().CacheFor)
		in, err := s.Store.GetIncident(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return nil, until, nil
		}
		if err != nil {
			return nil, time.Time{}, err
		}
		pub := s.publish(in, now)
		pub.ReadAt = now
		return &pub, until, nil
	})
	if err == nil && pub == nil {
		err = fmt.Errorf("incident %q: %w", id, store.ErrNotFound)
	}
	return pub, err
}

// maxIncidentsKept bounds the incidents, found or not, that Incident
// keeps for Config.CacheFor: requests for more distinct IDs than that
// within CacheFor push out those soonest to expire.
const maxIncidentsKept = 1000

// incidentsAtOnce bounds the incident lookups in progress, so that
// requests for many distinct made-up IDs at once hold at most that many
// of the store's connections.
const incidentsAtOnce = 4

// publish turns a stored incident into its public form at now.
func (s *Service) publish(in *store.Incident, now time.Time) Incident {
	p := Incident{
		ID: in.ID, Title: s.title(in.Component, in.Severity, !in.RecoveredAt.IsZero()), Component: in.Component,
		Components: append([]string{}, in.Components...), Severity: in.Severity,
		StartedAt: in.StartedAt.UTC(), OpenedAt: in.OpenedAt.UTC(),
		PeopleAffected: in.PeopleAffected, FailedAttempts: in.FailedAttempts, Rerouted: in.Rerouted,
		CountedAt: in.CountedAt.UTC(), RCA: in.RCA, Timeline: []Update{},
	}
	if len(p.Components) == 0 {
		p.Components = []string{in.Component}
	}
	end := now
	switch {
	case !in.ResolvedAt.IsZero():
		p.Status = "resolved"
	case !in.RecoveredAt.IsZero():
		p.Status = "recovering"
	default:
		p.Status = "open"
	}
	if !in.RecoveredAt.IsZero() {
		t := in.RecoveredAt.UTC()
		p.RecoveredAt, end = &t, t
	}
	p.DurationSeconds = int64(max(end.Sub(in.StartedAt), 0) / time.Second)
	if !in.ResolvedAt.IsZero() {
		t := in.ResolvedAt.UTC()
		due := t.Add(RCADeadline)
		p.ResolvedAt, p.RCADueAt = &t, &due
		if in.RCAPublishedAt.IsZero() {
			p.RCAOverdue = now.After(due)
		} else {
			pt := in.RCAPublishedAt.UTC()
			p.RCAPublishedAt = &pt
			p.RCAOnTime = !pt.After(due)
		}
	}
	for _, u := range in.Updates {
		p.Timeline = append(p.Timeline, Update{Seq: u.Seq, Time: u.Time.UTC(), Kind: u.Kind, State: u.State, Reason: u.Reason, Message: u.Message, Author: u.Author})
	}
	return p
}

func publishMaintenance(m *store.Maintenance, now time.Time) Maintenance {
	pm := Maintenance{ID: m.ID, Components: append([]string{}, m.Components...), Start: m.Start.UTC(), End: m.End.UTC(), Title: m.Title, Message: m.Message}
	if !m.AnnouncedEnd.IsZero() {
		pm.AnnouncedEnd = m.AnnouncedEnd.UTC()
	}
	if !m.CreatedAt.IsZero() {
		pm.AnnouncedAt = m.CreatedAt.UTC()
	}
	if !m.CancelledAt.IsZero() {
		pm.CancelledAt = m.CancelledAt.UTC()
	}
	switch {
	case !m.CancelledAt.IsZero():
		pm.Status = "cancelled"
	case now.Before(m.Start):
		pm.Status = "scheduled"
	case now.Before(m.End):
		pm.Status = "in_progress"
	default:
		pm.Status = "completed"
	}
	return pm
}
