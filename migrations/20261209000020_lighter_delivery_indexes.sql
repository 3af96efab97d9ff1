-- Fewer index entries per delivery (issue 18): every delivery is inserted once and changes
-- state at each attempt, and each index on the table is one more entry to write each time.
--
-- Only a replayed or a recovered delivery has a replay_id or a recovery_id: their indexes
-- now hold those rows alone. A query by `replay_id = $1` (or `recovery_id = $1`) implies the
-- column is not NULL, so both SQLite and PostgreSQL still use them.
DROP INDEX deliveries_replay;
CREATE INDEX deliveries_replay ON deliveries (replay_id) WHERE replay_id IS NOT NULL;
DROP INDEX deliveries_recovery;
CREATE INDEX deliveries_recovery ON deliveries (recovery_id) WHERE recovery_id IS NOT NULL;
-- (webhook_id, state) is served by deliveries_webhook_due (state, webhook_id, next_attempt_at)
-- for a state and a webhook, and by deliveries_webhook_event (webhook_id, event_id) for a
-- webhook alone (and the cascade when a webhook is deleted).
DROP INDEX deliveries_webhook;
