//! Log retention: attempts older than the retention period are deleted in the background, in
//! small batches so the dispatcher's writes never wait long behind them. The success-rate
//! counters are separate from the attempts, so pruning never changes a rate or a badge.

use std::time::Duration;

use app::store::{Db, log, now_ms};
use tokio::sync::watch;

/// Attempts deleted per statement.
const BATCH: i64 = 1_000;
/// Pause between batches, so other writers get the database in between.
const BETWEEN_BATCHES: Duration = Duration::from_millis(20);
/// How often a pass runs (the first runs at start).
const EVERY: Duration = Duration::from_secs(10 * 60);

/// Prunes every [`EVERY`] until `stop` turns true.
pub async fn run(db: Db, retention_days: u32, mut stop: watch::Receiver<bool>) {
    let keep_ms = i64::from(retention_days) * 24 * 3600 * 1000;
    while !*stop.borrow() {
        let cutoff = now_ms() - keep_ms;
        let mut total = 0;
        loop {
            match log::prune(&db, cutoff, BATCH).await {
                Ok(n) => {
                    total += n;
                    if (n as i64) < BATCH {
                        break;
                    }
                }
                Err(e) => {
                    tracing::error!(error = format!("{e:#}"), "could not prune the delivery log");
                    break;
                }
            }
            tokio::select! {
                () = tokio::time::sleep(BETWEEN_BATCHES) => {}
                _ = stop.changed() => return,
            }
        }
        if total > 0 {
            tracing::info!(attempts = total, retention_days, "pruned old delivery log rows");
        }
        tokio::select! {
            () = tokio::time::sleep(EVERY) => {}
            _ = stop.changed() => {}
        }
    }
}
