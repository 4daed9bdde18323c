package config

import (
	"time"

	"github.com/varde-eid/varde/internal/health"
)

// Health configures how this node probes its components (the store and
// every provider) and when it calls one down or up again. Unset fields
// take package health's defaults (health.DefaultConfig); the other
// thresholds of health.Config keep their defaults.
type Health struct {
	// Interval is the time between probe rounds. Default 5s; at least 10ms.
	Interval time.Duration `yaml:"interval"`
	// ProbeTimeout bounds each probe. Default 3s or Interval if shorter;
	// at most Interval.
	ProbeTimeout time.Duration `yaml:"probe_timeout"`
	// SlowProbe: a successful probe slower than this counts as slow
	// (evidence for degraded). Default 1s, or half of ProbeTimeout if
	// that is 1s or less; shorter than ProbeTimeout, since a probe that
	// takes ProbeTimeout fails and is never slow.
	SlowProbe time.Duration `yaml:"slow_probe"`
	// FailuresToDown is how many probes in a row must fail before a
	// component is down. Default 3: with the default interval an outage
	// is detected 10–15 s after it starts.
	FailuresToDown int `yaml:"failures_to_down"`
	// SuccessesToUp is how many probes in a row must succeed before a
	// down component leaves down. Default 3.
	SuccessesToUp int `yaml:"successes_to_up"`
}

// applyDefaults fills the unset fields from health.DefaultConfig.
func (h *Health) applyDefaults() {
	d := health.DefaultConfig()
	setDuration(&h.Interval, d.Interval)
	if h.Interval > 0 {
		// An interval that makes no sense is reported on its own, not
		// through the defaults that would follow from it.
		setDuration(&h.ProbeTimeout, min(d.ProbeTimeout, h.Interval))
	} else {
		setDuration(&h.ProbeTimeout, d.ProbeTimeout)
	}
	if h.SlowProbe == 0 {
		h.SlowProbe = d.SlowProbe
		if h.ProbeTimeout > 0 && h.SlowProbe >= h.ProbeTimeout {
			h.SlowProbe = h.ProbeTimeout / 2
		}
	}
	if h.FailuresToDown == 0 {
		h.FailuresToDown = d.FailuresToDown
	}
	if h.SuccessesToUp == 0 {
		h.SuccessesToUp = d.SuccessesToRecover
	}
}

// minHealthInterval is the shortest probe interval health.Config accepts.
const minHealthInterval = 10 * time.Millisecond

func (h *Health) validate(p *problems) {
	if h.Interval < minHealthInterval {
		p.add("health.interval", "%v is under %v", h.Interval, minHealthInterval)
	}
	if h.ProbeTimeout <= 0 {
		p.add("health.probe_timeout", "must be positive")
	} else if h.Interval > 0 && h.ProbeTimeout > h.Interval {
		p.add("health.probe_timeout", "%v is longer than health.interval %v", h.ProbeTimeout, h.Interval)
	}
	if h.SlowProbe <= 0 {
		p.add("health.slow_probe", "must be positive")
	} else if h.ProbeTimeout > 0 && h.SlowProbe >= h.ProbeTimeout {
		// A probe still running at ProbeTimeout is cut off and fails, so
		// no probe could ever count as slow.
		p.add("health.slow_probe", "%v is not shorter than health.probe_timeout %v: a probe that takes that long times out and fails, "+
			"so none would ever count as slow; make slow_probe shorter than probe_timeout", h.SlowProbe, h.ProbeTimeout)
	}
	if h.FailuresToDown < 1 {
		p.add("health.failures_to_down", "must be at least 1")
	}
	if h.SuccessesToUp < 1 {
		p.add("health.successes_to_up", "must be at least 1")
	}
}

// Monitor returns the section as the health monitor's configuration,
// every other threshold at its default.
func (h Health) Monitor() health.Config {
	return health.Config{
		Interval:           h.Interval,
		ProbeTimeout:       h.ProbeTimeout,
		SlowProbe:          h.SlowProbe,
		FailuresToDown:     h.FailuresToDown,
		SuccessesToRecover: h.SuccessesToUp,
	}.WithDefaults()
}
