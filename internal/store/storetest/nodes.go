package storetest

import (
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/store"
)

func testNodes(t *testing.T, s store.Store) {
	ctx := t.Context()
	z := loadZones(t)
	now := base(t)
	list := func(t *testing.T) []*store.NodeDeparture {
		t.Helper()
		got, err := s.ListNodeDepartures(ctx)
		wantErr(t, "ListNodeDepartures", err, nil)
		return got
	}

	t.Run("empty", func(t *testing.T) {
		if got := list(t); len(got) != 0 {
			t.Errorf("ListNodeDepartures on an empty store = %d", len(got))
		}
	})

	b := &store.NodeDeparture{Node: "node-b", LeftAt: now.Add(-time.Hour).In(z.tokyo), Reason: store.NodeStopped}
	a := &store.NodeDeparture{Node: "node-a", LeftAt: now.In(z.la), Reason: store.NodeStopped}

	t.Run("record and list", func(t *testing.T) {
		for _, d := range []*store.NodeDeparture{b, a} {
			wantErr(t, "RecordNodeLeft", s.RecordNodeLeft(ctx, d, nil), nil)
		}
		same(t, "departures by node", []*store.NodeDeparture{a, b}, list(t))
		if err := s.RecordNodeLeft(ctx, &store.NodeDeparture{Node: "node-c", Reason: store.NodeStopped}, nil); err == nil {
			t.Error("RecordNodeLeft at the zero time succeeded")
		}
		same(t, "after a refused record", []*store.NodeDeparture{a, b}, list(t))
	})

	t.Run("the latest replaces", func(t *testing.T) {
		later := &store.NodeDeparture{Node: "node-b", LeftAt: now.Add(time.Minute).In(z.oslo), Reason: store.NodeForgotten}
		ev := &store.AuditEvent{Type: "node_forgotten", Time: later.LeftAt, Result: store.ResultSuccess, Details: map[string]string{"node": "node-b"}}
		wantErr(t, "RecordNodeLeft", s.RecordNodeLeft(ctx, later, ev), nil)
		same(t, "departures after node-b left again", []*store.NodeDeparture{a, later}, list(t))
		events, err := s.ListAudit(ctx, 0, 10)
		wantErr(t, "ListAudit", err, nil)
		if len(events) != 1 || events[0].Type != "node_forgotten" || events[0].Details["node"] != "node-b" {
			t.Errorf("audit log after forgetting node-b: %+v, want the one node_forgotten event", events)
		}
	})
}
