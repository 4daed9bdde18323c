-- 0029_person_blocks: see SQLite's 0029_person_blocks.
ALTER TABLE persons ADD COLUMN blocked_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE persons ADD COLUMN blocked_reason TEXT NOT NULL DEFAULT '';
CREATE INDEX grants_person ON grants (person_id) WHERE revoked_at = 0;
