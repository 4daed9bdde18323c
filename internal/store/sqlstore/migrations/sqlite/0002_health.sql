-- 0002_health: the health history of components (store.Health).
--
-- Both tables are append-only logs keyed by an increasing rowid, which
-- keeps records of the same microsecond in the order they were recorded.
-- Probe results are pruned by age (DeleteProbesBefore); transitions are
-- kept. Durations are INTEGER nanoseconds; times and states follow the
-- conventions of 0001_init.

CREATE TABLE health_probes (
	id        INTEGER NOT NULL PRIMARY KEY,
	component TEXT    NOT NULL,
	node      TEXT    NOT NULL,
	time      INTEGER NOT NULL,
	duration  INTEGER NOT NULL,
	ok        INTEGER NOT NULL,
	reason    TEXT    NOT NULL,
	state     TEXT    NOT NULL
) STRICT;

-- Per-component history (status page bars, detection times) and pruning
-- or all-component queries by time.
CREATE INDEX health_probes_component_time ON health_probes (component, time, id);
CREATE INDEX health_probes_time ON health_probes (time, id);

CREATE TABLE health_transitions (
	id         INTEGER NOT NULL PRIMARY KEY,
	component  TEXT    NOT NULL,
	node       TEXT    NOT NULL,
	time       INTEGER NOT NULL,
	from_state TEXT    NOT NULL,
	to_state   TEXT    NOT NULL,
	reason     TEXT    NOT NULL,
	since      INTEGER NOT NULL
) STRICT;

CREATE INDEX health_transitions_component_time ON health_transitions (component, time, id);
CREATE INDEX health_transitions_time ON health_transitions (time, id);
