package store

import (
	"context"
	"time"
)

// Incidents holds incidents: periods in which a component was degraded or
// down, opened and resolved from measurement by package status, with a
// timeline of automatic entries and operator updates and, after
// resolution, a root-cause analysis.
//
// At most one incident per component is open at a time, so that every
// node of a cluster can run the same rules against the shared store and
// the cluster still opens one incident per outage: OpenIncident is the
// compare-and-swap that decides.
type Incidents interface {
	// OpenIncident stores in, which must be open (zero ResolvedAt), and
	// its Updates. It returns ErrConflict, and stores nothing, if the ID
	// is taken or in.Component already has an open incident. On success
	// it sets in.Version to 1 and numbers in.Updates from 1 (setting
	// their IncidentID and Seq).
	OpenIncident(ctx context.Context, in *Incident) error
	// GetIncident returns the incident with its timeline; ErrNotFound if
	// there is none.
	GetIncident(ctx context.Context, id string) (*Incident, error)
	// ListIncidents returns the incidents q selects, with their
	// timelines, the most recently started first.
	ListIncidents(ctx context.Context, q IncidentQuery) ([]*Incident, error)
	// LastResolvedBy returns the latest ResolvedAt at or before t among
	// resolved incidents, in UTC; the zero time if none was resolved by
	// then. It reads no timeline.
	LastResolvedBy(ctx context.Context, t time.Time) (time.Time, error)
	// UpdateIncident replaces in's stored fields (not its timeline) if
	// the stored Version equals in.Version, and then increments
	// in.Version: ErrConflict if another writer got there first,
	// ErrNotFound if there is no such incident. Component, StartedAt and
	// OpenedAt never change.
	UpdateIncident(ctx context.Context, in *Incident) error
	// AddIncidentUpdate appends u to its incident's timeline and sets
	// u.Seq; ErrNotFound if there is no such incident.
	AddIncidentUpdate(ctx context.Context, u *IncidentUpdate) error
}

// IncidentQuery selects incidents. Zero fields select everything.
type IncidentQuery struct {
	// Component, if set, selects incidents whose Component or Components
	// include it.
	Component string
	// Open selects only incidents that are not resolved.
	Open bool
	// RCAOwed selects only resolved incidents whose root-cause analysis
	// is not published.
	RCAOwed bool
	// Since and Until select incidents that overlap [Since, Until): an
	// incident overlaps if it started before Until and is open or was
	// resolved at or after Since. A zero bound is no bound.
	Since, Until time.Time
	// Limit, if positive, returns at most that many (the newest).
	Limit int
}

// Incident severities: the worst state the component was measured in.
const (
	SeverityDegraded = HealthDegraded
	SeverityDown     = HealthDown
)

// Incident is one outage or degradation of a component.
type Incident struct {
	ID string
	// Component is the component whose measured state opened the
	// incident; Components are all that were affected, Component first.
	Component  string
	Components []string
	// Severity is the worst state measured during the incident
	// (Severity*).
	Severity string
	// StartedAt is when the component left its healthy state (the start
	// of the evidence); OpenedAt is when the incident was opened, at
	// least the opening threshold later; ResolvedAt is when it was
	// resolved (zero while open). RecoveredAt is when the component was
	// last measured healthy again (zero while it is not); the incident
	// resolves once it has stayed healthy for a while, and its duration
	// is RecoveredAt - StartedAt.
	StartedAt   time.Time
	OpenedAt    time.Time
	RecoveredAt time.Time
	ResolvedAt  time.Time
	// People affected, counted from the audit log over
	// [StartedAt, RecoveredAt or now): distinct persons (or, for people
	// never identified, distinct browsers) whose logins failed or were
	// rerouted, failed login attempts, and rerouted attempts. CountedAt
	// is when these figures last changed (first counted, while they have
	// not): a recount that finds them as they were leaves it.
	PeopleAffected int64
	FailedAttempts int64
	Rerouted       int64
	CountedAt      time.Time
	// RCA is the operator's root-cause analysis (plain text), published
	// at RCAPublishedAt; both empty until then. It is due 72 hours after
	// ResolvedAt.
	RCA            string
	RCAPublishedAt time.Time
	// Version is the compare-and-swap counter of UpdateIncident.
	Version int64
	// Updates is the timeline, oldest first (filled by Get and List; nil
	// when it is empty).
	Updates []*IncidentUpdate
}

