-- 0015_backchannel_logout: a client's back-channel logout URI; see
-- SQLite's 0015_backchannel_logout.
ALTER TABLE clients ADD COLUMN backchannel_logout_uri TEXT NOT NULL DEFAULT '';
