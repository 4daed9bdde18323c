-- 0024_maintenance_announced_end: a window ended early keeps the end it
-- was announced with; end_at is when it really ended. 0 unless ended
-- early.
ALTER TABLE maintenance ADD COLUMN announced_end_at BIGINT NOT NULL DEFAULT 0;
