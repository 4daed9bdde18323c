-- 0001_init: every aggregate of package store.
--
-- Tables written on every login are WITHOUT ROWID: keyed by a random ID
-- or hash, a rowid table would update two B-trees (rows and key index)
-- where a WITHOUT ROWID table updates one.
--
-- Conventions (shared with the PostgreSQL schema, so one query layer serves
-- both): times are INTEGER unix microseconds in UTC, 0 for the zero time;
-- booleans are INTEGER 0/1; string slices and maps are JSON text, where
-- "null" keeps a nil slice apart from an empty one; byte slices are BLOB.

CREATE TABLE clients (
	id                        TEXT    NOT NULL PRIMARY KEY,
	name                      TEXT    NOT NULL,
	auth_method               TEXT    NOT NULL,
	secret_hash               BLOB,
	jwks                      BLOB,
	jwks_uri                  TEXT    NOT NULL,
	redirect_uris             TEXT    NOT NULL,
	post_logout_redirect_uris TEXT    NOT NULL,
	require_par               INTEGER NOT NULL,
	allowed_levels            TEXT    NOT NULL,
	sector_id                 TEXT    NOT NULL,
	claims                    TEXT    NOT NULL,
	source                    TEXT    NOT NULL,
	created_at                INTEGER NOT NULL
) STRICT;

CREATE TABLE persons (
	id              TEXT    NOT NULL PRIMARY KEY,
	webauthn_id     BLOB    UNIQUE,
	given_name      TEXT    NOT NULL,
	family_name     TEXT    NOT NULL,
	birth_date      TEXT    NOT NULL,
	-- identifiers keeps the person's list in order; person_identifiers
	-- enforces that an identifier belongs to one person and serves lookups.
	identifiers     TEXT    NOT NULL,
	proofing_level  TEXT    NOT NULL,
	proofing_method TEXT    NOT NULL,
	synthetic       INTEGER NOT NULL,
	created_at      INTEGER NOT NULL
) STRICT;

CREATE TABLE person_identifiers (
	scheme    TEXT NOT NULL,
	value     TEXT NOT NULL,
	person_id TEXT NOT NULL REFERENCES persons (id) ON DELETE CASCADE,
	PRIMARY KEY (scheme, value)
) STRICT, WITHOUT ROWID;

CREATE INDEX person_identifiers_person ON person_identifiers (person_id);

