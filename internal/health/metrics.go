package health

import "github.com/prometheus/client_golang/prometheus"

// metrics are the monitor's Prometheus collectors.
type metrics struct {
	state       *prometheus.GaugeVec
	duration    *prometheus.HistogramVec
	failures    *prometheus.CounterVec
	transitions *prometheus.CounterVec
	recordErrs  prometheus.Counter
	dropped     prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "varde_component_state",
			Help: "1 for the state each component is in, 0 for the others.",
		}, []string{"component", "state"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "varde_probe_duration_seconds",
			Help:    "Time active health probes took, failed ones included; a round that finds the previous probe still running adds no sample.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"component"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "varde_probe_failures_total",
			Help: "Failed active health probes, by component and reason.",
		}, []string{"component", "reason"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "varde_component_transitions_total",
			Help: "Changes of component state, by component and the state entered.",
		}, []string{"component", "state"}),
		recordErrs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "varde_health_record_errors_total",
			Help: "Failed attempts to write probe results and transitions to the store.",
		}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "varde_health_records_dropped_total",
			Help: "Probe results and transitions dropped unwritten because the store could not take them for too long (probe results first).",
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.state, m.duration, m.failures, m.transitions, m.recordErrs, m.dropped} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

// setState sets component's state gauges: 1 for s, 0 for the others.
func (m *metrics) setState(component string, s State) {
	for _, x := range States() {
		v := 0.0
		if x == s {
			v = 1
		}
		m.state.WithLabelValues(component, string(x)).Set(v)
	}
}
