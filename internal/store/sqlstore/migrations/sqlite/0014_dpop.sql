-- 0014_dpop: sender-constrained tokens (DPoP, RFC 9449). A client may be
-- registered to use DPoP always (dpop_bound_access_tokens, §5.2); a
-- pushed or direct authorization request may name the key its code is
-- bound to (dpop_jkt, §10), which the code carries to the token
-- endpoint; a token bound to a key stores that key's JWK SHA-256
-- thumbprint (§6.1). '' means not bound.
ALTER TABLE clients ADD COLUMN dpop_bound_access_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE auth_requests ADD COLUMN dpop_jkt TEXT NOT NULL DEFAULT '';
ALTER TABLE auth_codes ADD COLUMN dpop_jkt TEXT NOT NULL DEFAULT '';
ALTER TABLE tokens ADD COLUMN jkt TEXT NOT NULL DEFAULT '';
