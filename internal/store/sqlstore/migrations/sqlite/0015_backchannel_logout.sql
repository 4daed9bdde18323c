-- 0015_backchannel_logout: a client may register a back-channel logout
-- URI (OpenID Connect Back-Channel Logout 1.0 §2.2), to which a logout
-- token is POSTed when a session in which it received tokens ends. ''
-- means none.
ALTER TABLE clients ADD COLUMN backchannel_logout_uri TEXT NOT NULL DEFAULT '';
