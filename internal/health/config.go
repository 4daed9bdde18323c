package health

import (
	"errors"
	"fmt"
	"time"
)

// Config holds the monitor's schedule and thresholds. A zero field takes
// its default (listed on each field and in DefaultConfig); Validate
// checks the result.
type Config struct {
	// Interval is the time between probe rounds. Default 5s.
	Interval time.Duration
	// ProbeTimeout bounds each probe. Default 3s; at most Interval.
	ProbeTimeout time.Duration
	// Concurrency is how many probes run at once. Default (zero): every
	// component's at once, so a round lasts at most ProbeTimeout however
	// many components hang, and an outage is seen as soon as the
	// thresholds say. A bound below the number of components lets
	// components that hang delay the probes of the others past Interval.
	Concurrency int
	// SlowProbe: a probe that succeeds but takes longer than this is
	// slow. Default 1s.
	SlowProbe time.Duration

	// FailuresToDown is how many probes must fail in a row for a
	// component to be Down. Default 3 (with the default interval, an
	// outage is detected 10–15 s after it starts).
	FailuresToDown int
	// SuccessesToRecover is how many probes must succeed in a row before
	// a Down component leaves Down, and how many must succeed quickly in
	// a row before a Degraded one is Up again. Default 3.
	SuccessesToRecover int
	// ProbeWindow is how many of the latest probes the Degraded rule
	// looks at. Default 10.
	ProbeWindow int
	// DegradedProbes: when at least this many of the last ProbeWindow
	// probes failed or were slow, the component is Degraded. Default 3.
	DegradedProbes int
	// RecoveredProbes: a Degraded component is Up again only when at most
	// this many of the last ProbeWindow probes failed or were slow (and
	// the last SuccessesToRecover were quick successes). It is below
	// DegradedProbes, so a component on the edge does not flap. Default
	// 1; negative means 0.
	RecoveredProbes int

	// LoginWindow is the sliding window of real logins the passive rule
	// looks at. Default 2m.
	LoginWindow time.Duration
	// MinLogins: with fewer logins than this in the window, logins are no
	// evidence either way. Default 10.
	MinLogins int
	// LoginDegradedRatio: when at least this share of the window's logins
	// failed, the component is Degraded. Default 0.25.
	LoginDegradedRatio float64
	// LoginDownRatio: when at least this share failed, it is Down.
	// Default 0.6.
	LoginDownRatio float64
	// LoginRecoveredRatio: failures must fall below this share before
	// login evidence stops holding a component Degraded (and below
	// LoginDegradedRatio before it stops holding it Down). Default 0.1.
	LoginRecoveredRatio float64

	// MaxPending is how many records (probes plus transitions) the
	// monitor keeps while the store cannot take them; beyond it the
	// oldest probe results are dropped, and when transitions alone are
	// more, the oldest transitions too (each drop of transitions is
	// logged as an error). Default 10000.
	MaxPending int
	// Retention is how long probe results are kept: the monitor deletes
	// older ones once an hour. Default 100 days (the status page shows
	// 90); negative keeps them for ever. Transitions are always kept.
	Retention time.Duration
}

// loginSlots is how many slots the login window is divided into; the
// window slides by one slot (LoginWindow/12) at a time.
const loginSlots = 12

