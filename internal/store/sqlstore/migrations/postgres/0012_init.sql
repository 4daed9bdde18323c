-- 0012_init: every aggregate of package store, as SQLite's migrations
-- 0001 to 0012 left them. The PostgreSQL schema starts at version 12 so
-- that a version names the same schema in both dialects: a later change
-- is one migration per dialect, under the same number.
--
-- Conventions (shared with the SQLite schema, so one query layer serves
-- both): times are BIGINT unix microseconds in UTC, 0 for the zero time;
-- booleans are SMALLINT 0/1; string slices and maps are JSON text, where
-- "null" keeps a nil slice apart from an empty one; byte slices are BYTEA.
-- Text is UTF-8, which PostgreSQL enforces.

CREATE TABLE clients (
	id                        TEXT     NOT NULL PRIMARY KEY,
	name                      TEXT     NOT NULL,
	auth_method               TEXT     NOT NULL,
	secret_hash               BYTEA,
	jwks                      BYTEA,
	jwks_uri                  TEXT     NOT NULL,
	redirect_uris             TEXT     NOT NULL,
	post_logout_redirect_uris TEXT     NOT NULL,
	require_par               SMALLINT NOT NULL,
	allowed_levels            TEXT     NOT NULL,
	sector_id                 TEXT     NOT NULL,
	claims                    TEXT     NOT NULL,
	source                    TEXT     NOT NULL,
	created_at                BIGINT   NOT NULL,
	providers                 TEXT     NOT NULL DEFAULT 'null',
	degraded_level            TEXT     NOT NULL DEFAULT '',
	status_webhook            TEXT     NOT NULL DEFAULT '',
	status_components         TEXT     NOT NULL DEFAULT 'null',
	legacy_endpoint_audience  SMALLINT NOT NULL DEFAULT 0
);

CREATE TABLE persons (
	id              TEXT     NOT NULL PRIMARY KEY,
	webauthn_id     BYTEA    UNIQUE,
	given_name      TEXT     NOT NULL,
	family_name     TEXT     NOT NULL,
	birth_date      TEXT     NOT NULL,
	-- identifiers keeps the person's list in order; person_identifiers
	-- enforces that an identifier belongs to one person and serves lookups.
	identifiers     TEXT     NOT NULL,
	proofing_level  TEXT     NOT NULL,
	proofing_method TEXT     NOT NULL,
	synthetic       SMALLINT NOT NULL,
	created_at      BIGINT   NOT NULL
);

CREATE TABLE person_identifiers (
	scheme    TEXT NOT NULL,
	value     TEXT NOT NULL,
	person_id TEXT NOT NULL REFERENCES persons (id) ON DELETE CASCADE,
	PRIMARY KEY (scheme, value)
);

CREATE INDEX person_identifiers_person ON person_identifiers (person_id);

CREATE TABLE passkeys (
	credential_id    BYTEA    NOT NULL PRIMARY KEY,
	person_id        TEXT     NOT NULL REFERENCES persons (id) ON DELETE CASCADE,
	public_key       BYTEA,
	attestation_type TEXT     NOT NULL,
	aaguid           BYTEA,
	sign_count       BIGINT   NOT NULL,
	transports       TEXT     NOT NULL,
	user_present     SMALLINT NOT NULL,
	user_verified    SMALLINT NOT NULL,
	backup_eligible  SMALLINT NOT NULL,
	backup_state     SMALLINT NOT NULL,
	name             TEXT     NOT NULL,
	created_at       BIGINT   NOT NULL,
	last_used_at     BIGINT   NOT NULL,
	max_level        TEXT     NOT NULL DEFAULT ''
);

CREATE INDEX passkeys_person ON passkeys (person_id, created_at);

CREATE TABLE recovery_codes (
	hash       BYTEA  NOT NULL PRIMARY KEY,
	person_id  TEXT   NOT NULL REFERENCES persons (id) ON DELETE CASCADE,
	created_at BIGINT NOT NULL,
	used_at    BIGINT NOT NULL
);

CREATE INDEX recovery_codes_person ON recovery_codes (person_id, used_at);

CREATE TABLE auth_requests (
	id                    TEXT     NOT NULL PRIMARY KEY,
	client_id             TEXT     NOT NULL,
	redirect_uri          TEXT     NOT NULL,
	scope                 TEXT     NOT NULL,
	state                 TEXT     NOT NULL,
	nonce                 TEXT     NOT NULL,
	code_challenge        TEXT     NOT NULL,
	code_challenge_method TEXT     NOT NULL,
	response_mode         TEXT     NOT NULL,
	prompt                TEXT     NOT NULL,
	max_age               BIGINT   NOT NULL,
	acr_values            TEXT     NOT NULL,
	ui_locales            TEXT     NOT NULL,
	login_hint            TEXT     NOT NULL,
	pushed                SMALLINT NOT NULL,
	used                  SMALLINT NOT NULL,
	created_at            BIGINT   NOT NULL,
	expires_at            BIGINT   NOT NULL,
	provider_hint         TEXT     NOT NULL DEFAULT ''
);

