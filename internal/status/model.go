package status

import "time"

// State is a component's public state.
type State string

// Public states. Operational, Degraded and Down come from measurement
// (health.Up, health.Degraded, health.Down); Maintenance from an
// operator's announcement in force; Unknown before the first evidence.
const (
	Operational   State = "operational"
	Degraded      State = "degraded"
	Down          State = "down"
	InMaintenance State = "maintenance"
	Unknown       State = "unknown"
)

// Component kinds.
const (
	KindNode     = "node"
	KindProvider = "provider"
	KindStore    = "store"
)

// Component is one component's current state as this node sees it.
type Component struct {
	ID string `json:"id"`
	// Name is the component's display name by language tag ("en", "nb").
	Name  map[string]string `json:"name"`
	Kind  string            `json:"kind"`
	State State             `json:"state"`
	// Since is when it entered State (omitted when not known).
	Since *time.Time `json:"since,omitempty"`
	// Reason is the machine-readable cause of the last change.
	Reason string `json:"reason,omitempty"`
	// Uptime90 is the share of probes that succeeded over the last 90
	// days, in percent; nil when there were no probes.
	Uptime90 *float64 `json:"uptime_90d_percent,omitempty"`
}

// Day is one day of a component's history, for the uptime bars.
type Day struct {
	// Date is the day's start: midnight in the summary's TimeZone, as an
	// instant (RFC 3339 in UTC, like every time of the API).
	Date time.Time `json:"date"`
	// Day is the calendar date of the day in that zone ("2026-11-22").
	Day string `json:"day"`
	// Probes counts the recorded probe results, OK those that succeeded.
	Probes int64 `json:"probes"`
	OK     int64 `json:"ok"`
	// Percent is 100*OK/Probes; nil when there were no probes.
	Percent *float64 `json:"percent,omitempty"`
	// Worst is the worst state any probe left the component in that day
	// (operational, degraded, down), or unknown without probes.
	Worst State `json:"worst"`
	// Incidents are the IDs of incidents that overlapped the day.
	Incidents []string `json:"incidents,omitempty"`
}

// History is one component's daily history.
type History struct {
	Component string `json:"component"`
	Days      []Day  `json:"days"`
	// Percent is the share of probes that succeeded over all Days; nil
	// when there were none.
	Percent *float64 `json:"percent,omitempty"`
}

// Incident is an incident as published.
type Incident struct {
	ID         string            `json:"id"`
	Title      map[string]string `json:"title"`
	Component  string            `json:"component"`
	Components []string          `json:"components"`
	// Severity is degraded or down.
	Severity string `json:"severity"`
	// Status is "open", "recovering" (measured healthy, waiting to
	// resolve) or "resolved".
	Status      string     `json:"status"`
	StartedAt   time.Time  `json:"started_at"`
	OpenedAt    time.Time  `json:"opened_at"`
	RecoveredAt *time.Time `json:"recovered_at,omitempty"`
	ResolvedAt  *time.Time `json:"resolved_at,omitempty"`
	// DurationSeconds is measured from StartedAt to RecoveredAt (or to
	// now while the component is still unhealthy).
	DurationSeconds int64 `json:"duration_seconds"`
	PeopleAffected  int64 `json:"people_affected"`
	FailedAttempts  int64 `json:"failed_attempts"`
	Rerouted        int64 `json:"rerouted_attempts"`
	// CountedAt is when the three figures above last changed.
	CountedAt time.Time `json:"counted_at"`
	// RCADueAt is 72 hours after resolution (nil while open); RCAOverdue
	// is true once it has passed without an RCA.
	RCADueAt       *time.Time `json:"rca_due_at,omitempty"`
	RCAOverdue     bool       `json:"rca_overdue"`
	RCA            string     `json:"rca,omitempty"`
	RCAPublishedAt *time.Time `json:"rca_published_at,omitempty"`
	// RCAOnTime is true when the RCA was published by its deadline.
	RCAOnTime bool     `json:"rca_on_time"`
	Timeline  []Update `json:"timeline"`
	// ReadAt is when Service.Incident read it from the store (its value
	// is shared for Config.CacheFor from then); zero in a Summary's or a
	// Report's lists, which carry their own generated_at.
	ReadAt time.Time `json:"-"`
}

