-- Operations (issue 9): alerts when the dispatcher switches a webhook off, and an optional
-- per-webhook rate limit.

-- One row per deactivation by the dispatcher, written in the same transaction as the
-- deactivation so no alert is lost. The portal shows it as a banner to the partner's users
-- until one of them dismisses it or the webhook is active again. The notifier sends it by
-- email and to the operator's alert webhook; each channel is `pending` until `sent`, or
-- `off` when that channel is not configured. `webhook_id` is no foreign key: deleting the
-- webhook keeps the record of what happened to it.
CREATE TABLE alerts (
    id            TEXT PRIMARY KEY,
    partner_id    TEXT NOT NULL REFERENCES partners (id) ON DELETE CASCADE,
    webhook_id    TEXT NOT NULL,
    url           TEXT NOT NULL,
    reason        TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    dismissed_at  BIGINT,
    email_state   TEXT NOT NULL DEFAULT 'pending',
    hook_state    TEXT NOT NULL DEFAULT 'pending',
    tries         BIGINT NOT NULL DEFAULT 0,
    next_try_at   BIGINT NOT NULL,
    locked_until  BIGINT,
    last_error    TEXT
);
CREATE INDEX alerts_partner ON alerts (partner_id, dismissed_at);
CREATE INDEX alerts_outbox ON alerts (email_state, hook_state, next_try_at);

-- Requests per second the dispatcher may send to the webhook; NULL for no limit. Sends are
-- spaced evenly: `rate_next_at` (ms) is when the next one may go, taken by one UPDATE so every
-- dispatcher process keeps to the same limit.
ALTER TABLE webhooks ADD COLUMN rate_limit BIGINT;
ALTER TABLE webhooks ADD COLUMN rate_next_at BIGINT;
