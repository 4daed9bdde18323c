-- A relying party's provider_hint: "any" (Varde picks a healthy provider)
-- or a provider's id.
ALTER TABLE auth_requests ADD COLUMN provider_hint TEXT NOT NULL DEFAULT '';