CREATE TABLE passkeys (
	credential_id    BLOB    NOT NULL PRIMARY KEY,
	person_id        TEXT    NOT NULL REFERENCES persons (id) ON DELETE CASCADE,
	public_key       BLOB,
	attestation_type TEXT    NOT NULL,
	aaguid           BLOB,
	sign_count       INTEGER NOT NULL,
	transports       TEXT    NOT NULL,
	user_present     INTEGER NOT NULL,
	user_verified    INTEGER NOT NULL,
	backup_eligible  INTEGER NOT NULL,
	backup_state     INTEGER NOT NULL,
	name             TEXT    NOT NULL,
	created_at       INTEGER NOT NULL,
	last_used_at     INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX passkeys_person ON passkeys (person_id, created_at);

CREATE TABLE recovery_codes (
	hash       BLOB    NOT NULL PRIMARY KEY,
	person_id  TEXT    NOT NULL REFERENCES persons (id) ON DELETE CASCADE,
	created_at INTEGER NOT NULL,
	used_at    INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX recovery_codes_person ON recovery_codes (person_id, used_at);

CREATE TABLE auth_requests (
	id                    TEXT    NOT NULL PRIMARY KEY,
	client_id             TEXT    NOT NULL,
	redirect_uri          TEXT    NOT NULL,
	scope                 TEXT    NOT NULL,
	state                 TEXT    NOT NULL,
	nonce                 TEXT    NOT NULL,
	code_challenge        TEXT    NOT NULL,
	code_challenge_method TEXT    NOT NULL,
	response_mode         TEXT    NOT NULL,
	prompt                TEXT    NOT NULL,
	max_age               INTEGER NOT NULL,
	acr_values            TEXT    NOT NULL,
	ui_locales            TEXT    NOT NULL,
	login_hint            TEXT    NOT NULL,
	pushed                INTEGER NOT NULL,
	used                  INTEGER NOT NULL,
	created_at            INTEGER NOT NULL,
	expires_at            INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX auth_requests_expires ON auth_requests (expires_at);

CREATE TABLE challenges (
	id         TEXT    NOT NULL PRIMARY KEY,
	data       BLOB,
	expires_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX challenges_expires ON challenges (expires_at);

CREATE TABLE sessions (
	id         TEXT    NOT NULL PRIMARY KEY,
	person_id  TEXT    NOT NULL,
	provider   TEXT    NOT NULL,
	level      TEXT    NOT NULL,
	amr        TEXT    NOT NULL,
	auth_time  INTEGER NOT NULL,
	clients    TEXT    NOT NULL,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX sessions_expires ON sessions (expires_at);

CREATE TABLE auth_codes (
	hash                  BLOB    NOT NULL PRIMARY KEY,
	grant_id              TEXT    NOT NULL,
	client_id             TEXT    NOT NULL,
	redirect_uri          TEXT    NOT NULL,
	scope                 TEXT    NOT NULL,
	nonce                 TEXT    NOT NULL,
	code_challenge        TEXT    NOT NULL,
	code_challenge_method TEXT    NOT NULL,
	session_id            TEXT    NOT NULL,
	person_id             TEXT    NOT NULL,
	provider              TEXT    NOT NULL,
	level                 TEXT    NOT NULL,
	amr                   TEXT    NOT NULL,
	auth_time             INTEGER NOT NULL,
	created_at            INTEGER NOT NULL,
	expires_at            INTEGER NOT NULL,
	used_at               INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX auth_codes_expires ON auth_codes (expires_at);

CREATE TABLE grants (
	id         TEXT    NOT NULL PRIMARY KEY,
	client_id  TEXT    NOT NULL,
	person_id  TEXT    NOT NULL,
	session_id TEXT    NOT NULL,
	scope      TEXT    NOT NULL,
	provider   TEXT    NOT NULL,
	level      TEXT    NOT NULL,
	amr        TEXT    NOT NULL,
	auth_time  INTEGER NOT NULL,
	created_at INTEGER NOT NULL,
	revoked_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE tokens (
	hash       BLOB    NOT NULL PRIMARY KEY,
	kind       TEXT    NOT NULL,
	grant_id   TEXT    NOT NULL,
	client_id  TEXT    NOT NULL,
	scope      TEXT    NOT NULL,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL,
	used_at    INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX tokens_grant ON tokens (grant_id);
CREATE INDEX tokens_expires ON tokens (expires_at);

CREATE TABLE replay_cache (
	key        TEXT    NOT NULL PRIMARY KEY,
	expires_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX replay_cache_expires ON replay_cache (expires_at);

CREATE TABLE audit_log (
	seq       INTEGER NOT NULL PRIMARY KEY,
	time      INTEGER NOT NULL,
	type      TEXT    NOT NULL,
	person_id TEXT    NOT NULL,
	client_id TEXT    NOT NULL,
	provider  TEXT    NOT NULL,
	level     TEXT    NOT NULL,
	result    TEXT    NOT NULL,
	reason    TEXT    NOT NULL,
	details   TEXT    NOT NULL,
	prev_hash BLOB,
	hash      BLOB    NOT NULL
) STRICT;

CREATE TABLE public_keys (
	kid        TEXT    NOT NULL PRIMARY KEY,
	node       TEXT    NOT NULL,
	jwk        BLOB,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL
) STRICT;

-- The audit log is append-only: refuse changes and deletions outright.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
	SELECT RAISE(ABORT, 'audit_log is append-only');
END;

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
	SELECT RAISE(ABORT, 'audit_log is append-only');
END;
