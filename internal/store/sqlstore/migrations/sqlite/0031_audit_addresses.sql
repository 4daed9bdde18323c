-- 0031_audit_addresses: the client's address of an audit event kept
-- apart from the event, so that it can be deleted after its retention
-- (audit.address_retention, ADR 38) while the event stays and verifies.
-- The event's hash covers addr_digest, SHA-256 over the random salt
-- kept beside the address and the address; the row of the address and
-- salt goes when the address expires. Events sealed before this have
-- no digest and their address among their details, in the hash.
-- audit_addresses has no index but its key: nearly every event keeps
-- an address, and each index is a B-tree more for every one of them to
-- write. The expired addresses are found in the order of seq
-- (DeleteAuditAddresses), the log's own order of time.
ALTER TABLE audit_log ADD COLUMN addr_digest BLOB;

CREATE TABLE audit_addresses (
	event_seq  INTEGER NOT NULL PRIMARY KEY,
	event_time INTEGER NOT NULL,
	addr       TEXT    NOT NULL,
	salt       BLOB    NOT NULL
) STRICT;
