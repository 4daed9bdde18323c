package health

import (
	"time"

	"github.com/varde-eid/varde/internal/store"
)

// State is a component's health.
type State string

// States, from best to worst. Unknown is the state before the first
// evidence (no probe has succeeded yet and too few real logins were
// seen).
const (
	Unknown  State = store.HealthUnknown
	Up       State = store.HealthUp
	Degraded State = store.HealthDegraded
	Down     State = store.HealthDown
)

// States lists every state, in the order metrics and pages show them.
func States() []State { return []State{Unknown, Up, Degraded, Down} }

// severity orders states for combining evidence: the worse wins.
func (s State) severity() int {
	switch s {
	case Up:
		return 1
	case Degraded:
		return 2
	case Down:
		return 3
	}
	return 0
}

// Usable reports whether logins may be sent to a component in state s:
// everything but Down. Unknown is usable so that a node that has just
// started does not refuse every provider; a node that starts while the
// other nodes find a component Down takes their state (Monitor.Seed),
// and a serving node reports ready only after its first probe round
// (Monitor.Probed).
func (s State) Usable() bool { return s != Down }

// Outcome is how a real login through a component ended, as the broker
// saw it.
type Outcome string

// Login outcomes for Monitor.Observe.
const (
	// Success: the component authenticated the person.
	Success Outcome = "success"
	// Error: the component answered with an error or something invalid
	// (an error response, a bad ID token).
	Error Outcome = "error"
)

// Probe failure reasons, the reason label of varde_probe_failures_total
// and store.ProbeRecord.Reason of failed probes.
const (
	// FailureTimeout: the probe did not finish within its timeout.
	FailureTimeout = "timeout"
	// FailureConnect: no connection (refused, reset, DNS, TLS).
	FailureConnect = "connect"
	// FailureStatus: an HTTP status other than 200.
	FailureStatus = "status"
	// FailureInvalid: an answer that is not what the protocol requires.
	FailureInvalid = "invalid"
	// FailureOther: any other error.
	FailureOther = "error"
)

// SlowReason is store.ProbeRecord.Reason of a probe that succeeded, but
// more slowly than Config.SlowProbe.
const SlowReason = "slow"

// Transition reasons: why a component's state changed.
const (
	// ReasonProbeFailures: Config.FailuresToDown probes failed in a row.
	ReasonProbeFailures = "probe_failures"
	// ReasonPartialFailures: too many of the recent probes failed.
	ReasonPartialFailures = "partial_failures"
	// ReasonSlow: too many of the recent probes were slow.
	ReasonSlow = "slow"
	// ReasonLoginFailures: too many real logins failed.
	ReasonLoginFailures = "login_failures"
	// ReasonLoginRefusals: too many real logins failed, most of them
	// because the component's answers about different accounts were
	// refused (Monitor.ObserveRefusal): it is answering, and what it
	// says is not what Varde's configuration for it expects.
	ReasonLoginRefusals = "login_refusals"
	// ReasonProbesOK: probes succeed again (or for the first time).
	ReasonProbesOK = "probes_ok"
	// ReasonLoginsOK: real logins succeed again (components without
	// probes), or the login evidence against the component expired.
	ReasonLoginsOK = "logins_ok"
	// ReasonSeeded: the node started while the latest probes of the
	// other nodes (Monitor.Seed) put the component in this state; its
	// own probes take over from there, with the usual hysteresis, or,
	// where the other nodes' logins alone put it there, the state
	// lapses with the login window.
	ReasonSeeded = "seeded"
	// ReasonLoginRetry: the failed logins that made a component Down
	// have left the login window; it is Degraded, offered again so that
	// new logins show whether it works.
	ReasonLoginRetry = "login_retry"
)

// Transition is one change of a component's state.
type Transition struct {
	Component string
	From, To  State
	Reason    string
	// At is when the state changed.
	At time.Time
	// Since is when the evidence for the change began, e.g. the start of
	// the first failed probe of the run that made the component Down;
	// At - Since is the detection time.
	Since time.Time
}

// Status is a component's current state as the monitor sees it.
type Status struct {
	Component string
	State     State
	// Since is when the component entered State (zero while Unknown from
	// the start).
	Since time.Time
	// Reason is why it entered State.
	Reason string
	// Probed is false for components known only from real logins.
	Probed bool
	// LastProbe is when the last probe started (zero before the first);
	// LastFailure is its failure reason, "" if it succeeded.
	LastProbe   time.Time
	LastFailure string
}
