-- 0012_audit_log_person: a person's own events, newest first, for the
-- account page's history of logins and of what services received.
CREATE INDEX audit_log_person ON audit_log (person_id, seq) WHERE person_id <> '';