// Timeline entry kinds.
const (
	// UpdateOpened: the incident was opened from measurement.
	UpdateOpened = "opened"
	// UpdateState: the component's measured state changed while open.
	UpdateState = "state"
	// UpdateRecovered: the component is measured healthy again.
	UpdateRecovered = "recovered"
	// UpdateResolved: the component stayed healthy; the incident is over.
	UpdateResolved = "resolved"
	// UpdateOperator: an operator's note.
	UpdateOperator = "operator"
	// UpdateRCA: the root-cause analysis was published.
	UpdateRCA = "rca"
)

// IncidentUpdate is one entry of an incident's timeline.
type IncidentUpdate struct {
	IncidentID string
	// Seq numbers entries from 1 within the incident.
	Seq  int
	Time time.Time
	// Kind is one of the Update* constants.
	Kind string
	// State is the component's state for automatic entries (Health*).
	State string
	// Reason is the machine-readable cause of automatic entries (a
	// health transition reason).
	Reason string
	// Message is an operator's text; Author who wrote it ("varde" for
	// automatic entries).
	Message string
	Author  string
}

// Maintenances holds planned maintenance announced ahead by operators.
type Maintenances interface {
	// CreateMaintenance returns ErrConflict if the ID is taken.
	CreateMaintenance(ctx context.Context, m *Maintenance) error
	// ListMaintenance returns announcements whose [Start, End) overlaps
	// [since, until) (Start < until and End > since; a zero bound, or a
	// zero End, is no bound), cancelled ones included, by Start.
	ListMaintenance(ctx context.Context, since, until time.Time) ([]*Maintenance, error)
	// GetMaintenance returns the window with this ID, cancelled or not;
	// ErrNotFound if unknown.
	GetMaintenance(ctx context.Context, id string) (*Maintenance, error)
	// CancelMaintenance sets CancelledAt to now, once: cancelling again
	// keeps the first time. Only a window whose Start is after now is
	// cancelled, decided in the same write, so one that begins meanwhile
	// is not: a window begun or ended and not cancelled before is
	// ErrConflict. ErrNotFound if unknown.
	CancelMaintenance(ctx context.Context, id string, now time.Time) error
	// EndMaintenance sets End to now, keeping the end it replaces as
	// AnnouncedEnd, for a window under way (Start
	// before now, End after it, not cancelled), decided in the same
	// write, so it cannot lengthen a window that has ended meanwhile or
	// end one not yet begun: any other window is ErrConflict.
	// ErrNotFound if unknown.
	EndMaintenance(ctx context.Context, id string, now time.Time) error
}

// Maintenance is one planned maintenance window.
type Maintenance struct {
	ID         string
	Components []string
	Start, End time.Time
	Title      string
	Message    string
	CreatedAt  time.Time
	// CancelledAt is set when the announcement was withdrawn.
	CancelledAt time.Time
	// AnnouncedEnd is the end the window was announced with, set when it
	// was ended early (EndMaintenance); End is then when it ended.
	AnnouncedEnd time.Time
}

