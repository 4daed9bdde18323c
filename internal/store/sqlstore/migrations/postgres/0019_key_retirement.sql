-- 0019_key_retirement: withdrawn signing keys; see SQLite's
-- 0019_key_retirement.
ALTER TABLE public_keys ADD COLUMN retired_at BIGINT NOT NULL DEFAULT 0;