CREATE INDEX auth_requests_expires ON auth_requests (expires_at);

CREATE TABLE challenges (
	id         TEXT   NOT NULL PRIMARY KEY,
	data       BYTEA,
	expires_at BIGINT NOT NULL
);

CREATE INDEX challenges_expires ON challenges (expires_at);

CREATE TABLE sessions (
	id         TEXT     NOT NULL PRIMARY KEY,
	person_id  TEXT     NOT NULL,
	provider   TEXT     NOT NULL,
	level      TEXT     NOT NULL,
	amr        TEXT     NOT NULL,
	auth_time  BIGINT   NOT NULL,
	clients    TEXT     NOT NULL,
	created_at BIGINT   NOT NULL,
	expires_at BIGINT   NOT NULL,
	degraded   SMALLINT NOT NULL DEFAULT 0
);

CREATE INDEX sessions_expires ON sessions (expires_at);
CREATE INDEX sessions_person ON sessions (person_id);

CREATE TABLE auth_codes (
	hash                  BYTEA    NOT NULL PRIMARY KEY,
	grant_id              TEXT     NOT NULL,
	client_id             TEXT     NOT NULL,
	redirect_uri          TEXT     NOT NULL,
	scope                 TEXT     NOT NULL,
	nonce                 TEXT     NOT NULL,
	code_challenge        TEXT     NOT NULL,
	code_challenge_method TEXT     NOT NULL,
	session_id            TEXT     NOT NULL,
	person_id             TEXT     NOT NULL,
	provider              TEXT     NOT NULL,
	level                 TEXT     NOT NULL,
	amr                   TEXT     NOT NULL,
	auth_time             BIGINT   NOT NULL,
	created_at            BIGINT   NOT NULL,
	expires_at            BIGINT   NOT NULL,
	used_at               BIGINT   NOT NULL,
	degraded              SMALLINT NOT NULL DEFAULT 0
);

CREATE INDEX auth_codes_expires ON auth_codes (expires_at);

CREATE TABLE grants (
	id         TEXT     NOT NULL PRIMARY KEY,
	client_id  TEXT     NOT NULL,
	person_id  TEXT     NOT NULL,
	session_id TEXT     NOT NULL,
	scope      TEXT     NOT NULL,
	provider   TEXT     NOT NULL,
	level      TEXT     NOT NULL,
	amr        TEXT     NOT NULL,
	auth_time  BIGINT   NOT NULL,
	created_at BIGINT   NOT NULL,
	revoked_at BIGINT   NOT NULL,
	degraded   SMALLINT NOT NULL DEFAULT 0
);

CREATE INDEX grants_revoked ON grants (revoked_at) WHERE revoked_at <> 0;

CREATE TABLE tokens (
	hash       BYTEA  NOT NULL PRIMARY KEY,
	kind       TEXT   NOT NULL,
	grant_id   TEXT   NOT NULL,
	client_id  TEXT   NOT NULL,
	scope      TEXT   NOT NULL,
	created_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL,
	used_at    BIGINT NOT NULL
);

CREATE INDEX tokens_expires ON tokens (expires_at);

CREATE TABLE replay_cache (
	key        TEXT   NOT NULL PRIMARY KEY,
	expires_at BIGINT NOT NULL
);

CREATE INDEX replay_cache_expires ON replay_cache (expires_at);

CREATE TABLE audit_log (
	seq       BIGINT NOT NULL PRIMARY KEY,
	time      BIGINT NOT NULL,
	type      TEXT   NOT NULL,
	person_id TEXT   NOT NULL,
	client_id TEXT   NOT NULL,
	provider  TEXT   NOT NULL,
	level     TEXT   NOT NULL,
	result    TEXT   NOT NULL,
	reason    TEXT   NOT NULL,
	details   TEXT   NOT NULL,
	prev_hash BYTEA,
	hash      BYTEA  NOT NULL
);

CREATE INDEX audit_log_time ON audit_log (time, seq);
CREATE INDEX audit_log_person ON audit_log (person_id, seq) WHERE person_id <> '';

-- The audit log is append-only: refuse changes, deletions and TRUNCATE
-- outright. (A database owner can still drop the triggers; the hash
-- chain and its anchors show such a rewrite.)
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'audit_log is append-only';
END
$$;

CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
	FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();

CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
	FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

