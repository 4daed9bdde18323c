-- Degraded-mode policy: the level a client accepts when no provider that
-- meets its normal level is up, and the mark on logins let through by it.
ALTER TABLE clients ADD COLUMN degraded_level TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN degraded INTEGER NOT NULL DEFAULT 0;
ALTER TABLE auth_codes ADD COLUMN degraded INTEGER NOT NULL DEFAULT 0;
ALTER TABLE grants ADD COLUMN degraded INTEGER NOT NULL DEFAULT 0;
