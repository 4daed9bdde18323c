-- 0036_session_end_reason: why a pending session end came about; see
-- SQLite's 0036_session_end_reason.
ALTER TABLE session_ends ADD COLUMN reason TEXT NOT NULL DEFAULT '';
