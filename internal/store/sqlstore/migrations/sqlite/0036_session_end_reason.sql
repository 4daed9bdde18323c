-- 0036_session_end_reason: why a pending session end came about
-- (store.Session.EndReason): '' for a session someone ended (a logout,
-- another person's login, the end of a person's other sessions),
-- 'expired' or 'idle' for one that ran out of time, whose end the
-- write that deleted it (the sweep, or a later end) recorded, from the
-- moment it ran out (ended_at, due_at), for its relying parties to be
-- told (Back-Channel Logout 1.0 §2.7, ADR 60).
ALTER TABLE session_ends ADD COLUMN reason TEXT NOT NULL DEFAULT '';
