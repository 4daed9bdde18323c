-- 0008_client_endpoint_audience: a client whose assertions may name the
-- token or PAR endpoint URL as their audience instead of the issuer (a
-- legacy compatibility switch, off unless set: store.Client). A boolean
-- as in 0001_init.
ALTER TABLE clients ADD COLUMN legacy_endpoint_audience INTEGER NOT NULL DEFAULT 0;
