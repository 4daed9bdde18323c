package status

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/varde-eid/varde/internal/store"
)

// Reasons another node is gone, in the timeline entry that resolves its
// incident and in the transition that ends this node's view of it.
const (
	// ReasonNodeStopped: the node stopped cleanly and recorded so.
	ReasonNodeStopped = "node_stopped"
	// ReasonNodeForgotten: an operator said it will never come back
	// (varde nodes forget).
	ReasonNodeForgotten = "node_forgotten"
	// ReasonNodeGone: it recorded nothing for Config.NodeGoneAfter.
	ReasonNodeGone = "node_gone"
)

// Errors of ForgetNode, for callers that branch.
var (
	// ErrNodeRunning: the node still records probe results.
	ErrNodeRunning = errors.New("the node is running")
	// ErrUnknownNode: no node of that name recorded anything in the last
	// 90 days.
	ErrUnknownNode = errors.New("no such node")
)

// NodeRunningError is ErrNodeRunning for a node that may have crashed
// a moment ago: it says when the node can be forgotten if so.
type NodeRunningError struct {
	Node      string
	LastProbe time.Time
	// SilentAfter is how long a node records nothing before it is taken
	// for stopped (three health intervals).
	SilentAfter time.Duration
}

func (e *NodeRunningError) Error() string {
	return fmt.Sprintf("node %s is running: it recorded a probe result at %s; a node that records none for %v (three health intervals) "+
		"is taken for stopped, so if %s crashed or its host is gone, run this again after %s",
		e.Node, e.LastProbe.UTC().Format(time.RFC3339), e.SilentAfter, e.Node, e.LastProbe.Add(e.SilentAfter).UTC().Format(time.RFC3339))
}

// Is makes errors.Is(err, ErrNodeRunning) true.
func (e *NodeRunningError) Is(target error) bool { return target == ErrNodeRunning }

// departures reads every node's departure, by node name.
func (s *Service) departures(ctx context.Context) (map[string]*store.NodeDeparture, error) {
	return departures(ctx, s.Store)
}

func departures(ctx context.Context, st Store) (map[string]*store.NodeDeparture, error) {
	ds, err := st.ListNodeDepartures(ctx)
	if err != nil {
		return nil, fmt.Errorf("list node departures: %w", err)
	}
	out := make(map[string]*store.NodeDeparture, len(ds))
	for _, d := range ds {
		out[d.Node] = d
	}
	return out, nil
}

// left is the departure of the node whose component is id that stands:
// none if the node recorded a probe result at or after it (it came
// back).
func left(ctx context.Context, st Store, id string, deps map[string]*store.NodeDeparture) (*store.NodeDeparture, error) {
	d := deps[strings.TrimPrefix(id, NodePrefix)]
	if d == nil || !strings.HasPrefix(id, NodePrefix) {
		return nil, nil
	}
	after, err := st.ListProbes(ctx, store.HealthQuery{Component: id, Since: d.LeftAt, Limit: 1})
	if err != nil {
		return nil, fmt.Errorf("list probes: %w", err)
	}
	if len(after) > 0 {
		return nil, nil
	}
	return d, nil
}

// gone is why another node's component id no longer counts as a
// component at now ("" while it does): it left, or it is silent (has
// recorded no probe result for three intervals) and has been for
// Config.NodeGoneAfter. A silent node is down until then: it may have
// crashed, and that is an outage people should see, but one that stays
// silent that long was taken away without a word.
func (s *Service) gone(ctx context.Context, id string, silent bool, now time.Time, deps map[string]*store.NodeDeparture) (string, error) {
	d, err := left(ctx, s.Store, id, deps)
	if err != nil {
		return "", err
	}
	switch {
	case d != nil && d.Reason == store.NodeForgotten:
		return ReasonNodeForgotten, nil
	case d != nil:
		return ReasonNodeStopped, nil
	case !silent:
		return "", nil
	}
	recent, err := s.Store.ListProbes(ctx, store.HealthQuery{Component: id, Since: now.Add(-s.cfg().NodeGoneAfter), Limit: 1})
	if err != nil {
		return "", fmt.Errorf("list probes: %w", err)
	}
	if len(recent) == 0 {
		return ReasonNodeGone, nil
	}
	return "", nil
}

