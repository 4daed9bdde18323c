-- 0016_session_continues: a session started by the same person logging
-- in again in the same browser (a step-up, prompt=login) continues the
-- one it replaces: continues holds the ID of the first session of that
-- line, whose sid the relying parties know (store.Session.Root). ''
-- means the session began the line.
ALTER TABLE sessions ADD COLUMN continues TEXT NOT NULL DEFAULT '';
