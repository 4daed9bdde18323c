-- 0034_auth_request_browser: the browser an authorization request was
-- presented in at the authorization endpoint (ADR 47), as a hash of the
-- value of the cookie that marks it, so that only that browser logs in
-- for it, resumes it or cancels it. Empty: not presented yet, or stored
-- by a node that did not bind requests.
ALTER TABLE auth_requests ADD COLUMN browser TEXT NOT NULL DEFAULT '';
