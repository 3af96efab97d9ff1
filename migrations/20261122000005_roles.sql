-- Roles inside a partner (issue 7): `admin` changes webhooks, keys and users; `viewer` reads
-- webhooks and logs only. Users and API keys made before roles existed keep full rights.
ALTER TABLE users ADD COLUMN role TEXT NOT NULL DEFAULT 'admin';
ALTER TABLE api_keys ADD COLUMN role TEXT NOT NULL DEFAULT 'admin';
