-- Delivery logs and health (issue 5): running counters, so the success rate, the last delivery
-- and the badge cost the same with a million attempts as with ten; resend and replay.

-- The newest non-test attempt and the failures in a row since the last success, kept with
-- each attempt. `last_deactivated_at` stays after reactivation: "Replay missed events" starts
-- there.
ALTER TABLE webhooks ADD COLUMN last_attempt_at BIGINT;
ALTER TABLE webhooks ADD COLUMN last_attempt_ok BIGINT;
ALTER TABLE webhooks ADD COLUMN failures_in_a_row BIGINT NOT NULL DEFAULT 0;
ALTER TABLE webhooks ADD COLUMN last_deactivated_at BIGINT;

-- Non-test attempts and failures per webhook per minute (`minute` = ms / 60000). The success
-- rate sums the last 1,440 minutes; the chart sums them by hour. Pruned after two days.
CREATE TABLE webhook_minutes (
    webhook_id  TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    partner_id  TEXT NOT NULL,
    minute      BIGINT NOT NULL,
    attempts    BIGINT NOT NULL,
    failures    BIGINT NOT NULL,
    PRIMARY KEY (webhook_id, minute)
);
CREATE INDEX webhook_minutes_partner ON webhook_minutes (partner_id, minute);

-- Why a delivery exists: `event` (published), `resend` (from the log) or `replay`.
ALTER TABLE deliveries ADD COLUMN origin TEXT NOT NULL DEFAULT 'event';
ALTER TABLE deliveries ADD COLUMN replay_id TEXT;
CREATE INDEX deliveries_replay ON deliveries (replay_id);
CREATE INDEX deliveries_webhook_event ON deliveries (webhook_id, event_id);
ALTER TABLE attempts ADD COLUMN origin TEXT NOT NULL DEFAULT 'event';
-- Retention deletes by age across all partners.
CREATE INDEX attempts_time ON attempts (created_at);

-- "Replay missed events" runs: what was asked and how many deliveries it queued; progress is
-- read from the deliveries that carry its id.
CREATE TABLE replays (
    id          TEXT PRIMARY KEY,
    partner_id  TEXT NOT NULL REFERENCES partners (id) ON DELETE CASCADE,
    webhook_id  TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    since       BIGINT NOT NULL,
    total       BIGINT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX replays_webhook ON replays (webhook_id, created_at);

-- Counters for the log written before this migration.
INSERT INTO webhook_minutes (webhook_id, partner_id, minute, attempts, failures)
SELECT webhook_id, partner_id, created_at / 60000, COUNT(*),
       SUM(CASE WHEN outcome = 'failure' THEN 1 ELSE 0 END)
FROM attempts WHERE test = 0 GROUP BY webhook_id, partner_id, created_at / 60000;

UPDATE webhooks SET
    last_deactivated_at = deactivated_at,
    last_attempt_at = (SELECT MAX(a.created_at) FROM attempts a WHERE a.webhook_id = webhooks.id AND a.test = 0),
    last_attempt_ok = (SELECT CASE WHEN a.outcome = 'success' THEN 1 ELSE 0 END FROM attempts a
                       WHERE a.webhook_id = webhooks.id AND a.test = 0 ORDER BY a.created_at DESC, a.id DESC LIMIT 1),
    failures_in_a_row = (SELECT COUNT(*) FROM attempts a
                         WHERE a.webhook_id = webhooks.id AND a.test = 0 AND a.outcome = 'failure'
                         AND a.created_at > COALESCE((SELECT MAX(b.created_at) FROM attempts b
                             WHERE b.webhook_id = webhooks.id AND b.test = 0 AND b.outcome = 'success'), -1));

-- "Show failures" is the filter partners reach for first: keep it a range scan.
CREATE INDEX attempts_webhook_outcome ON attempts (webhook_id, outcome, created_at, id);
CREATE INDEX attempts_partner_outcome ON attempts (partner_id, outcome, created_at, id);
