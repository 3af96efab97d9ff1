-- Who made each API key (#21: a colleague who leaves may have made some): as the audit log
-- names them. Keys made before this have none.
ALTER TABLE api_keys ADD COLUMN created_by TEXT;
