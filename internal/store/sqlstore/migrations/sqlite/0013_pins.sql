-- 0013_pins: values pinned for the life of the store (store.Pins), such
-- as a fingerprint of the subject salt, so that a node started with
-- another salt refuses to start instead of giving everyone new subject
-- identifiers.
CREATE TABLE pins (
	name       TEXT    NOT NULL PRIMARY KEY,
	value      BLOB    NOT NULL,
	created_at INTEGER NOT NULL
) STRICT;