CREATE TABLE public_keys (
	kid        TEXT   NOT NULL PRIMARY KEY,
	node       TEXT   NOT NULL,
	jwk        BYTEA,
	created_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL
);

-- The health history of components (store.Health): append-only logs
-- keyed by an increasing id, which keeps records of the same microsecond
-- in the order they were recorded. Durations are BIGINT nanoseconds.
CREATE TABLE health_probes (
	id        BIGINT   GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	component TEXT     NOT NULL,
	node      TEXT     NOT NULL,
	time      BIGINT   NOT NULL,
	duration  BIGINT   NOT NULL,
	ok        SMALLINT NOT NULL,
	reason    TEXT     NOT NULL,
	state     TEXT     NOT NULL
);

CREATE INDEX health_probes_component_time ON health_probes (component, time, id);
CREATE INDEX health_probes_time ON health_probes (time, id);

CREATE TABLE health_transitions (
	id         BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	component  TEXT   NOT NULL,
	node       TEXT   NOT NULL,
	time       BIGINT NOT NULL,
	from_state TEXT   NOT NULL,
	to_state   TEXT   NOT NULL,
	reason     TEXT   NOT NULL,
	since      BIGINT NOT NULL
);

CREATE INDEX health_transitions_component_time ON health_transitions (component, time, id);
CREATE INDEX health_transitions_time ON health_transitions (time, id);

-- The public status page (store.Incidents, store.Maintenances,
-- store.Webhooks); see SQLite's 0007_status for each table's purpose.
CREATE TABLE incidents (
	id               TEXT   NOT NULL PRIMARY KEY,
	component        TEXT   NOT NULL,
	components       TEXT   NOT NULL,
	severity         TEXT   NOT NULL,
	started_at       BIGINT NOT NULL,
	opened_at        BIGINT NOT NULL,
	recovered_at     BIGINT NOT NULL,
	resolved_at      BIGINT NOT NULL,
	people_affected  BIGINT NOT NULL,
	failed_attempts  BIGINT NOT NULL,
	rerouted         BIGINT NOT NULL,
	counted_at       BIGINT NOT NULL,
	rca              TEXT   NOT NULL,
	rca_published_at BIGINT NOT NULL,
	version          BIGINT NOT NULL
);

-- At most one open incident per component: the cluster-wide
-- compare-and-swap that lets exactly one node open an outage's incident.
CREATE UNIQUE INDEX incidents_open_component ON incidents (component) WHERE resolved_at = 0;
CREATE INDEX incidents_started ON incidents (started_at, id);

CREATE TABLE incident_components (
	component   TEXT NOT NULL,
	incident_id TEXT NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
	PRIMARY KEY (component, incident_id)
);

CREATE INDEX incident_components_incident ON incident_components (incident_id);

CREATE TABLE incident_updates (
	incident_id TEXT   NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
	seq         BIGINT NOT NULL,
	time        BIGINT NOT NULL,
	kind        TEXT   NOT NULL,
	state       TEXT   NOT NULL,
	reason      TEXT   NOT NULL,
	message     TEXT   NOT NULL,
	author      TEXT   NOT NULL,
	PRIMARY KEY (incident_id, seq)
);

CREATE TABLE maintenance (
	id           TEXT   NOT NULL PRIMARY KEY,
	components   TEXT   NOT NULL,
	start_at     BIGINT NOT NULL,
	end_at       BIGINT NOT NULL,
	title        TEXT   NOT NULL,
	message      TEXT   NOT NULL,
	created_at   BIGINT NOT NULL,
	cancelled_at BIGINT NOT NULL
);

CREATE INDEX maintenance_start ON maintenance (start_at, id);

CREATE TABLE webhook_deliveries (
	id              TEXT   NOT NULL PRIMARY KEY,
	client_id       TEXT   NOT NULL,
	url             TEXT   NOT NULL,
	event           TEXT   NOT NULL,
	payload         BYTEA,
	content_type    TEXT   NOT NULL,
	created_at      BIGINT NOT NULL,
	next_attempt_at BIGINT NOT NULL,
	attempts        BIGINT NOT NULL,
	last_error      TEXT   NOT NULL,
	delivered_at    BIGINT NOT NULL,
	abandoned_at    BIGINT NOT NULL,
	lease_node      TEXT   NOT NULL,
	lease_until     BIGINT NOT NULL
);

CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at, id)
	WHERE delivered_at = 0 AND abandoned_at = 0;
CREATE INDEX webhook_deliveries_client ON webhook_deliveries (client_id, created_at, id);
CREATE INDEX webhook_deliveries_done ON webhook_deliveries (created_at)
	WHERE delivered_at <> 0 OR abandoned_at <> 0;
