-- 0030_client_id_token_alg: the algorithm the client's ID tokens and
-- logout tokens are signed with (store.Client.IDTokenAlg, OpenID
-- Connect Registration 1.0 §2 id_token_signed_response_alg, ADR 32):
-- ES256 or RS256. Clients stored before it got ES256, and keep it.
ALTER TABLE clients ADD COLUMN id_token_alg TEXT NOT NULL DEFAULT 'ES256';
