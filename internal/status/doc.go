// Package status turns measured health into what Varde publishes about
// itself: each component's public state, 90-day uptime, incidents with
// their timelines, people affected and root-cause analyses, planned
// maintenance, and resilience reports. Nothing here is typed in by hand
// except operators' notes, RCAs and maintenance announcements.
//
// # Components
//
// Every component the node's health.Monitor watches — the node itself
// ("node:<name>"), the store and each provider — is published with the
// monitor's state mapped to a public one (up → operational, degraded,
// down, unknown), or maintenance while an announced window covers it and
// nothing worse is measured. Other nodes of a cluster appear as
// "node:<name>" from the probe records they write to the shared store: a
// node that has written none for three probe intervals is silent, and
// down. Each node serves the page from its own view.
//
// A node cannot record its own death, so the others do: each node's
// Engine records a transition of its own view of every other node when
// it falls silent (down, reason "silent", since about three intervals
// before it was found so) and when it is heard again (up), opens and
// resolves incidents for it as for any component, and reports count a
// node down while any node found it silent. If every node is silent,
// nobody records it.
//
// The overall state is the worst component's, except that a node down
// while another node is operational, or a way to log in down while
// another is operational or degraded, makes it degraded, not down:
// people still log in (ADR 66). It is down when nobody can.
//
// A node that is gone leaves the page instead (ADR 20): one that
// stopped cleanly (it records its departure, store.Nodes), one an
// operator forgot (ForgetNode, varde nodes forget), and one silent for
// Config.NodeGoneAfter (default 24 h). A departure stands until the node
// records a probe result again. Each engine then ends its view of the
// node (a transition to unknown) and resolves its open incident with a
// timeline entry giving the reason (node_stopped, node_forgotten,
// node_gone), its duration ending then; reports still list the node for
// periods in which it ran.
//
// # Incidents
//
// The Engine runs every Config.Interval on every node. A component that
// has been degraded or down for Config.OpenAfter (default 1 min) opens
// an incident, unless an announced maintenance window covers it that was
// announced by the time the run began (a window announced while the
// component is already unhealthy does not stop its incident). Its
// start is when the evidence began (the first failed probe or failed
// login of the run that made it unhealthy), or, if that was during such
// a window for the component, when the window ended: a
// component still recovering from its maintenance opens an incident only
// if it is still unhealthy Config.OpenAfter after the window.
// Maintenance is announced ahead: Announce refuses a window that starts
// more than AnnounceGrace (1 min) in the past, lasts longer than
// MaxWindow (24 h), or names a component the node does not know; and
// CancelMaintenance withdraws only a window that has not begun
// (ErrWindowBegun), since reports ignore cancelled windows and would
// count again downtime already excused; the store decides in the write
// itself whether the window has begun, so one that begins while it is
// being cancelled stays. EndMaintenance ends a window under way now,
// when its work is done early, so downtime after it is not excused. The
// store keeps at most one
// open incident per component, so nodes sharing a store open one
// incident per outage.
//
// An open incident follows the cluster's view of its component: the
// worst of this node's state and the latest state of every other node
// that is not silent (that recorded a probe result within three probe
// intervals), taken from the state its latest probe result left the
// component in or, for a component known from logins only, from its
// latest transition since the incident started. So nodes that disagree
// follow it alike. A change of that state adds a timeline entry (never
// one that repeats the last) and a worse one raises the severity. Once
// no node measures the component unhealthy the incident is recovering
// (its duration ends when the last node measured it up); it resolves
// when the component has stayed up for Config.ResolveAfter (default
// 5 min), and relapses if it goes bad before. An open incident whose
// component neither this node monitors nor any live node probes (it was
// removed from the configuration) is resolved at once, its timeline
// saying why (reason "component_removed").
//
// The root-cause analysis is due 72 hours after resolution (RCADeadline);
// the page marks it overdue once the clock passes that. An incident whose
// analysis is owed stays on the page after its 90 days, until the
// analysis is published: the newest MaxOwedKept (100) of those resolved
// before the 90 days, so the summary's cost stays bounded however many
// an operator leaves unwritten. RCACollector gives the same to
// Prometheus (how many are overdue, when the next one owed falls due),
// so operators are alerted before the deadline too.
//
// # People affected
//
// Counted, not estimated, from the audit log over the incident's window
// (see package broker for the events): every "authentication" failure
// through the component is a failed attempt, except cancellations,
// unverified responses (which anyone can forge), logins through a
// provider the relying party does not accept and logins the provider
// vouched for at a level the relying party does not accept (in both the
// provider worked, and Varde's policy refused the person), and failures
// of the node's own (including a session it could not start, or a
// person its store could not find or create), and good results that came
// back after the login attempt expired (the person took too long); a
// login through Varde's own passkey provider that failed on an error of
// Varde's, internal, store_unavailable (its store could not be
// reached) or outcome_unknown (a write of its ceremony got no answer),
// counts, since through it the person could not get in, but from the
// provider's own record of its ceremony only when the ceremony was
// found (provider.DetailCeremony), begun for the attempt the record
// then names with the browser (provider.Tracer), so retries are one
// person; its other failures (a response that does not verify, to a
// ceremony made up or used already) anyone can send, and count for
// nothing. A recovery or help desk code typed for a login the broker
// holds is such a ceremony, found: it counts when the code could not be
// checked or the login not finished on Varde's side, and never when
// the code was rejected for what was typed (one that cannot be a code,
// a wrong, used or expired one, too many tries, a made-up form cookie),
// which is the person's mistake or anyone's junk, even as recorded by
// a node that predates the ceremony detail; one through
// an upstream eID that failed on Varde's side (its login state could
// not be stored or taken, or the node failed itself) counts against the
// component its event names in provider.DetailFault ("store", or the
// node's "node:<name>"), never against the eID. The eID's own record
// of a failure (provider.MethodUpstream) counts for nothing else: the
// broker records the same failure again with its attempt and browser,
// and one with no attempt behind it (a callback whose state is missing,
// repeated, made up or spent) anyone can send; and
// so is every login attempt left with no provider it may use
// ("routing" failures, once per attempt however often the page is
// reloaded). An attempt is affected if it failed through the component,
// was left with nothing, or was headed for the component when it was
// down: the person chose it, or the relying party asked for it by
// provider_hint ("routing" events via "start" or "hint"; a person who
// merely saw it listed as unavailable and chose another is not counted,
// since nothing shows they wanted it). An affected attempt that later
// succeeded through another provider was rerouted. A
// person is counted once: by the person an affected attempt finally
// authenticated, otherwise by the person who authenticated from the same
// browser in the window, otherwise by the browser (a pseudonymous
// first-party cookie; people who never got in are still counted once
// each).
//
// The engine recounts an open incident every Config.RecountEvery
// (default 30 s) and once more when it resolves. Each recount carries on
// from the last one this node made, reading only the audit events
// appended since: the audit log's Seq numbers are gapless and become
// visible in order on every node (store.AuditLog), so the events after
// the last one read are all those not yet counted, whichever node logged
// them and whatever time they carry. Events stamped after the window (a
// node whose clock runs ahead, a failure after the recovery) are held
// until the window reaches them. The whole window is read again only
// when this node has no count to carry on from (it started, or the
// incident is new to it), when the window must shrink (a recovery dated
// before the last count), or when it grows after the count's grace had
// ended (a relapse more than CountGrace after recovery).
//
// # Uptime and reports
//
// The 90-day bars are the share of recorded probe results that
// succeeded, per day of Service.Zone (the pages' zone, ADR 39): from
// midnight to midnight there, 23 or 25 hours on the days the clocks
// change, a day whose midnight the clocks skip starting when they jump.
// The last bar is today there; the node list (Nodes) finds each node's
// last day alike. Reports take availability from the recorded
// state changes instead (time not down, over the measured span minus
// announced maintenance), since probe results are pruned after 100 days
// but transitions are kept. The measured span is the part of the period
// from the store's oldest health record (Report.DataFrom) on, named as
// Report.MeasuredFrom and MeasuredTo: time before that record holds no
// outage only for want of records, so it is not counted as available.
// A component first measured later (ComponentReport.MeasuredFrom) is
// measured from its own first record.
// A period with nothing measured has no availability (nil), and
// Report.Unmeasured says why. A window counts only from when it was announced,
// and excuses only down and degraded time that began after that, so a
// window recorded over an outage already measured changes nothing. A report counts incidents, people affected and
// recovery times by when incidents started, and RCAs by when they fell
// due, so an incident resolved late in one quarter has its RCA counted
// in the next.
//
// # Cost of a page view
//
// The page, its API and feed are public, so a view must not cost the
// store much. Service.Summary computes the page once and serves that
// value to every caller for Config.CacheFor (default 10 s, the API's
// max-age); callers that arrive while it is being computed wait for it.
// A change of state therefore shows on the page at most CacheFor after
// the node measured it. The daily probe counts behind the uptime bars
// are read once for days that ended more than two hours ago (late
// records of a node that lost the store for a while still count) and
// kept in memory, with the zone they are days of: counts kept for
// another zone's days are read again; each new Summary reads only the
// days after that. The store counts in buckets of one width, so the
// days are read in runs of days of one length, a run between two
// changes of the clocks and one for each day of a change.
//
// An incident's page and API answer (Service.Incident) are kept alike,
// one per ID for CacheFor, and so is the answer that an ID names no
// incident, so requests for made-up IDs do not each read the store; at
// most 1000 IDs are kept, those soonest to expire making way, and at
// most four are read at once: a request that would start a fifth gets
// ErrBusy (the page answers 503 with Retry-After). A note or
// RCA written through this node's service shows on it at once, and so
// does a maintenance window announced, cancelled or ended through it
// (on the page and in reports); other nodes, and every node for one
// written by the operator's commands (varde status, another process),
// show it at most CacheFor later, which those commands say.
//
// Reports (Service.Report) are shared alike, one per period and title,
// each for CacheFor, a period long closed included: the RCAs, notes and
// cancelled maintenance that can still change it are written by
// operators' commands and other nodes, which this node cannot hear, so
// it reads them again at most CacheFor later. What costs is the state
// changes, read from the first one recorded to know the state at the
// period's start. Those before the zone's last midnight at least two hours
// ago are read once per component and period and kept (for a day, so
// that records a node cut off from the store wrote later still count);
// a report computed again reads only the state changes since. At most
// two reports are computed at once: a request that would start a third
// gets ErrBusy (the page answers 503 with Retry-After), while requests
// for a report being computed wait for it.
package status
