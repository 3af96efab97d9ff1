-- Fair claims (tenant isolation): the dispatcher finds the partners with pending deliveries by
-- skipping through this index, one seek per partner, and takes each partner's oldest due
-- deliveries from it, so one partner's thousands queued can't hide another's.
CREATE INDEX deliveries_partner_due ON deliveries (state, partner_id, next_attempt_at);
