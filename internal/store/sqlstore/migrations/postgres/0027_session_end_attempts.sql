-- 0027_session_end_attempts: failed attempts to settle a pending session
-- end and when it is next due; see SQLite's 0027_session_end_attempts.
ALTER TABLE session_ends ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE session_ends ADD COLUMN due_at BIGINT NOT NULL DEFAULT 0;
UPDATE session_ends SET due_at = ended_at;
CREATE INDEX session_ends_due ON session_ends (due_at, id);
