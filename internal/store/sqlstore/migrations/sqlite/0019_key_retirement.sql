-- 0019_key_retirement: an operator can withdraw a signing key (varde
-- keys retire): retired_at, when not 0, takes it out of every JWKS and
-- keeps it from being published again. The sweeper leaves retired keys,
-- so that a node still holding one cannot bring it back after it expired.
ALTER TABLE public_keys ADD COLUMN retired_at INTEGER NOT NULL DEFAULT 0;