// Update is one timeline entry.
type Update struct {
	Seq  int       `json:"seq"`
	Time time.Time `json:"time"`
	// Kind: opened, state, recovered, resolved, operator, rca.
	Kind    string `json:"kind"`
	State   string `json:"state,omitempty"`
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
	Author  string `json:"author"`
}

// Maintenance is a planned maintenance announcement.
type Maintenance struct {
	ID         string    `json:"id"`
	Components []string  `json:"components"`
	Start      time.Time `json:"start"`
	// End is when the window ends, or ended: for a window ended early,
	// the moment it was ended.
	End time.Time `json:"end"`
	// AnnouncedEnd is the end a window ended early was announced with;
	// absent for any other.
	AnnouncedEnd time.Time `json:"announced_end,omitzero"`
	Title        string    `json:"title"`
	Message      string    `json:"message,omitempty"`
	// Status is "scheduled", "in_progress", "completed" or "cancelled".
	Status string `json:"status"`
	// AnnouncedAt is when the window was announced: it excuses down
	// time only from then (see Report).
	AnnouncedAt time.Time `json:"announced_at,omitzero"`
	// CancelledAt is when a cancelled window was withdrawn.
	CancelledAt time.Time `json:"cancelled_at,omitzero"`
}

// Summary is everything the status page shows, as one value: the page,
// the JSON API and the static export are all rendered from it, so they
// agree.
type Summary struct {
	// Version is the API version (1).
	Version     int       `json:"version"`
	GeneratedAt time.Time `json:"generated_at"`
	// DataFrom is the time of the oldest health record in the store, as
	// in Report.DataFrom; absent when there is none. A feed with no
	// entries gives it as its updated, since nothing it shows has
	// changed since.
	DataFrom time.Time `json:"data_from,omitzero"`
	// AgedOut is the last time an incident or a maintenance window left
	// the page and the feed: the latest resolution, or window's end,
	// more than HistoryDays ago, plus HistoryDays; zero if none has. The
	// feed's updated is never older than it, since an entry that leaves
	// the feed changes it (RFC 4287 section 4.1.1).
	AgedOut time.Time `json:"-"`
	// Node is the node whose view this is.
	Node string `json:"node"`
	// TimeZone is the IANA zone whose days History counts, from
	// midnight to midnight there (the pages' zone, ADR 39).
	TimeZone string `json:"time_zone"`
	// Overall is the worst state of any component (maintenance counts as
	// degraded only if nothing is worse), but a node down while another
	// is operational counts as degraded (the others serve), and so does
	// a way to log in down while another is operational or degraded
	// (people log in another way; ADR 66).
	Overall     State         `json:"overall"`
	Components  []Component   `json:"components"`
	History     []History     `json:"history"`
	Open        []Incident    `json:"open_incidents"`
	Recent      []Incident    `json:"recent_incidents"`
	Maintenance []Maintenance `json:"maintenance"`
	// RecentMaintenance is the windows completed in the last HistoryDays
	// (ended, not cancelled), the latest end first, so that the record
	// shows planned downtime as well as incidents.
	RecentMaintenance []Maintenance `json:"recent_maintenance"`
	// CancelledMaintenance is the windows cancelled whose announced end
	// is less than HistoryDays ago, the latest cancellation first: on
	// the page, in the API and in the feed, so that whoever was told of
	// a window learns, wherever they look, that it will not happen.
	CancelledMaintenance []Maintenance `json:"cancelled_maintenance"`
}

