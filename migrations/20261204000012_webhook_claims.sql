-- Claims by webhook (tenant isolation): the dispatcher finds the webhooks with pending
-- deliveries by skipping through this index, one seek per webhook, and takes a few of each
-- one's oldest due deliveries from it. Deliveries queued for a webhook that is at its limit
-- (its receiver hangs) are never read, however many there are. It replaces the index by
-- partner, which made a claim read past every one of them.
DROP INDEX deliveries_partner_due;
CREATE INDEX deliveries_webhook_due ON deliveries (state, webhook_id, next_attempt_at);
