-- 0022_session_last_used_index: the sweeper deletes the sessions left
-- unused for session.idle_timeout (DeleteExpired), found by last_used.
CREATE INDEX sessions_last_used ON sessions (last_used);
