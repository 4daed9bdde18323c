package status

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// rcaScrapeTimeout bounds the summary a scrape waits for: a store that
// does not answer leaves the metrics out (its own alerts fire), rather
// than holding the scrape.
const rcaScrapeTimeout = 5 * time.Second

var (
	rcasOverdueDesc = prometheus.NewDesc("varde_status_rcas_overdue",
		"Incidents on the status page whose root-cause analysis is past its deadline (72 hours after resolution) and not published, however long ago they were resolved (of those resolved over 90 days ago, the newest 100).", nil, nil)
	rcaNextDueDesc = prometheus.NewDesc("varde_status_rca_next_due_timestamp_seconds",
		"When the earliest root-cause analysis owed and not yet overdue falls due (Unix time); absent when none is owed.", nil, nil)
)

// RCACollector is a prometheus.Collector of the root-cause analyses the
// status page shows owed, from the Summary every page view shares, so
// that operators are alerted before a deadline passes, and after: the
// page marks it overdue for everyone to see.
func (s *Service) RCACollector() prometheus.Collector { return rcaCollector{s} }

type rcaCollector struct{ s *Service }

func (c rcaCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- rcasOverdueDesc
	ch <- rcaNextDueDesc
}

func (c rcaCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), rcaScrapeTimeout)
	defer cancel()
	sum, err := c.s.Summary(ctx)
	if err != nil {
		c.s.log().Warn("status metrics: summary", "err", err)
		return
	}
	var overdue int
	var next time.Time
	for _, in := range sum.Recent {
		switch {
		case in.RCA != "" || in.RCADueAt == nil:
		case in.RCAOverdue:
			overdue++
		case next.IsZero() || in.RCADueAt.Before(next):
			next = *in.RCADueAt
		}
	}
	ch <- prometheus.MustNewConstMetric(rcasOverdueDesc, prometheus.GaugeValue, float64(overdue))
	if !next.IsZero() {
		ch <- prometheus.MustNewConstMetric(rcaNextDueDesc, prometheus.GaugeValue, float64(next.Unix()))
	}
}
