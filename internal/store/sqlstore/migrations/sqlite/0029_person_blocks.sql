-- 0029_person_blocks: a person's Varde identity may be blocked by the
-- help desk (store.PersonBlocks, ADR 27): blocked_at is when (0: not
-- blocked), blocked_reason the operator's short reason. A time as in
-- the init migration. Blocking revokes the person's grants, found by
-- the index on grants of a person not yet revoked.
ALTER TABLE persons ADD COLUMN blocked_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE persons ADD COLUMN blocked_reason TEXT NOT NULL DEFAULT '';
CREATE INDEX grants_person ON grants (person_id) WHERE revoked_at = 0;
