-- 0003_fewer_pages_per_login: auth codes and sessions become rowid
-- tables, and the unused index of tokens by grant goes. Each page a
-- commit changes is one more WAL frame written (two system calls and a
-- checksum), so a login should change as few pages as it can.
--
-- Both are written twice per login: a code is inserted and then redeemed,
-- a session is inserted and then given its first client. Keyed by a hash,
-- a WITHOUT ROWID table puts each row on a random leaf page, so each of
-- those writes dirties a page of its own (a WAL frame at commit). In a
-- rowid table, rows follow the rowid, which grows: rows written close in
-- time share the rightmost leaf, and the update lands on a page the same
-- commit usually writes anyway. The key's own index still takes one
-- random page per insert, but a smaller one (key and rowid only).
--
-- Columns, keys and the expiry indexes are unchanged, so the queries are
-- the same.

CREATE TABLE auth_codes_new (
	hash                  BLOB    NOT NULL PRIMARY KEY,
	grant_id              TEXT    NOT NULL,
	client_id             TEXT    NOT NULL,
	redirect_uri          TEXT    NOT NULL,
	scope                 TEXT    NOT NULL,
	nonce                 TEXT    NOT NULL,
	code_challenge        TEXT    NOT NULL,
	code_challenge_method TEXT    NOT NULL,
	session_id            TEXT    NOT NULL,
	person_id             TEXT    NOT NULL,
	provider              TEXT    NOT NULL,
	level                 TEXT    NOT NULL,
	amr                   TEXT    NOT NULL,
	auth_time             INTEGER NOT NULL,
	created_at            INTEGER NOT NULL,
	expires_at            INTEGER NOT NULL,
	used_at               INTEGER NOT NULL
) STRICT;

INSERT INTO auth_codes_new SELECT * FROM auth_codes ORDER BY created_at;
DROP TABLE auth_codes;
ALTER TABLE auth_codes_new RENAME TO auth_codes;
CREATE INDEX auth_codes_expires ON auth_codes (expires_at);

CREATE TABLE sessions_new (
	id         TEXT    NOT NULL PRIMARY KEY,
	person_id  TEXT    NOT NULL,
	provider   TEXT    NOT NULL,
	level      TEXT    NOT NULL,
	amr        TEXT    NOT NULL,
	auth_time  INTEGER NOT NULL,
	clients    TEXT    NOT NULL,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL
) STRICT;

INSERT INTO sessions_new SELECT * FROM sessions ORDER BY created_at;
DROP TABLE sessions;
ALTER TABLE sessions_new RENAME TO sessions;
CREATE INDEX sessions_expires ON sessions (expires_at);

-- No query looks tokens up by grant (revoking a grant marks the grant,
-- which every token use checks), and with random grant IDs each login's
-- tokens changed a random page of this index.
DROP INDEX tokens_grant;
