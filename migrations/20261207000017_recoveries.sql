-- "Recover failed deliveries" runs (#20): after an outage on their side a partner sends again
-- every delivery of a webhook that failed in a period. Each failed delivery is queued again in
-- place (pending, its attempts counted from 1 again) and carries the run's id, from which its
-- progress is read, as a replay's is.
CREATE TABLE recoveries (
    id          TEXT PRIMARY KEY,
    partner_id  TEXT NOT NULL REFERENCES partners (id) ON DELETE CASCADE,
    webhook_id  TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    since       BIGINT NOT NULL,
    until       BIGINT NOT NULL,
    total       BIGINT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX recoveries_webhook ON recoveries (webhook_id, created_at);
ALTER TABLE deliveries ADD COLUMN recovery_id TEXT;
CREATE INDEX deliveries_recovery ON deliveries (recovery_id);
