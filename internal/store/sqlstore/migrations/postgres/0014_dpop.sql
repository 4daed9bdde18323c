-- 0014_dpop: sender-constrained tokens (DPoP, RFC 9449); see SQLite's
-- 0014_dpop.
ALTER TABLE clients ADD COLUMN dpop_bound_access_tokens SMALLINT NOT NULL DEFAULT 0;
ALTER TABLE auth_requests ADD COLUMN dpop_jkt TEXT NOT NULL DEFAULT '';
ALTER TABLE auth_codes ADD COLUMN dpop_jkt TEXT NOT NULL DEFAULT '';
ALTER TABLE tokens ADD COLUMN jkt TEXT NOT NULL DEFAULT '';
