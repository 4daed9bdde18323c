-- 0025_auth_request_hint_subject: the subject of the id_token_hint an
-- authorization request carried (OIDC Core §3.1.2.1), so that a pushed
-- request, used later, does not issue a code for another person's
-- session. Empty: none.
ALTER TABLE auth_requests ADD COLUMN hint_subject TEXT NOT NULL DEFAULT '';
