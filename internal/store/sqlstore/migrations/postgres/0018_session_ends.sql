-- 0018_session_ends: ended sessions whose relying parties are still to
-- be told; see SQLite's 0018_session_ends.
CREATE TABLE session_ends (
	id         TEXT     NOT NULL PRIMARY KEY,
	person_id  TEXT     NOT NULL,
	provider   TEXT     NOT NULL,
	level      TEXT     NOT NULL,
	amr        TEXT     NOT NULL,
	auth_time  BIGINT   NOT NULL,
	clients    TEXT     NOT NULL,
	created_at BIGINT   NOT NULL,
	expires_at BIGINT   NOT NULL,
	degraded   SMALLINT NOT NULL,
	continues  TEXT     NOT NULL,
	ended_at   BIGINT   NOT NULL
);

CREATE INDEX session_ends_ended ON session_ends (ended_at);
