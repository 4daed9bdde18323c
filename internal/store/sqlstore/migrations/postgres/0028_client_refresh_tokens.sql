-- 0028_client_refresh_tokens: whether a client gets refresh tokens
-- (store.Client.RefreshTokens, ADR 22), and the sessions that continue
-- one found by it (store.Sessions.SessionLineLive: a refresh token
-- without offline_access lasts while its line of sessions does). A boolean as in the init
-- migration. Clients stored before it got them at every code exchange,
-- and keep them: a client read from the configuration is stored again
-- from it when a node starts.
ALTER TABLE clients ADD COLUMN refresh_tokens SMALLINT NOT NULL DEFAULT 0;
UPDATE clients SET refresh_tokens = 1;
CREATE INDEX sessions_continues ON sessions (continues) WHERE continues <> '';
