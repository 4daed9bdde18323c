package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/store"
)

func probe(component, node string, at time.Time, d time.Duration, ok bool, reason, state string) *store.ProbeRecord {
	return &store.ProbeRecord{Component: component, Node: node, Time: at, Duration: d, OK: ok, Reason: reason, State: state}
}

func testHealth(t *testing.T, s store.Store) {
	ctx := t.Context()
	z := loadZones(t)
	now := base(t)

	listProbes := func(t *testing.T, q store.HealthQuery) []*store.ProbeRecord {
		t.Helper()
		got, err := s.ListProbes(ctx, q)
		wantErr(t, "ListProbes", err, nil)
		return got
	}
	listTransitions := func(t *testing.T, q store.HealthQuery) []*store.HealthTransition {
		t.Helper()
		got, err := s.ListHealthTransitions(ctx, q)
		wantErr(t, "ListHealthTransitions", err, nil)
		return got
	}

	t.Run("empty", func(t *testing.T) {
		if got := listProbes(t, store.HealthQuery{}); len(got) != 0 {
			t.Errorf("ListProbes on an empty store = %d records", len(got))
		}
		if got := listTransitions(t, store.HealthQuery{}); len(got) != 0 {
			t.Errorf("ListHealthTransitions on an empty store = %d records", len(got))
		}
		wantErr(t, "RecordProbes(nil)", s.RecordProbes(ctx, nil), nil)
		wantErr(t, "RecordHealthTransitions(empty)", s.RecordHealthTransitions(ctx, []*store.HealthTransition{}), nil)
		n, err := s.DeleteProbesBefore(ctx, now)
		wantErr(t, "DeleteProbesBefore", err, nil)
		if n != 0 {
			t.Errorf("DeleteProbesBefore on an empty store = %d", n)
		}
	})

	// Probes of two components by two nodes, written in three time zones
	// and in two batches, not in time order; a and b share one instant.
	t0 := now.In(z.la)
	a := probe("bankid", "node-a", t0, 1234567891*time.Nanosecond, true, "", store.HealthUp)
	b := probe("bankid", "node-a", t0.In(z.tokyo), 5*time.Second, false, "timeout", store.HealthUp)
	c := probe("minid", "node-b", t0.Add(-time.Second), 0, true, "slow", store.HealthDegraded)
	d := probe("bankid", "node-b", t0.Add(time.Second).In(time.UTC), time.Millisecond, false, "connect", store.HealthDown)
	e := probe("bankid", "node-a", t0.Add(2*time.Second), time.Microsecond, true, "", store.HealthUnknown)

	t.Run("probes round trip in order", func(t *testing.T) {
		wantErr(t, "RecordProbes", s.RecordProbes(ctx, []*store.ProbeRecord{a, d}), nil)
		wantErr(t, "RecordProbes", s.RecordProbes(ctx, []*store.ProbeRecord{e, b, c}), nil)
		// Oldest first; a and b share a time and keep the order recorded.
		same(t, "all probes", []*store.ProbeRecord{c, a, b, d, e}, listProbes(t, store.HealthQuery{}))
	})

	t.Run("probe filters", func(t *testing.T) {
		tests := []struct {
			name string
			q    store.HealthQuery
			want []*store.ProbeRecord
		}{
			{"component", store.HealthQuery{Component: "bankid"}, []*store.ProbeRecord{a, b, d, e}},
			{"node", store.HealthQuery{Node: "node-b"}, []*store.ProbeRecord{c, d}},
			{"component and node", store.HealthQuery{Component: "bankid", Node: "node-a"}, []*store.ProbeRecord{a, b, e}},
			{"unknown component", store.HealthQuery{Component: "nobody"}, []*store.ProbeRecord{}},
			{"since is inclusive", store.HealthQuery{Since: t0.In(z.oslo)}, []*store.ProbeRecord{a, b, d, e}},
			{"since 1µs later", store.HealthQuery{Since: t0.Add(time.Microsecond)}, []*store.ProbeRecord{d, e}},
			{"until is exclusive", store.HealthQuery{Until: d.Time.In(z.tokyo)}, []*store.ProbeRecord{c, a, b}},
			{"until 1µs later", store.HealthQuery{Until: d.Time.Add(time.Microsecond)}, []*store.ProbeRecord{c, a, b, d}},
			{"window", store.HealthQuery{Component: "bankid", Since: t0, Until: e.Time}, []*store.ProbeRecord{a, b, d}},
			{"limit keeps the oldest", store.HealthQuery{Component: "bankid", Limit: 2}, []*store.ProbeRecord{a, b}},
			{"empty window", store.HealthQuery{Since: e.Time, Until: e.Time}, []*store.ProbeRecord{}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got := listProbes(t, tt.q)
				if len(got) == 0 && len(tt.want) == 0 {
					return
				}
				same(t, "probes", tt.want, got)
			})
		}
	})

	t.Run("summarize", func(t *testing.T) {
		q := store.HealthQuery{Since: t0.Add(-time.Second).In(z.tokyo), Until: t0.Add(3 * time.Second)}
		got, err := s.SummarizeProbes(ctx, q, 2*time.Second)
		wantErr(t, "SummarizeProbes", err, nil)
		start := q.Since.UTC()
		want := []*store.ProbeBucket{
			// [t0-1s, t0+1s): a, b; [t0+1s, t0+3s): d, e.
			{Component: "bankid", Start: start, Probes: 2, OK: 1, Up: 2},
			{Component: "bankid", Start: start.Add(2 * time.Second), Probes: 2, OK: 1, Down: 1},
			{Component: "minid", Start: start, Probes: 1, OK: 1, Degraded: 1},
		}
		same(t, "buckets", want, got)

		q.Node = "node-a"
		got, err = s.SummarizeProbes(ctx, q, time.Hour)
		wantErr(t, "SummarizeProbes by node", err, nil)
		same(t, "node-a buckets", []*store.ProbeBucket{{Component: "bankid", Start: start, Probes: 3, OK: 2, Up: 2}}, got)

		for _, bad := range []struct {
			q     store.HealthQuery
			width time.Duration
		}{
			{store.HealthQuery{Until: now}, time.Hour},
			{store.HealthQuery{Since: now}, time.Hour},
			{store.HealthQuery{Since: now, Until: now.Add(time.Hour)}, 0},
			{store.HealthQuery{Since: now, Until: now.Add(time.Hour)}, time.Nanosecond},
		} {
			if _, err := s.SummarizeProbes(ctx, bad.q, bad.width); err == nil {
				t.Errorf("SummarizeProbes(%+v, %v) succeeded", bad.q, bad.width)
			}
		}
	})

	t.Run("delete probes before", func(t *testing.T) {
		n, err := s.DeleteProbesBefore(ctx, t0.In(z.tokyo))
		wantErr(t, "DeleteProbesBefore", err, nil)
		if n != 1 {
			t.Errorf("DeleteProbesBefore removed %d, want 1 (c)", n)
		}
		same(t, "probes left", []*store.ProbeRecord{a, b, d, e}, listProbes(t, store.HealthQuery{}))
		n, err = s.DeleteProbesBefore(ctx, e.Time.Add(time.Microsecond))
		wantErr(t, "DeleteProbesBefore all", err, nil)
		if n != 4 {
			t.Errorf("DeleteProbesBefore removed %d, want 4", n)
		}
		if got := listProbes(t, store.HealthQuery{}); len(got) != 0 {
			t.Errorf("%d probes left after deleting all", len(got))
		}
	})

	t.Run("large batch", func(t *testing.T) {
		const n = 700 // more than a backend may put in one statement
		batch := make([]*store.ProbeRecord, n)
		at := now.Add(time.Hour)
		for i := range batch {
			batch[i] = probe("large", "node-a", at.Add(time.Duration(i)*time.Millisecond), time.Duration(i), i%7 != 0, "", store.HealthUp)
		}
		wantErr(t, "RecordProbes", s.RecordProbes(ctx, batch), nil)
		same(t, "large batch", batch, listProbes(t, store.HealthQuery{Component: "large"}))
		got, err := s.SummarizeProbes(ctx, store.HealthQuery{Component: "large", Since: at, Until: at.Add(time.Hour)}, time.Hour)
		wantErr(t, "SummarizeProbes", err, nil)
		same(t, "large summary", []*store.ProbeBucket{{Component: "large", Start: at.UTC(), Probes: n, OK: n - 100, Up: n}}, got)
		removed, err := s.DeleteProbesBefore(ctx, at.Add(time.Hour))
		wantErr(t, "DeleteProbesBefore", err, nil)
		if removed != n {
			t.Errorf("DeleteProbesBefore removed %d, want %d", removed, n)
		}
	})

	t.Run("cancelled record stores nothing", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		p := probe("cancelled", "node-a", now, 0, true, "", store.HealthUp)
		tr := &store.HealthTransition{Component: "cancelled", Node: "node-a", Time: now, From: store.HealthUnknown, To: store.HealthUp}
		if err := s.RecordProbes(cctx, []*store.ProbeRecord{p}); err == nil {
			t.Error("RecordProbes with a cancelled context succeeded")
		}
		if err := s.RecordHealthTransitions(cctx, []*store.HealthTransition{tr}); err == nil {
			t.Error("RecordHealthTransitions with a cancelled context succeeded")
		}
		if got := listProbes(t, store.HealthQuery{Component: "cancelled"}); len(got) != 0 {
			t.Errorf("%d probes stored", len(got))
		}
		if got := listTransitions(t, store.HealthQuery{Component: "cancelled"}); len(got) != 0 {
			t.Errorf("%d transitions stored", len(got))
		}
	})

	// An outage as one node saw it, written in several zones; the second
	// and third share an instant.
	down := &store.HealthTransition{Component: "bankid", Node: "node-a", Time: t0.Add(15 * time.Second).In(z.tokyo),
		From: store.HealthUp, To: store.HealthDown, Reason: "probe_failures", Since: t0.Add(5 * time.Second).In(z.la)}
	start := &store.HealthTransition{Component: "minid", Node: "node-a", Time: t0, From: store.HealthUnknown,
		To: store.HealthUp, Reason: "probes_ok", Since: t0}
	passive := &store.HealthTransition{Component: "bankid", Node: "node-b", Time: down.Time.In(z.oslo),
		From: store.HealthUp, To: store.HealthDegraded, Reason: "login_failures"}
	recovered := &store.HealthTransition{Component: "bankid", Node: "node-a", Time: t0.Add(time.Minute),
		From: store.HealthDown, To: store.HealthDegraded, Reason: "probes_ok", Since: t0.Add(45 * time.Second)}

	t.Run("transitions round trip in order", func(t *testing.T) {
		wantErr(t, "RecordHealthTransitions", s.RecordHealthTransitions(ctx, []*store.HealthTransition{recovered, down}), nil)
		wantErr(t, "RecordHealthTransitions", s.RecordHealthTransitions(ctx, []*store.HealthTransition{passive, start}), nil)
		same(t, "all transitions", []*store.HealthTransition{start, down, passive, recovered}, listTransitions(t, store.HealthQuery{}))
		got := listTransitions(t, store.HealthQuery{Component: "bankid", Node: "node-a"})
		same(t, "bankid at node-a", []*store.HealthTransition{down, recovered}, got)
		if len(got) == 2 {
			if dt := got[0].Time.Sub(got[0].Since); dt != 10*time.Second {
				t.Errorf("detection time = %v, want 10s", dt)
			}
		}
	})

	t.Run("transition filters", func(t *testing.T) {
		tests := []struct {
			name string
			q    store.HealthQuery
			want []*store.HealthTransition
		}{
			{"component", store.HealthQuery{Component: "bankid"}, []*store.HealthTransition{down, passive, recovered}},
			{"node", store.HealthQuery{Node: "node-b"}, []*store.HealthTransition{passive}},
			{"since is inclusive", store.HealthQuery{Since: down.Time.In(z.la)}, []*store.HealthTransition{down, passive, recovered}},
			{"until is exclusive", store.HealthQuery{Until: recovered.Time.In(z.tokyo)}, []*store.HealthTransition{start, down, passive}},
			{"limit", store.HealthQuery{Since: t0.Add(time.Microsecond), Limit: 1}, []*store.HealthTransition{down}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				same(t, "transitions", tt.want, listTransitions(t, tt.q))
			})
		}
	})

	t.Run("concurrent records", func(t *testing.T) {
		const each = 5
		at := now.Add(2 * time.Hour)
		errs := race(contenders, func(i int) error {
			ps := make([]*store.ProbeRecord, each)
			for j := range ps {
				ps[j] = probe("race", id("node", i), at.Add(time.Duration(j)*time.Second), 0, true, "", store.HealthUp)
			}
			if err := s.RecordProbes(ctx, ps); err != nil {
				return err
			}
			return s.RecordHealthTransitions(ctx, []*store.HealthTransition{{Component: "race", Node: id("node", i), Time: at,
				From: store.HealthUnknown, To: store.HealthUp}})
		})
		for i, err := range errs {
			if err != nil {
				t.Errorf("goroutine %d: %v", i, err)
			}
		}
		if got := listProbes(t, store.HealthQuery{Component: "race"}); len(got) != contenders*each {
			t.Errorf("%d probes stored, want %d", len(got), contenders*each)
		}
		// Each node's probes come back in its own order.
		for i := range contenders {
			got := listProbes(t, store.HealthQuery{Component: "race", Node: id("node", i)})
			for j, p := range got {
				if want := at.Add(time.Duration(j) * time.Second); !p.Time.Equal(want) {
					t.Errorf("node %d probe %d at %v, want %v", i, j, p.Time, want)
				}
			}
		}
		if got := listTransitions(t, store.HealthQuery{Component: "race"}); len(got) != contenders {
			t.Errorf("%d transitions stored, want %d", len(got), contenders)
		}
	})
}
