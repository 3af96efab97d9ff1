-- Throughput (issue 18): the dispatcher adapts how many requests it has under way to each
-- webhook (more while the receiver answers fast with 2xx, fewer when it slows down, times out
-- or answers 429/5xx), up to 64. A partner may cap a webhook lower; NULL leaves it to the
-- dispatcher. The claim reads the cap, so every dispatcher process keeps to it.
ALTER TABLE webhooks ADD COLUMN max_concurrent_requests BIGINT;
