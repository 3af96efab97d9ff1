//! The recorder: one task that writes finished attempts in batches.

use app::store::attempts::{self, FinishedAttempt};
use app::store::grouped::write_grouped;
use tokio::sync::mpsc;

/// Most attempts the recorder writes in one transaction.
pub(super) const MAX_BATCH: usize = 256;

/// An attempt for the recorder, and where to say it is written.
pub(super) type RecordJob = app::store::grouped::Job<FinishedAttempt, ()>;

/// The recorder: writes finished attempts (the log, the counters, the delivery's next step) in
/// one transaction per batch of whatever has queued up, up to [`MAX_BATCH`], and tells each
/// attempt's task when it is written. When a batch fails, its attempts are written one by one,
/// so one bad attempt can't hold up the rest ([`write_grouped`]).
pub(super) async fn record_batches(db: app::store::Db, jobs: mpsc::Receiver<RecordJob>) {
    write_grouped(jobs, MAX_BATCH, "attempts", |batch| {
        let db = db.clone();
        Box::pin(async move { attempts::record_many(&db, batch).await.map(|()| vec![(); batch.len()]) })
    })
    .await;
}
