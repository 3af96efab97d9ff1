-- Deleting a delivery sets its attempts' delivery_id to NULL (ON DELETE SET NULL), and with no
-- index on that column each deleted delivery read the whole attempts table: pruning a batch of
-- finished deliveries, or deleting a webhook with many, read it once per delivery. Every foreign
-- key now has an index that leads with its column (store::tests checks the schema).
CREATE INDEX attempts_delivery ON attempts (delivery_id);
