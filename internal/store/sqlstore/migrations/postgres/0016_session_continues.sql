-- 0016_session_continues: the first session of a line of logins by one
-- person in one browser; see SQLite's 0016_session_continues.
ALTER TABLE sessions ADD COLUMN continues TEXT NOT NULL DEFAULT '';
