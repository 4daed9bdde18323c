-- 0023_incidents_resolved_index: the status summary finds the latest
-- incident resolved before its 90-day window (LastResolvedBy) by
-- resolved_at, without reading older history.
CREATE INDEX incidents_resolved_at ON incidents (resolved_at);
