-- 0010_grants_revoked: the sweeper deletes revoked grants that never
-- had tokens (the tombstone a replayed code leaves) once they are old;
-- this index lets it find them without reading every grant.
CREATE INDEX grants_revoked ON grants (revoked_at) WHERE revoked_at <> 0;
