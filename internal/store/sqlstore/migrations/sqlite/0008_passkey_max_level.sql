-- The highest assurance level a login with a passkey reaches: the level
-- of the session that added it on the account page, so that a weak login
-- (a recovery code, say) cannot add a passkey that logs in higher. Empty
-- for passkeys made at enrolment, which the person's proofing bounds.
ALTER TABLE passkeys ADD COLUMN max_level TEXT NOT NULL DEFAULT '';

-- Ending a person's other sessions when their ways to log in change.
CREATE INDEX sessions_person ON sessions (person_id);