// Webhooks is the outbox of signed notifications to relying parties:
// deliveries wait here until their receiver accepts them, so a restart or
// a receiver that is down loses none. Any node may deliver any of them;
// a claim leases a delivery to one node for a while.
type Webhooks interface {
	// EnqueueWebhooks stores new deliveries, all or none; ErrConflict if
	// an ID is taken.
	EnqueueWebhooks(ctx context.Context, ds []*WebhookDelivery) error
	// ClaimWebhooks leases up to limit deliveries that are due at now
	// (NextAttemptAt <= now, not delivered, not abandoned, no live lease)
	// to node until leaseUntil and returns them, earliest due first. Two
	// concurrent claims never return the same delivery. With perEndpoint
	// of 1 or more, it leaves out the deliveries of an endpoint (a client
	// and event) beyond perEndpoint less those of it already under a
	// live lease, so one receiver that does not answer, with a backlog,
	// cannot take every slot from the others, also when several nodes
	// claim at once. Every node calls it every poll interval: with
	// nothing due, it should cost a read and no write.
	ClaimWebhooks(ctx context.Context, node string, now, leaseUntil time.Time, limit, perEndpoint int) ([]*WebhookDelivery, error)
	// FinishWebhookAttempt records one attempt of a delivery node holds:
	// d.URL (where the attempt went), d.Attempts, d.LastError,
	// d.DeliveredAt, d.AbandonedAt and d.NextAttemptAt are stored and the
	// lease released; a delivery delivered or abandoned keeps no payload
	// (nor does one Clients.DeleteClient abandons). ErrConflict if the
	// lease is no longer node's,
	// ErrNotFound if unknown.
	FinishWebhookAttempt(ctx context.Context, node string, d *WebhookDelivery) error
	// ListWebhookDeliveries returns clientID's deliveries, newest first,
	// at most limit (all if limit <= 0).
	ListWebhookDeliveries(ctx context.Context, clientID string, limit int) ([]*WebhookDelivery, error)
}

// DeliveryClientRemoved is the LastError of a delivery abandoned because
// its client was removed (Clients.DeleteClient).
const DeliveryClientRemoved = "client removed"

// WebhookDelivery is one notification to one relying party.
type WebhookDelivery struct {
	ID       string
	ClientID string
	// URL is where the delivery goes: the client's URL for its event when
	// it was queued, and then where its last attempt went. Package
	// webhook sends each attempt to the URL the client registers at that
	// moment, so a client that moved its endpoint is not sought at the
	// old one.
	URL string
	// Event names what happened ("component_state"); Payload is the
	// signed body, sent as is.
	Event       string
	Payload     []byte
	ContentType string
	CreatedAt   time.Time
	// NextAttemptAt is when the next attempt is due.
	NextAttemptAt time.Time
	Attempts      int
	LastError     string
	DeliveredAt   time.Time
	// AbandonedAt is set when the sender gave up (a final refusal, too
	// many attempts) or the client was removed.
	AbandonedAt time.Time
}

// AuditQuery selects audit events by time, for counting what happened in
// a period. Zero fields select everything.
type AuditQuery struct {
	// Since and Until bound the event's Time: Since <= Time < Until.
	Since, Until time.Time
	// Types, if set, selects only events of these types.
	Types []string
	// ClientID, if set, selects only events naming this client.
	ClientID string
	// AfterSeq pages through: only events with Seq > AfterSeq.
	AfterSeq int64
	// Limit, if positive, returns at most that many (lowest Seq first).
	Limit int
}

// Nodes holds the departures of nodes: a node records its own when it
// stops cleanly, and an operator records one for a node that will never
// come back. A departure stands until its node records a probe result
// at or after it (the node came back), so package status stops listing
// a node that left instead of showing it down.
type Nodes interface {
	// RecordNodeLeft stores d, replacing the departure stored for d.Node
	// if there is one. If e is not nil it is appended to the audit log
	// in the same write, as AuditLog.AppendAudit appends it.
	RecordNodeLeft(ctx context.Context, d *NodeDeparture, e *AuditEvent) error
	// ListNodeDepartures returns the departure of every node that has
	// one, by node name.
	ListNodeDepartures(ctx context.Context) ([]*NodeDeparture, error)
}

// Why a node left (NodeDeparture.Reason).
const (
	// NodeStopped: the node stopped cleanly and said so.
	NodeStopped = "stopped"
	// NodeForgotten: an operator said the node will never come back.
	NodeForgotten = "forgotten"
)

// NodeDeparture is the latest departure of one node.
type NodeDeparture struct {
	Node   string
	LeftAt time.Time
	// Reason is NodeStopped or NodeForgotten.
	Reason string
}
