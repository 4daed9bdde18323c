-- 0017_introspection: the clients whose tokens a client may introspect;
-- see SQLite's 0017_introspection.
ALTER TABLE clients ADD COLUMN introspect_tokens_of TEXT NOT NULL DEFAULT 'null';
