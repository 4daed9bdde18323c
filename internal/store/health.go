package store

import (
	"context"
	"time"
)

// Component health states as stored. Package health owns their meaning;
// the store keeps them as plain strings.
const (
	HealthUnknown  = "unknown"
	HealthUp       = "up"
	HealthDegraded = "degraded"
	HealthDown     = "down"
)

// Health holds the measured health history of components (providers,
// the store, nodes): every active probe's result and every change of a
// component's state. Every node records its own view, so records carry
// the node that made them. Records are append-only; probe results are
// pruned by age, transitions are kept (they are the raw material of
// incidents and reports).
//
// Lists return records oldest first; records with the same time come
// back in the order they were recorded.
type Health interface {
	// RecordProbes stores probe results, all of them or none.
	RecordProbes(ctx context.Context, ps []*ProbeRecord) error
	// ListProbes returns the probe results q selects.
	ListProbes(ctx context.Context, q HealthQuery) ([]*ProbeRecord, error)
	// SummarizeProbes counts the probe results q selects in buckets of
	// width, the first starting at q.Since, per component (ordered by
	// component, then bucket). Buckets without probes are left out.
	// q.Since and q.Until must be set and width positive; q.Limit is
	// ignored.
	SummarizeProbes(ctx context.Context, q HealthQuery, width time.Duration) ([]*ProbeBucket, error)
	// DeleteProbesBefore removes every probe result older than before and
	// reports how many it removed.
	DeleteProbesBefore(ctx context.Context, before time.Time) (int64, error)

	// RecordHealthTransitions stores state changes, all of them or none.
	RecordHealthTransitions(ctx context.Context, ts []*HealthTransition) error
	// ListHealthTransitions returns the state changes q selects.
	ListHealthTransitions(ctx context.Context, q HealthQuery) ([]*HealthTransition, error)
}

// HealthQuery selects health records. Zero fields select everything.
type HealthQuery struct {
	// Component and Node, if set, select records of that component or
	// made by that node.
	Component string
	Node      string
	// Since and Until bound the record's Time: Since <= Time < Until. A
	// zero Until has no upper bound.
	Since, Until time.Time
	// Limit, if positive, returns at most that many records (the oldest).
	Limit int
}

// ProbeRecord is the result of one active probe of a component.
type ProbeRecord struct {
	Component string
	Node      string
	// Time is when the probe started.
	Time time.Time
	// Duration is how long it took; backends keep it exactly. A probe
	// not started because the previous one still ran (Reason "timeout")
	// has how long that one had run by Time.
	Duration time.Duration
	// OK is true if the probe succeeded (however slowly).
	OK bool
	// Reason is a short machine-readable cause when the probe failed
	// ("timeout", "connect", "status", "invalid", "error"), or "slow"
	// when it succeeded too slowly; empty otherwise.
	Reason string
	// State is the component's state (Health*) right after this probe.
	State string
}

// ProbeBucket counts the probe results of one component in one bucket of
// time.
type ProbeBucket struct {
	Component string
	// Start is the start of the bucket; it spans [Start, Start+width).
	Start time.Time
	// Probes counts every result, OK those that succeeded.
	Probes, OK int64
	// Up, Degraded and Down count results by the State after them;
	// results with any other state (unknown) are in Probes only.
	Up, Degraded, Down int64
}

// HealthTransition is one change of a component's state, as one node saw
// it.
type HealthTransition struct {
	Component string
	Node      string
	// Time is when the state changed.
	Time time.Time
	// From and To are Health* states.
	From, To string
	// Reason is a short machine-readable cause, e.g. "probe_failures",
	// "partial_failures", "slow", "login_failures", "probes_ok".
	Reason string
	// Since is when the evidence that caused the change began: for a
	// component going down after failed probes, the start of the first
	// failed probe of the run. Time - Since is the detection time.
	Since time.Time
}
