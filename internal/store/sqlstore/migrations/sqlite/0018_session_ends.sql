-- 0018_session_ends: a session that ended while relying parties had
-- received tokens in it is kept here, as it was, from the write that
-- deleted it until the write that queues their logout tokens
-- (store.SessionEnds), so a node that stops in between loses nothing.
-- Its columns are the sessions table's, plus when it ended: a migration
-- that adds a column to sessions adds it here too.
CREATE TABLE session_ends (
	id         TEXT    NOT NULL PRIMARY KEY,
	person_id  TEXT    NOT NULL,
	provider   TEXT    NOT NULL,
	level      TEXT    NOT NULL,
	amr        TEXT    NOT NULL,
	auth_time  INTEGER NOT NULL,
	clients    TEXT    NOT NULL,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL,
	degraded   INTEGER NOT NULL,
	continues  TEXT    NOT NULL,
	ended_at   INTEGER NOT NULL
) STRICT;

CREATE INDEX session_ends_ended ON session_ends (ended_at);
