package status_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/status"
	"github.com/varde-eid/varde/internal/store"
)

// twoNodes is a cluster of a and b, both recording for five minutes.
func twoNodes(t *testing.T) (a, b *harness, clk *clock, step func(hs ...*harness)) {
	t.Helper()
	db := openDB(t)
	clk = &clock{t: time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)}
	a, b = newHarness(t, db, clk, "a"), newHarness(t, db, clk, "b")
	a.svc.Config.CacheFor = time.Nanosecond
	step = stepper(t, clk)
	for range 60 {
		step(a, b)
	}
	return a, b, clk, step
}

// summary is h's page computed now (with CacheFor at 1ns), not the one
// it computed before.
func (h *harness) summary() *status.Summary {
	h.t.Helper()
	h.clk.Add(time.Microsecond)
	sum, err := h.svc.Summary(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	return sum
}

// resolvedFor is the reason of the entry that resolved the only incident
// of component, or "" if it is not resolved.
func resolvedFor(t *testing.T, h *harness, component string) (*store.Incident, string) {
	t.Helper()
	all, err := h.db.ListIncidents(context.Background(), store.IncidentQuery{Component: component})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1 {
		t.Fatalf("%d incidents of %s, want 1", len(all), component)
	}
	in := all[0]
	if last := in.Updates[len(in.Updates)-1]; !in.ResolvedAt.IsZero() && last.Kind == store.UpdateResolved {
		return in, last.Reason
	}
	return in, ""
}

// TestStoppedNodeLeavesThePage: node b stops cleanly, recording that it
// left. Node a's page drops it at once, no incident opens however long
// it stays away, and it is listed again once it records a probe result.
func TestStoppedNodeLeavesThePage(t *testing.T) {
	ctx := context.Background()
	a, b, clk, step := twoNodes(t)
	if st := stateOf(a.summary(), "node:b"); st != status.Operational {
		t.Fatalf("node:b on a's page = %q, want operational", st)
	}
	if err := b.db.RecordNodeLeft(ctx, &store.NodeDeparture{Node: "b", LeftAt: clk.Now().Add(time.Millisecond), Reason: store.NodeStopped}, nil); err != nil {
		t.Fatal(err)
	}
	if sum := a.summary(); stateOf(sum, "node:b") != "" || sum.Overall != status.Operational {
		t.Errorf("right after b stopped: node:b = %q, overall %s; want it gone and operational", stateOf(sum, "node:b"), sum.Overall)
	}
	for range 120 {
		step(a)
	}
	if sum := a.summary(); stateOf(sum, "node:b") != "" || sum.Overall != status.Operational {
		t.Errorf("ten minutes after b stopped: node:b = %q, overall %s; want it gone and operational", stateOf(sum, "node:b"), sum.Overall)
	}
	if n := len(a.open()); n != 0 {
		t.Errorf("%d incidents opened for a node that stopped cleanly", n)
	}
	step(a, b)
	step(a, b)
	if st := stateOf(a.summary(), "node:b"); st != status.Operational {
		t.Errorf("node:b back = %q, want operational", st)
	}
}

// TestForgottenNodeIncidentResolves: node b crashes. It is down, with an
// incident, until an operator forgets it; then it leaves the page, its
// incident is resolved saying why and stays in the history, and the
// report counts it down until it was forgotten, not after.
func TestForgottenNodeIncidentResolves(t *testing.T) {
	ctx := context.Background()
	a, _, clk, step := twoNodes(t)
	from := clk.Now()
	nodes, err := a.svc.Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(nodes, func(n status.Node) bool { return n.Name == "b" })
	if i < 0 {
		t.Fatalf("nodes %+v, want b among them", nodes)
	}
	// An operator who has just seen b crash is told when it can be
	// forgotten: once it has been silent for three health intervals.
	when := nodes[i].LastProbe.Add(15 * time.Second).UTC().Format(time.RFC3339)
	if _, err := a.svc.ForgetNode(ctx, "b", nil); !errors.Is(err, status.ErrNodeRunning) ||
		!strings.Contains(err.Error(), "records none for 15s") || !strings.Contains(err.Error(), "run this again after "+when) {
		t.Errorf("forget a running node: %v, want ErrNodeRunning saying it can be forgotten after %s", err, when)
	}
	if _, err := a.svc.ForgetNode(ctx, "c", nil); !errors.Is(err, status.ErrUnknownNode) {
		t.Errorf("forget an unknown node: %v, want ErrUnknownNode", err)
	}
	for range 120 { // b records nothing for ten minutes
		step(a)
	}
	// Its row reads down; overall the service is degraded, not down,
	// since node a goes on serving.
	if sum := a.summary(); stateOf(sum, "node:b") != status.Down || sum.Overall != status.Degraded {
		t.Fatalf("node:b silent for ten minutes = %q, overall %s; want down, overall degraded", stateOf(sum, "node:b"), sum.Overall)
	}
	if in, _ := resolvedFor(t, a, "node:b"); !in.ResolvedAt.IsZero() {
		t.Fatalf("incident of node:b resolved while b is down")
	}
	forgot := clk.Now()
	ev := &store.AuditEvent{Time: forgot, Type: "node_forgotten", Result: store.ResultSuccess}
	if _, err := a.svc.ForgetNode(ctx, "b", ev); err != nil {
		t.Fatal(err)
	}
	step(a)
	sum := a.summary()
	if stateOf(sum, "node:b") != "" || sum.Overall != status.Operational {
		t.Errorf("after forgetting b: node:b = %q, overall %s; want it gone and operational", stateOf(sum, "node:b"), sum.Overall)
	}
	in, reason := resolvedFor(t, a, "node:b")
	if reason != status.ReasonNodeForgotten || in.RecoveredAt.Sub(forgot) > 10*time.Second {
		t.Errorf("incident of node:b: resolved for %q, measured until %v; want %q, until it was forgotten at %v",
			reason, in.RecoveredAt, status.ReasonNodeForgotten, forgot)
	}
	if len(sum.Recent) != 1 || sum.Recent[0].ID != in.ID {
		t.Errorf("recent incidents %+v, want the one of node:b", sum.Recent)
	}
	for range 120 {
		step(a)
	}
	// Down until it was forgotten, and not after.
	reportsDown(t, a, from, clk.Now(), "node:b", forgot.Sub(from))
}

// TestNodeSilentTooLongIsGone: node b crashes and nobody forgets it. It
// is down, with an incident, for Config.NodeGoneAfter; then it counts as
// gone: off the page, its incident resolved saying why.
func TestNodeSilentTooLongIsGone(t *testing.T) {
	a, _, _, step := twoNodes(t)
	a.svc.Config.NodeGoneAfter = 20 * time.Minute
	for range 200 { // not quite 20 minutes
		step(a)
	}
	if st := stateOf(a.summary(), "node:b"); st != status.Down {
		t.Fatalf("node:b silent for 17 minutes = %q, want down", st)
	}
	for range 60 {
		step(a)
	}
	if sum := a.summary(); stateOf(sum, "node:b") != "" || sum.Overall != status.Operational {
		t.Errorf("after 22 minutes: node:b = %q, overall %s; want it gone and operational", stateOf(sum, "node:b"), sum.Overall)
	}
	if _, reason := resolvedFor(t, a, "node:b"); reason != status.ReasonNodeGone {
		t.Errorf("incident of node:b resolved for %q, want %q", reason, status.ReasonNodeGone)
	}
}
