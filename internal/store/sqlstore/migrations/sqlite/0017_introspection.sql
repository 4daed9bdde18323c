-- 0017_introspection: the other clients whose tokens a client may
-- introspect (RFC 7662), as its resource server; a JSON list, 'null' for
-- none (a client may always introspect its own tokens).
ALTER TABLE clients ADD COLUMN introspect_tokens_of TEXT NOT NULL DEFAULT 'null';
