-- 0033_audit_holds: an operator's hold on the client addresses of audit
-- events, for a preservation order (ADR 45). While a hold is live
-- (released_at = 0 and held_until > now), housekeeping leaves the addresses
-- of the events it covers: those with from_time <= event_time < to_time
-- and, when person_id is not '', naming that person. A hold is kept
-- after it ends, for the operators' list; the audit log records who
-- added, extended and released it, and why.
CREATE TABLE audit_holds (
	id             TEXT    NOT NULL PRIMARY KEY,
	person_id      TEXT    NOT NULL,
	from_time      BIGINT  NOT NULL,
	to_time        BIGINT  NOT NULL,
	held_until     BIGINT  NOT NULL,
	reason         TEXT    NOT NULL,
	created_by     TEXT    NOT NULL,
	created_at     BIGINT  NOT NULL,
	released_at    BIGINT  NOT NULL DEFAULT 0,
	release_reason TEXT    NOT NULL DEFAULT '',
	released_by    TEXT    NOT NULL DEFAULT ''
);
