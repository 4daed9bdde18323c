package oidc

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the provider's Prometheus metrics.
type Metrics struct {
	tokensIssued *prometheus.CounterVec
	// refreshRetries counts refreshes taken for retries after a lost
	// answer (ADR 55).
	refreshRetries prometheus.Counter
	revocations    *prometheus.CounterVec
	introspections *prometheus.CounterVec
	sessionEnds    *prometheus.CounterVec
	// logoutSignAbandoned counts signings of a session end's logout
	// tokens given up on.
	logoutSignAbandoned prometheus.Counter
	errors              *prometheus.CounterVec
	duration            *prometheus.HistogramVec
}

// NewMetrics builds the metrics and registers them with reg (nil: keep
// them unregistered):
//
//	varde_tokens_issued_total{grant_type}
//	varde_refresh_retries_total
//	varde_token_revocations_total{result}
//	varde_token_introspections_total{result}
//	varde_backchannel_logout_session_ends_total{result}
//	varde_backchannel_logout_signatures_abandoned_total
//	varde_oidc_errors_total{endpoint,error}
//	varde_oidc_request_duration_seconds{endpoint}
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		tokensIssued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "varde_tokens_issued_total",
			Help: "Token responses issued, by grant type.",
		}, []string{"grant_type"}),
		refreshRetries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "varde_refresh_retries_total",
			Help: "Refreshes taken for a client's retry after an answer lost in transit (docs/adr/0055): a rotated refresh token presented again by its own client within oidc.refresh_reuse_interval, nothing of the lost answer used; each issued a fresh pair and revoked the lost one. Counted in varde_tokens_issued_total too.",
		}),
		revocations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "varde_token_revocations_total",
			Help: "Revocation requests answered with success (RFC 7009), by what they did: revoked, already_revoked, unknown, other_client.",
		}, []string{"result"}),
		introspections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "varde_token_introspections_total",
			Help: "Introspection requests answered (RFC 7662), by what was found: active, or why not (unknown, expired, used, replaced, revoked, not_permitted, ended).",
		}, []string{"result"}),
		sessionEnds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "varde_backchannel_logout_session_ends_total",
			Help: "Ended sessions whose logout tokens were queued (Back-Channel Logout), by how: settled (by the node that ended the session), settled_late (by housekeeping, after a node stopped or a write failed), settled_timed_out (by housekeeping, for a session that reached its lifetime or idle timeout), failed (an attempt that left the end pending, to be tried again later), or given_up (an end that failed 12 times, about a day, and was dropped, logged with its clients).",
		}, []string{"result"}),
		logoutSignAbandoned: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "varde_backchannel_logout_signatures_abandoned_total",
			Help: "Signings of a session end's logout tokens given up on because the signer gave no answer in time; at most one (of up to four signatures) is left running while the signer is stuck, and the session ends wait for housekeeping.",
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "varde_oidc_errors_total",
			Help: "Protocol errors returned, by endpoint and error code.",
		}, []string{"endpoint", "error"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "varde_oidc_request_duration_seconds",
			Help:    "Time spent serving OpenID Provider endpoints.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"endpoint"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.tokensIssued, m.refreshRetries, m.revocations, m.introspections, m.sessionEnds, m.logoutSignAbandoned, m.errors, m.duration} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}
