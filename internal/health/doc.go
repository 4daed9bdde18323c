// Package health decides whether each component — an upstream provider,
// the built-in passkey provider, the store, a node — is up, degraded or
// down, from measurement only, and keeps the history of it.
//
// # States
//
// A component is Unknown until there is evidence (no probe has succeeded
// yet, or too few logins were seen), then Up, Degraded (working, but
// slowly or with some failures) or Down. Unknown and Degraded are usable:
// the broker may send logins to them, preferring Up, then Degraded
// (known to log people in) to Unknown (after a node's first round of
// probes, one whose probes have not yet succeeded); Down is not.
// "Maintenance" is an operator's announcement, not a measurement, and
// belongs to the status package.
//
// A node that starts does not begin Unknown when the fleet knows
// better: before it is ready (its first round seeds before it probes,
// within Config.ProbeTimeout, and the node answers 503 at /readyz until
// that round ends, though its listener answers at once however slow
// the store; each later round seeds components added since, before
// their first probe) it reads each node's
// latest probe result of the last three intervals from the store and
// takes, for each probed component, the state at least half of those
// nodes found it in or worse (the median; of two nodes, the worse):
// transition reason "seeded". A result's state is that node's whole
// verdict, its logins included, so one node whose own logins through a
// provider failed does not make a restarted node shun a provider the
// rest of the fleet finds working. So a node restarted during an outage
// does not offer a provider the other nodes find Down while its own
// probes catch up. A state the nodes' own probes show (a failed probe
// in the span for Down, a failed or slow one for Degraded) is seeded as
// probe evidence: the node's own probes lead it out with the usual
// hysteresis, as if it had seen the failures itself. A state the
// nodes' logins alone put it in (their probes pass) is seeded as login
// evidence, one failed login when it was last seen: its own passing
// probes do not lift it while the other nodes still hold it, and it
// lapses as theirs does once that failure leaves the login window.
// With no recent results (a single node, or a fleet started together)
// components start Unknown, and a serving node answers 503 at /readyz
// until its first round has probed them (Monitor.Probed; each probe
// within Config.ProbeTimeout), so a load balancer sends it no login
// while all it knows of a provider is Unknown.
//
// # Evidence
//
// Active probes: every Config.Interval (default 5 s) the Monitor runs
// each component's Prober, all at once (or Config.Concurrency at a
// time), each within Config.ProbeTimeout (default 3 s, so a round in
// which every upstream hangs still ends within the interval; a prober
// that ignores its deadline is abandoned and counted as a timeout, and
// not started again while it runs: each round it still runs is a
// timeout too, recorded with how long it has run, and no new sample of
// the duration histogram). This package speaks no upstream protocol:
// the node probes its upstream providers with their own Probe (package
// oidcup), which fetches the discovery document and JWKS as a login
// does, refusing redirects, and checks that the token endpoint answers.
// PingProber wraps such a function, or one such as the store's Ping.
//
// Passive signals: the broker reports how each real login through a
// component ended (Monitor.Observe): success, or error for a failure of
// the component's own, an eID's time-out included. A failure that
// reached Varde only through the person's browser, which anyone can
// forge, is not reported (see package broker), and neither is a login
// nobody finished: anyone can start logins and walk away, so that must
// not make a working provider down. The Monitor keeps counts over a
// sliding window (Config.LoginWindow, default 2 min, in 12 slots),
// timed by the monotonic clock: the wall clock set back or forward (by
// NTP, say) neither drops failed logins early nor keeps them longer, and
// a Degraded verdict from logins lapses a whole window after its failed
// logins began, by the same clock, not an hour later when the wall
// clock was set back by an hour.
//
// A login the component answered for, naming an account, but that was
// refused on what it said about that account (an upstream eID's signed
// ID token with no identifier Varde accepts, or an acr it does not map:
// Monitor.ObserveRefusal) is evidence about the component only as one
// of many accounts. One account may be refused on every try, and a
// person who retries, or who holds such an account on purpose, must not
// make a working provider down for everyone; so a refused account counts
// as one failed login while its refusal is in the window, however often
// it tries. Many accounts refused are the component failing everyone
// (its acr values or claims changed, or its configuration at Varde is
// wrong), and make it Degraded or Down like any failed logins, with the
// transition reason login_refusals when they are most of the failures.
//
// Each kind of evidence gives its own verdict and the component's state
// is the worse of the two (a verdict of "no evidence" defers to the
// other), so a provider whose probes pass but whose logins fail is down.
//
// # Hysteresis
//
// The rules below have a gap between the way in and the way out, so a
// component on the edge stays put instead of flapping. With the defaults
// (see DefaultConfig; every threshold is a Config field):
//
//   - Down after 3 failed probes in a row (detection 10–15 s after an
//     outage starts). Down stays Down until 3 probes in a row succeed.
//   - Degraded when at least 3 of the last 10 probes failed or were slow
//     (slow: over 1 s). Back to Up only when at most 1 of the last 10 was
//     bad and the last 3 were quick successes. A component that just left
//     Down is Degraded until its failures leave the window.
//   - From logins, once at least 10 are in the window: Degraded at a
//     failure share of 25 %, Down at 60 %. Down holds until the share is
//     below 25 %, Degraded until it is below 10 %. With fewer than 10
//     logins in the window there is too little to judge, but a Down
//     provider gets no logins, so an emptying window says nothing about
//     whether it works: Down holds until its failed logins have left the
//     window, then lapses to Degraded (reason login_retry), where it is
//     offered again. New logins decide from there (10 in the window:
//     Down again at 60 % failures, Up below 10 %); with too few, it stays
//     Degraded until a whole window has passed without a failed login,
//     and only then does the login verdict lapse and the probes decide.
//     So a provider whose probes pass but whose logins all fail is never
//     Up: it is retried, Degraded, about once per window.
//
// # What is stored
//
// Through store.Health, in batches at the end of every probe round
// (Monitor.Flush): every probe result (component, node, start, duration,
// ok, failure reason or "slow", state after it) and every transition
// (from, to, reason, when, and Since: when the evidence began, e.g. the
// first failed probe of the run that made the component Down, so
// Time - Since is the detection time). Every node records its own view.
// A round's flush is bounded by Config.Interval, so a store that hangs
// does not stop the probing or freeze the states logins are routed by.
// While the store cannot take them, records wait in memory, at most
// Config.MaxPending (oldest probe results dropped first; transitions
// only when they alone are more, and that is logged). Probe results
// older than Config.Retention (default 100 days) are pruned hourly;
// transitions are kept for incidents and reports.
//
// # Metrics
//
//	varde_component_state{component,state}        1 for the current state, 0 for the others
//	varde_probe_duration_seconds{component}       histogram of the durations of probes started
//	varde_probe_failures_total{component,reason}  reason: timeout, connect, status, invalid, error
//	varde_component_transitions_total{component,state}
//	varde_health_record_errors_total              failed writes of health records
//	varde_health_records_dropped_total            records (probe results, then transitions) dropped while the store was unavailable
//
// # Use
//
// The composition root builds one Monitor per node (NewMonitor), adds the
// components (Add), seeds it (Seed) before the node serves, runs it (Run) and hands it to the broker, which reads
// State on every login page and calls Observe with login outcomes. The
// status page, webhooks and the broker's routing learn of changes through
// Subscribe. Time is injected (Options.Now), and tests drive rounds with
// Tick instead of waiting for Run's ticker.
//
// What a component's history means for incidents, uptime and reports is
// the status package's business; storage is the store's.
package health