// pruneEvery is how often the monitor deletes old probe results.
const pruneEvery = time.Hour

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Interval:            5 * time.Second,
		ProbeTimeout:        3 * time.Second,
		SlowProbe:           time.Second,
		FailuresToDown:      3,
		SuccessesToRecover:  3,
		ProbeWindow:         10,
		DegradedProbes:      3,
		RecoveredProbes:     1,
		LoginWindow:         2 * time.Minute,
		MinLogins:           10,
		LoginDegradedRatio:  0.25,
		LoginDownRatio:      0.6,
		LoginRecoveredRatio: 0.1,
		MaxPending:          10000,
		Retention:           100 * 24 * time.Hour,
	}
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	d := DefaultConfig()
	setDefault(&c.Interval, d.Interval)
	if c.ProbeTimeout == 0 {
		c.ProbeTimeout = min(d.ProbeTimeout, c.Interval)
	}
	if c.SlowProbe == 0 {
		c.SlowProbe = d.SlowProbe
		if c.ProbeTimeout > 0 && c.SlowProbe >= c.ProbeTimeout {
			c.SlowProbe = c.ProbeTimeout / 2
		}
	}
	setDefault(&c.FailuresToDown, d.FailuresToDown)
	setDefault(&c.SuccessesToRecover, d.SuccessesToRecover)
	setDefault(&c.ProbeWindow, d.ProbeWindow)
	setDefault(&c.DegradedProbes, d.DegradedProbes)
	switch {
	case c.RecoveredProbes == 0:
		c.RecoveredProbes = d.RecoveredProbes
	case c.RecoveredProbes < 0:
		c.RecoveredProbes = 0
	}
	setDefault(&c.LoginWindow, d.LoginWindow)
	setDefault(&c.MinLogins, d.MinLogins)
	setDefault(&c.LoginDegradedRatio, d.LoginDegradedRatio)
	setDefault(&c.LoginDownRatio, d.LoginDownRatio)
	setDefault(&c.LoginRecoveredRatio, d.LoginRecoveredRatio)
	setDefault(&c.MaxPending, d.MaxPending)
	setDefault(&c.Retention, d.Retention)
	return c
}

// Validate reports every problem with c (after WithDefaults) at once.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Interval < 10*time.Millisecond {
		bad("interval %v is under 10ms", c.Interval)
	}
	if c.ProbeTimeout <= 0 || c.ProbeTimeout > c.Interval {
		bad("probe timeout %v is not in (0, interval %v]", c.ProbeTimeout, c.Interval)
	}
	if c.Concurrency < 0 {
		bad("concurrency %d is negative", c.Concurrency)
	}
	if c.SlowProbe <= 0 {
		bad("slow probe threshold %v is not positive", c.SlowProbe)
	} else if c.ProbeTimeout > 0 && c.SlowProbe >= c.ProbeTimeout {
		// A probe still running at ProbeTimeout is cut off and fails, so
		// no probe could ever count as slow.
		bad("slow probe threshold %v is not shorter than probe timeout %v, so no probe could count as slow", c.SlowProbe, c.ProbeTimeout)
	}
	if c.FailuresToDown < 1 {
		bad("failures to down %d is under 1", c.FailuresToDown)
	}
	if c.SuccessesToRecover < 1 {
		bad("successes to recover %d is under 1", c.SuccessesToRecover)
	}
	if c.ProbeWindow < 1 || c.ProbeWindow > 1000 {
		bad("probe window %d is not in [1, 1000]", c.ProbeWindow)
	}
	if c.DegradedProbes < 1 || c.DegradedProbes > c.ProbeWindow {
		bad("degraded probes %d is not in [1, probe window %d]", c.DegradedProbes, c.ProbeWindow)
	}
	if c.RecoveredProbes < 0 || c.RecoveredProbes >= c.DegradedProbes {
		bad("recovered probes %d is not in [0, degraded probes %d)", c.RecoveredProbes, c.DegradedProbes)
	}
	if c.LoginWindow < loginSlots*time.Millisecond {
		bad("login window %v is under %v", c.LoginWindow, loginSlots*time.Millisecond)
	}
	if c.MinLogins < 1 {
		bad("min logins %d is under 1", c.MinLogins)
	}
	if !(0 < c.LoginRecoveredRatio && c.LoginRecoveredRatio < c.LoginDegradedRatio &&
		c.LoginDegradedRatio <= c.LoginDownRatio && c.LoginDownRatio <= 1) {
		bad("login ratios must satisfy 0 < recovered (%v) < degraded (%v) <= down (%v) <= 1",
			c.LoginRecoveredRatio, c.LoginDegradedRatio, c.LoginDownRatio)
	}
	if c.MaxPending < 1 {
		bad("max pending %d is under 1", c.MaxPending)
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("health config: %w", errors.Join(errs...))
}

// setDefault sets *v to def when *v is the zero value.
func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}
