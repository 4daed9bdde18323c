-- 0038_desk_code_expiry: the sweep finds help desk codes past their
-- time by this index; see SQLite's 0038_desk_code_expiry.
CREATE INDEX recovery_codes_desk_expiry ON recovery_codes (expires_at) WHERE expires_at <> 0;
