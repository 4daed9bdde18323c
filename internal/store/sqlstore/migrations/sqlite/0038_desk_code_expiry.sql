-- 0038_desk_code_expiry: the housekeeping sweep finds help desk codes
-- past their time by this index, instead of reading every recovery
-- code of every person (ten a person) while it holds the write lock.
-- Recovery codes, expires_at 0, are not in it.
CREATE INDEX recovery_codes_desk_expiry ON recovery_codes (expires_at) WHERE expires_at <> 0;
