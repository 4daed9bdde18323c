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
			Help: "Attempts to deliver status notifications, by result: delivered, retry, abandoned.",
		}, []string{"result"}),
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
			Help:    "Time each POST of a status notification took, failed ones included.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
	}
	for _, r := range []string{resultDelivered, resultRetry, resultAbandoned} {
		m.deliveries.WithLabelValues(r)
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
