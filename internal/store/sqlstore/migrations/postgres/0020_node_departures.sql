-- 0020_node_departures: the latest departure of each node; see SQLite's
-- 0020_node_departures.
CREATE TABLE node_departures (
	node    TEXT   NOT NULL PRIMARY KEY,
	left_at BIGINT NOT NULL,
	reason  TEXT   NOT NULL
);
