-- 0037_desk_codes: a code the help desk hands a person who has lost
-- every way in, after checking who they are in person
-- (store.DeskCodes, ADR 62), is a row of recovery_codes with
-- expires_at, when it stops being good, in microseconds as the init
-- migration keeps times; 0 for a recovery code, which never expires.
-- A person holds at most one unexpired help desk code: issuing one
-- deletes the one before.
ALTER TABLE recovery_codes ADD COLUMN expires_at INTEGER NOT NULL DEFAULT 0;
