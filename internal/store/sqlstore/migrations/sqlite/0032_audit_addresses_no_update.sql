-- 0032_audit_addresses_no_update: an address kept apart (0031, ADR 38)
-- is written with its event and deleted after its retention, never
-- changed; the database refuses a change outright, as it does for
-- audit_log, rather than leave it to be found by its digest at
-- verification. DELETE stays allowed: housekeeping deletes the expired
-- addresses. (Anyone owning the file can still drop the trigger; the
-- digest the event's hash covers shows such a change.)
CREATE TRIGGER audit_addresses_no_update BEFORE UPDATE ON audit_addresses
BEGIN
	SELECT RAISE(ABORT, 'audit_addresses cannot be changed, only deleted after their retention');
END;
