-- 0007_status: the public status page (store.Incidents,
-- store.Maintenances, store.Webhooks), audit queries by time, and the
-- clients' status notification settings. Times, booleans and string
-- lists follow the conventions of 0001_init.

-- Incidents, opened and resolved from measurement. version is the
-- compare-and-swap counter of UpdateIncident; resolved_at is 0 while the
-- incident is open.
CREATE TABLE incidents (
	id               TEXT    NOT NULL PRIMARY KEY,
	component        TEXT    NOT NULL,
	components       TEXT    NOT NULL,
	severity         TEXT    NOT NULL,
	started_at       INTEGER NOT NULL,
	opened_at        INTEGER NOT NULL,
	recovered_at     INTEGER NOT NULL,
	resolved_at      INTEGER NOT NULL,
	people_affected  INTEGER NOT NULL,
	failed_attempts  INTEGER NOT NULL,
	rerouted         INTEGER NOT NULL,
	counted_at       INTEGER NOT NULL,
	rca              TEXT    NOT NULL,
	rca_published_at INTEGER NOT NULL,
	version          INTEGER NOT NULL
) STRICT;

-- At most one open incident per component. Every node runs the same
-- rules against the shared store; this index is the compare-and-swap
-- that lets exactly one of them open the incident for an outage.
CREATE UNIQUE INDEX incidents_open_component ON incidents (component) WHERE resolved_at = 0;

-- Lists are newest first, bounded by start.
CREATE INDEX incidents_started ON incidents (started_at, id);

-- Every component an incident affected (its component and components),
-- so that a component's history is an index lookup rather than a scan
-- of JSON lists. Rewritten with the incident's components.
CREATE TABLE incident_components (
	component   TEXT NOT NULL,
	incident_id TEXT NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
	PRIMARY KEY (component, incident_id)
) STRICT, WITHOUT ROWID;

CREATE INDEX incident_components_incident ON incident_components (incident_id);

-- An incident's timeline, numbered from 1 within the incident. The key
-- refuses a second entry with the same number, so appends that raced
-- cannot both take it.
CREATE TABLE incident_updates (
	incident_id TEXT    NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
	seq         INTEGER NOT NULL,
	time        INTEGER NOT NULL,
	kind        TEXT    NOT NULL,
	state       TEXT    NOT NULL,
	reason      TEXT    NOT NULL,
	message     TEXT    NOT NULL,
	author      TEXT    NOT NULL,
	PRIMARY KEY (incident_id, seq)
) STRICT, WITHOUT ROWID;

-- Planned maintenance windows; cancelled_at is 0 unless withdrawn. An
-- end_at of 0 is an open-ended window.
CREATE TABLE maintenance (
	id           TEXT    NOT NULL PRIMARY KEY,
	components   TEXT    NOT NULL,
	start_at     INTEGER NOT NULL,
	end_at       INTEGER NOT NULL,
	title        TEXT    NOT NULL,
	message      TEXT    NOT NULL,
	created_at   INTEGER NOT NULL,
	cancelled_at INTEGER NOT NULL
) STRICT;

CREATE INDEX maintenance_start ON maintenance (start_at, id);

-- The webhook outbox. A delivery is leased to one node (lease_node)
-- until lease_until while that node attempts it; a released or expired
-- lease (lease_until <= now) lets any node claim it. delivered_at and
-- abandoned_at are 0 until the delivery is over.
CREATE TABLE webhook_deliveries (
	id              TEXT    NOT NULL PRIMARY KEY,
	client_id       TEXT    NOT NULL,
	url             TEXT    NOT NULL,
	event           TEXT    NOT NULL,
	payload         BLOB,
	content_type    TEXT    NOT NULL,
	created_at      INTEGER NOT NULL,
	next_attempt_at INTEGER NOT NULL,
	attempts        INTEGER NOT NULL,
	last_error      TEXT    NOT NULL,
	delivered_at    INTEGER NOT NULL,
	abandoned_at    INTEGER NOT NULL,
	lease_node      TEXT    NOT NULL,
	lease_until     INTEGER NOT NULL
) STRICT;

-- Due deliveries, earliest first; finished ones leave the index.
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at, id)
	WHERE delivered_at = 0 AND abandoned_at = 0;

-- A client's deliveries, newest first.
CREATE INDEX webhook_deliveries_client ON webhook_deliveries (client_id, created_at, id);

-- Counting what happened in a period (people affected by an incident)
-- selects audit events by time.
CREATE INDEX audit_log_time ON audit_log (time, seq);

-- Where a client wants signed status notifications (empty: nowhere), and
-- about which components (a JSON list; null or empty: the providers it
-- accepts plus the store).
ALTER TABLE clients ADD COLUMN status_webhook TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN status_components TEXT NOT NULL DEFAULT 'null';
