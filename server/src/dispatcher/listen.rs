//! Hearing of work queued by other processes (PostgreSQL's `LISTEN`).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};

/// On PostgreSQL: wakes this process's dispatcher whenever any process announces new due
/// deliveries (`NOTIFY`, see [`Db::announce_work`](app::store::Db::announce_work)), so an
/// event published through one portal goes out at once from whichever dispatcher is free.
/// The dispatcher's own polling covers the moments the listener is reconnecting.
pub async fn listen_for_work(database_url: String, wake: Arc<Notify>, mut stop: watch::Receiver<bool>) {
    while !*stop.borrow() {
        let listening = async {
            let mut listener = sqlx::postgres::PgListener::connect(&database_url).await?;
            listener.listen(app::store::WORK_CHANNEL).await?;
            tracing::info!("listening for new deliveries from every process");
            loop {
                listener.recv().await?;
                wake.notify_one();
            }
            #[allow(unreachable_code)]
            Ok::<(), sqlx::Error>(())
        };
        tokio::select! {
            result = listening => {
                if let Err(e) = result {
                    tracing::warn!(error = %e, "lost the PostgreSQL listener; polling until it is back");
                }
            }
            _ = stop.changed() => return,
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.changed() => return,
        }
    }
}
