-- 0013_pins: values pinned for the life of the store (store.Pins); see
-- SQLite's 0013_pins.
CREATE TABLE pins (
	name       TEXT   NOT NULL PRIMARY KEY,
	value      BYTEA  NOT NULL,
	created_at BIGINT NOT NULL
);