// Node is another node as the records in the store show it.
type Node struct {
	// Name is the node's name (its component is "node:<name>").
	Name string
	// LastProbe is when it last recorded a probe result (within the
	// last 90 days).
	LastProbe time.Time
	// Gone is why it is no longer on the page (Reason*, "" while it is):
	// a node that is not gone is running, or down when Silent.
	Gone   string
	Silent bool
	// LeftAt is when it left, if it stopped or was forgotten.
	LeftAt time.Time
}

// Nodes lists the nodes that recorded probe results in the last 90
// days, by name, this service's own included.
func (s *Service) Nodes(ctx context.Context) ([]Node, error) {
	now := s.now()
	buckets, err := s.dailyProbes(ctx, now)
	if err != nil {
		return nil, err
	}
	deps, err := s.departures(ctx)
	if err != nil {
		return nil, err
	}
	lastDay := map[string]time.Time{}
	for _, b := range buckets {
		if strings.HasPrefix(b.Component, NodePrefix) {
			lastDay[b.Component] = later(lastDay[b.Component], b.Start)
		}
	}
	var out []Node
	for id, day := range lastDay {
		n := Node{Name: strings.TrimPrefix(id, NodePrefix)}
		if n.LastProbe, err = s.lastProbe(ctx, id, day, addDays(day, 1, s.zone())); err != nil {
			return nil, err
		}
		n.Silent = now.Sub(n.LastProbe) >= s.silentAfter()
		if n.Gone, err = s.gone(ctx, id, n.Silent, now, deps); err != nil {
			return nil, err
		}
		if d := deps[n.Name]; d != nil && n.Gone != ReasonNodeGone && n.Gone != "" {
			n.LeftAt = d.LeftAt
		}
		out = append(out, n)
	}
	slices.SortFunc(out, func(a, b Node) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// lastProbe is the time of component's latest probe result, which is on
// the day [day, next) of the service's zone: found by the hour, then
// read.
func (s *Service) lastProbe(ctx context.Context, component string, day, next time.Time) (time.Time, error) {
	hours, err := s.Store.SummarizeProbes(ctx, store.HealthQuery{Component: component, Since: day, Until: next}, time.Hour)
	if err != nil {
		return time.Time{}, fmt.Errorf("summarize probes: %w", err)
	}
	if len(hours) == 0 {
		return time.Time{}, nil
	}
	h := hours[len(hours)-1].Start
	ps, err := s.Store.ListProbes(ctx, store.HealthQuery{Component: component, Since: h, Until: h.Add(time.Hour)})
	if err != nil {
		return time.Time{}, fmt.Errorf("list probes: %w", err)
	}
	if len(ps) == 0 {
		return time.Time{}, nil
	}
	return ps[len(ps)-1].Time.UTC(), nil
}

// ForgetNode records that node will never come back, with e (if not nil)
// in the audit log in the same write: the page stops listing it at once
// and every node's engine resolves its open incident, saying so. A node
// that still records probe results is refused (ErrNodeRunning): stop it
// first, and it leaves by itself. If a forgotten node does come back, it
// is listed again from its first probe result.
func (s *Service) ForgetNode(ctx context.Context, node string, e *store.AuditEvent) (*store.NodeDeparture, error) {
	nodes, err := s.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(nodes, func(n Node) bool { return n.Name == node })
	if i < 0 {
		return nil, fmt.Errorf("%w: %q recorded nothing in the last %d days", ErrUnknownNode, node, HistoryDays)
	}
	n := nodes[i]
	if n.Gone == "" && !n.Silent {
		// A node that crashed a moment ago looks running until it has
		// been silent for silentAfter: say when it no longer will.
		return nil, &NodeRunningError{Node: node, LastProbe: n.LastProbe, SilentAfter: s.silentAfter()}
	}
	// After its last probe result even if that node's clock ran ahead.
	d := &store.NodeDeparture{Node: node, LeftAt: later(s.now(), n.LastProbe.Add(time.Microsecond)), Reason: store.NodeForgotten}
	if err := s.Store.RecordNodeLeft(ctx, d, e); err != nil {
		return nil, err
	}
	return d, nil
}
