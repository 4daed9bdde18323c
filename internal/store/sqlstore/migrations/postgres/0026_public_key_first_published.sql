-- 0025_public_key_first_published: when a key was first published,
-- which a node's daily republish (created_at) does not move. Keys
-- published before this migration keep their last publish, the latest
-- their first can have been.
ALTER TABLE public_keys ADD COLUMN first_published_at BIGINT NOT NULL DEFAULT 0;
UPDATE public_keys SET first_published_at = created_at;
