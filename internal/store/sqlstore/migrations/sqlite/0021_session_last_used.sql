-- 0021_session_last_used: when a session was last used, as last
-- recorded (store.Session.LastUsed), in microseconds since the epoch, so
-- that one left unused for session.idle_timeout ends. Sessions live at
-- migration count as just used.
ALTER TABLE sessions ADD COLUMN last_used INTEGER NOT NULL DEFAULT 0;
UPDATE sessions SET last_used = CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER);
