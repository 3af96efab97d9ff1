-- Sandbox and production (#20). Each environment of a partner is a row of `partners`: the
-- production row is the account (its id is the partner id the operator and partners know, its
-- users sign in for both), and its sandbox, made on first use, is a second row that points at
-- it. Webhooks, API keys, events, deliveries, attempts, counters and alerts belong to one row,
-- so one environment can never read or change the other's, by the same scoping that keeps
-- partners apart. Everything that existed before is production.
ALTER TABLE partners ADD COLUMN environment TEXT NOT NULL DEFAULT 'production';
ALTER TABLE partners ADD COLUMN production_id TEXT REFERENCES partners (id) ON DELETE CASCADE;
-- At most one sandbox per account.
CREATE UNIQUE INDEX partners_sandbox ON partners (production_id);

-- Event search (#20): the values a customer quotes, taken out of `data` when the event is
-- stored, and indexed per partner, so finding one is as fast with a million events as with a
-- hundred. Events stored before this migration (or by an older binary still running during
-- a deploy) read `unkeyed` = 1, the column's default, without a rewrite of the table; this
-- binary stores NULL there, and fills in the others' values in the background, a batch at a
-- time (`store::event_search::key_old_events`).
ALTER TABLE events ADD COLUMN verification_id TEXT;
ALTER TABLE events ADD COLUMN session_id TEXT;
ALTER TABLE events ADD COLUMN unkeyed BIGINT DEFAULT 1;
CREATE INDEX events_verification ON events (partner_id, verification_id) WHERE verification_id IS NOT NULL;
CREATE INDEX events_session ON events (partner_id, session_id) WHERE session_id IS NOT NULL;
CREATE INDEX events_unkeyed ON events (id) WHERE unkeyed = 1;
-- Listing by type, newest first.
CREATE INDEX events_partner_type_time ON events (partner_id, type, created_at);
-- An event's attempts, for its page.
CREATE INDEX attempts_event ON attempts (event_id);
