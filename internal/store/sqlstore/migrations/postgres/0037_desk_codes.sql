-- 0037_desk_codes: a help desk code is a row of recovery_codes with
-- expires_at; see SQLite's 0037_desk_codes.
ALTER TABLE recovery_codes ADD COLUMN expires_at BIGINT NOT NULL DEFAULT 0;
