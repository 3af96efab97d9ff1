-- Events are pruned once their deliveries are (#20): an event older than the log's retention
-- with no delivery left goes. Finding an event's deliveries (the pruning's check, the cascade,
-- and an event's page) needs them by event.
CREATE INDEX deliveries_event ON deliveries (event_id);
