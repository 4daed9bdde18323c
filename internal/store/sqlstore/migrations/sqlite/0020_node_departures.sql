-- 0020_node_departures: the latest departure of each node
-- (store.Nodes): a node records its own when it stops cleanly, an
-- operator one for a node that will never come back (varde nodes
-- forget). It stands until the node records a probe result at or after
-- left_at. Times follow the conventions of 0001_init.
CREATE TABLE node_departures (
	node    TEXT    NOT NULL PRIMARY KEY,
	left_at INTEGER NOT NULL,
	reason  TEXT    NOT NULL
) STRICT, WITHOUT ROWID;
