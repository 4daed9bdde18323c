-- 0027_session_end_attempts: how many times settling a pending session
-- end failed (attempts), and when it is next due (due_at, compared with
-- PendingSessionEnds' before): its ended_at at first, pushed on by each
-- failure (store.SessionEnds.DeferSessionEnd), so an end that keeps
-- failing is tried less often and does not come first in every round.
ALTER TABLE session_ends ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE session_ends ADD COLUMN due_at INTEGER NOT NULL DEFAULT 0;
UPDATE session_ends SET due_at = ended_at;
CREATE INDEX session_ends_due ON session_ends (due_at, id);
