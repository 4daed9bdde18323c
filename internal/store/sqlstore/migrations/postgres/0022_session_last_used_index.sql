-- 0022_session_last_used_index: see SQLite's 0022_session_last_used_index.
CREATE INDEX sessions_last_used ON sessions (last_used);
