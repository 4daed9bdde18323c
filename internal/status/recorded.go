package status

import (
	"context"
	"time"

	"github.com/varde-eid/varde/internal/health"
	"github.com/varde-eid/varde/internal/store"
)

// Recorded is a Monitor read back from the health records in the store,
// for tools that run beside the nodes (varde status export): each
// component's state is the one its latest probe left it in, Unknown when
// no node has probed it for three intervals. A node that left (stopped
// cleanly, or was forgotten) and recorded nothing since is left out.
type Recorded struct {
	// Store holds the records.
	Store Store
	// Node, if set, reads only that node's records.
	Node string
	// Health is the nodes' probe configuration (its Interval matters).
	Health health.Config
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	snapshot []health.Status
}

// Load reads the records; Snapshot answers from what it read.
func (r *Recorded) Load(ctx context.Context) error {
	now := time.Now()
	if r.Now != nil {
		now = r.Now()
	}
	interval := r.Health.WithDefaults().Interval
	buckets, err := r.Store.SummarizeProbes(ctx, store.HealthQuery{Node: r.Node, Since: now.Add(-24 * time.Hour), Until: now.Add(time.Second)}, 25*time.Hour)
	if err != nil {
		return err
	}
	deps, err := departures(ctx, r.Store)
	if err != nil {
		return err
	}
	r.snapshot = nil
	for _, b := range buckets {
		d, err := left(ctx, r.Store, b.Component, deps)
		if err != nil {
			return err
		}
		if d != nil {
			continue // a node that left
		}
		st := health.Status{Component: b.Component, State: health.Unknown, Probed: true}
		recent, err := r.Store.ListProbes(ctx, store.HealthQuery{Component: b.Component, Node: r.Node, Since: now.Add(-3 * interval)})
		if err != nil {
			return err
		}
		if n := len(recent); n > 0 {
			last := recent[n-1]
			st.State, st.LastProbe = health.State(last.State), last.Time
			if !last.OK {
				st.LastFailure = last.Reason
			}
		}
		ts, err := r.Store.ListHealthTransitions(ctx, store.HealthQuery{Component: b.Component, Node: r.Node})
		if err != nil {
			return err
		}
		if n := len(ts); n > 0 && string(st.State) == ts[n-1].To {
			st.Since, st.Reason = ts[n-1].Time, ts[n-1].Reason
		}
		r.snapshot = append(r.snapshot, st)
	}
	return nil
}

// Snapshot implements Monitor.
func (r *Recorded) Snapshot() []health.Status { return r.snapshot }

// Config implements Monitor.
func (r *Recorded) Config() health.Config { return r.Health.WithDefaults() }