// ComponentReport is one component's figures over a report's period.
type ComponentReport struct {
	Component string `json:"component"`
	// AvailabilityPercent is the share of the measured span (its
	// MeasuredFrom to the report's MeasuredTo, maintenance excluded) the
	// component was not down, from its recorded state changes; nil
	// (null) when nothing of the period was measured (the report's
	// Unmeasured says why).
	AvailabilityPercent *float64 `json:"availability_percent"`
	// MeasuredFrom is where the component's measured span begins: the
	// report's MeasuredFrom, or the component's own first health record
	// (this node's, or any node's for a node) if that is later. Absent
	// when nothing of the component was measured in the period.
	MeasuredFrom       time.Time `json:"measured_from,omitzero"`
	Incidents          int       `json:"incidents"`
	DowntimeMinutes    float64   `json:"downtime_minutes"`
	DegradedMinutes    float64   `json:"degraded_minutes"`
	MaintenanceMinutes float64   `json:"maintenance_minutes"`
	// MTTRMinutes is the mean time to recovery of the period's resolved
	// incidents (nil without any).
	MTTRMinutes    *float64 `json:"mttr_minutes,omitempty"`
	PeopleAffected int64    `json:"people_affected"`
	FailedAttempts int64    `json:"failed_attempts"`
	// RCAs counts resolved incidents whose RCA was due in the period,
	// RCAsOnTime those published by the deadline; RCAOnTimePercent is
	// their share (nil when none were due).
	RCAsDue          int      `json:"rcas_due"`
	RCAsOnTime       int      `json:"rcas_on_time"`
	RCAOnTimePercent *float64 `json:"rca_on_time_percent,omitempty"`
}

// Why a report's period was not measured (Report.Unmeasured).
const (
	// UnmeasuredNoRecords: the store holds no health record at all.
	UnmeasuredNoRecords = "no_health_records"
	// UnmeasuredBeforeData: the period ended before the oldest health
	// record (Report.DataFrom).
	UnmeasuredBeforeData = "before_data_from"
	// UnmeasuredNotStarted: the period has not started.
	UnmeasuredNotStarted = "not_started"
)

// Report is a resilience report over [From, To).
type Report struct {
	Version     int       `json:"version"`
	GeneratedAt time.Time `json:"generated_at"`
	// Title names the period ("2026-Q3" or "2026-07-01 – 2026-08-01").
	Title string `json:"title"`
	// TimeZone is the IANA zone the service counts days in: a period
	// asked for by dates or as a quarter runs from midnight there
	// (ADR 39), though From and To are given in UTC.
	TimeZone string    `json:"time_zone"`
	From     time.Time `json:"from"`
	To       time.Time `json:"to"`
	// DataFrom is the time of the oldest health record in the store,
	// any node's (probe result or state change), absent when there is
	// none: availability leaves out the time before it, which nothing
	// measured.
	DataFrom time.Time `json:"data_from,omitzero"`
	// MeasuredFrom and MeasuredTo bound the part of [From, To) at or
	// after DataFrom: the span the figures are measured over. Both are
	// absent when nothing of the period was measured.
	MeasuredFrom time.Time `json:"measured_from,omitzero"`
	MeasuredTo   time.Time `json:"measured_to,omitzero"`
	// Unmeasured says why nothing of the period was measured, and so
	// why no availability is given: UnmeasuredNoRecords,
	// UnmeasuredBeforeData or UnmeasuredNotStarted; empty when some of
	// it was.
	Unmeasured string            `json:"unmeasured,omitempty"`
	Components []ComponentReport `json:"components"`
	// Total sums the minutes over all components and counts each
	// incident once (its people, failed attempts, recovery and RCA with
	// it), however many components it affected; its availability is the
	// lowest component's.
	Total ComponentReport `json:"total"`
	// Incidents are every incident the report counts: those not
	// resolved before From, and those resolved before it whose RCA fell
	// due in the period.
	Incidents []Incident `json:"incidents"`
	// Maintenance is the windows behind MaintenanceMinutes: those not
	// cancelled whose time from their start, or from their announcement
	// if later, overlaps the period, by start. The part of a window
	// before its announcement excuses nothing.
	Maintenance []Maintenance `json:"maintenance"`
}
