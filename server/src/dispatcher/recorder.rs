//! The recorder: one task that writes finished attempts in batches.

use app::store::attempts::{self, FinishedAttempt};
use tokio::sync::{mpsc, oneshot};

/// Most attempts the recorder writes in one transaction.
pub(super) const MAX_BATCH: usize = 256;

/// An attempt for the recorder, and where to say it is written.
pub(super) type RecordJob = (FinishedAttempt, oneshot::Sender<anyhow::Result<()>>);

/// The recorder: writes finished attempts (the log, the counters, the delivery's next step) in
/// one transaction per batch of whatever has queued up, up to [`MAX_BATCH`], and tells each
/// attempt's task when it is written. When a batch fails, its attempts are written one by one,
/// so one bad attempt can't hold up the rest.
pub(super) async fn record_batches(db: app::store::Db, mut jobs: mpsc::Receiver<RecordJob>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while jobs.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let (attempts, replies): (Vec<FinishedAttempt>, Vec<_>) = batch.drain(..).unzip();
        let started = std::time::Instant::now();
        let written = attempts::record_many(&db, &attempts).await;
        tracing::debug!(n = attempts.len(), ms = started.elapsed().as_secs_f64() * 1000.0, "recorded a batch");
        match written {
            Ok(()) => {
                for reply in replies {
                    let _ = reply.send(Ok(()));
                }
            }
            Err(e) if attempts.len() > 1 => {
                tracing::warn!(
                    error = format!("{e:#}"),
                    n = attempts.len(),
                    "a batch of attempts failed; writing them one by one"
                );
                for (attempt, reply) in attempts.iter().zip(replies) {
                    let _ = reply.send(attempts::record_many(&db, std::slice::from_ref(attempt)).await);
                }
            }
            Err(e) => {
                for reply in replies {
                    let _ = reply.send(Err(anyhow::anyhow!("{e:#}")));
                }
            }
        }
    }
}
