package webhook

import "github.com/prometheus/client_golang/prometheus"

// metrics are the notifier's Prometheus collectors.
type metrics struct {
	deliveries *prometheus.CounterVec
	enqueued   prometheus.Counter
	dropped    prometheus.Counter
	duration   prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "varde_webhook_deliveries_total",
			Help: "Attempts to deliver from the outbox, counted once recorded there, by event (component_state, backchannel_logout) and result: delivered, retry, abandoned.",
		}, []string{"event", "result"}),
		enqueued: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "varde_webhook_enqueued_total",
			Help: "Status notifications written to the outbox.",
		}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "varde_webhook_events_dropped_total",
			Help: "Component state changes dropped unnotified because too many were waiting for the outbox.",
		}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "varde_webhook_attempt_duration_seconds",
			Help:    "Time each POST from the outbox took (status notifications and logout tokens), failed ones included.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.deliveries, m.enqueued, m.dropped, m.duration} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

// zero makes the attempt series of event exist at 0 before its first
// attempt, so a rate over them starts at the first failure, not after.
func (m *metrics) zero(event string) {
	for _, r := range []string{resultDelivered, resultRetry, resultAbandoned} {
		m.deliveries.WithLabelValues(event, r)
	}
}

// otherEvent is the "event" label of an attempt at a delivery whose
// event nobody registered (SendTo): the label takes no value from the
// store that the code did not name.
const otherEvent = "other"
