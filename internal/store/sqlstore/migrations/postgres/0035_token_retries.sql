-- 0037_token_retries: a refresh token's retry after a lost answer (ADR
-- 55); see SQLite's 0037_token_retries.
ALTER TABLE tokens ADD COLUMN parent BYTEA NOT NULL DEFAULT '\x';
ALTER TABLE tokens ADD COLUMN revoked_at BIGINT NOT NULL DEFAULT 0;
CREATE INDEX tokens_parent ON tokens (parent) WHERE length(parent) > 0;
