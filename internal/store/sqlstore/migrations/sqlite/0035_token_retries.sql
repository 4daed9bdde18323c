-- 0037_token_retries: a refresh token presented again, shortly after its
-- rotation, by the client it belongs to, whose answer was lost in
-- transit (ADR 55). parent is the hash of the refresh token whose
-- rotation issued a token (empty: issued for a code), so that a retry
-- finds the pair the lost answer carried; revoked_at is when a retry
-- replaced the token (0: never). A replaced token is also used up
-- (used_at), so every query of live tokens passes it over. Only tokens
-- issued by a rotation are in the index.
ALTER TABLE tokens ADD COLUMN parent BLOB NOT NULL DEFAULT x'';
ALTER TABLE tokens ADD COLUMN revoked_at INTEGER NOT NULL DEFAULT 0;
CREATE INDEX tokens_parent ON tokens (parent) WHERE length(parent) > 0;
