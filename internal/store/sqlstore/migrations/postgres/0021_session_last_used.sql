-- 0021_session_last_used: when a session was last used; see SQLite's
-- 0021_session_last_used.
ALTER TABLE sessions ADD COLUMN last_used BIGINT NOT NULL DEFAULT 0;
UPDATE sessions SET last_used = (EXTRACT(EPOCH FROM clock_timestamp()) * 1000000)::BIGINT;
