//! The operator publishes an event: stored, and queued for each of the partner's active
//! webhooks that take its type, in one transaction. Events that arrive together (the REST API
//! under load) are published together by one [`Publisher`], in one transaction.

use std::sync::Arc;

use tokio::sync::{Notify, mpsc, oneshot};

use crate::domain::NewEvent;
use crate::store::Db;
use crate::store::events::{self, Published};

/// Publishes `event` and wakes the dispatcher (`wake`) when it queued something new. A
/// process without a dispatcher (the command line) passes a `Notify` nobody waits on: the
/// dispatchers of other processes hear of it through the database.
pub async fn publish(db: &Db, wake: &Notify, event: &NewEvent) -> anyhow::Result<Published> {
    let published = events::publish(db, event).await?;
    announce(wake, std::slice::from_ref(event), std::slice::from_ref(&published));
    Ok(published)
}

/// Logs each new event and wakes the dispatcher once if any queued something.
fn announce(wake: &Notify, events: &[NewEvent], answers: &[Published]) {
    let mut new = false;
    for (event, published) in events.iter().zip(answers) {
        if let Published::New { deliveries } = published {
            tracing::info!(partner = %event.partner, event = %event.id, deliveries, "event published");
            new = true;
        }
    }
    if new {
        wake.notify_one();
    }
}

/// Most events one transaction of the [`Publisher`] takes.
pub const MAX_BATCH: usize = 64;

/// An event for the publisher, and where to say what became of it.
type Job = (NewEvent, oneshot::Sender<anyhow::Result<Published>>);

/// Publishes the events handed to it by one task, each batch of whatever has queued up (up to
/// [`MAX_BATCH`]) in one transaction, and answers each caller once its batch is committed: a
/// caller is answered only when its event is stored. When a batch fails, its events are
/// published one by one, so one bad event can't fail the others.
#[derive(Clone, Debug)]
pub struct Publisher {
    jobs: mpsc::Sender<Job>,
}

impl Publisher {
    /// Starts the task, on the current runtime; it ends when the last handle is dropped.
    pub fn start(db: Db, wake: Arc<Notify>) -> Self {
        let (jobs, mut queue) = mpsc::channel::<Job>(MAX_BATCH * 4);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(MAX_BATCH);
            while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
                let (events, replies): (Vec<NewEvent>, Vec<_>) = batch.drain(..).unzip();
                match events::publish_many(&db, &events).await {
                    Ok(answers) => {
                        announce(&wake, &events, &answers);
                        for (reply, answer) in replies.into_iter().zip(answers) {
                            let _ = reply.send(Ok(answer));
                        }
                    }
                    Err(e) if events.len() > 1 => {
                        tracing::warn!(
                            error = format!("{e:#}"),
                            n = events.len(),
                            "a batch of events failed; publishing them one by one"
                        );
                        for (event, reply) in events.iter().zip(replies) {
                            let _ = reply.send(publish(&db, &wake, event).await);
                        }
                    }
                    Err(e) => {
                        for reply in replies {
                            let _ = reply.send(Err(anyhow::anyhow!("{e:#}")));
                        }
                    }
                }
            }
        });
        Self { jobs }
    }

    /// Publishes `event` with whatever else is being published now.
    pub async fn publish(&self, event: NewEvent) -> anyhow::Result<Published> {
        let (reply, answer) = oneshot::channel();
        self.jobs.send((event, reply)).await.map_err(|_| anyhow::anyhow!("the publisher stopped"))?;
        answer.await.map_err(|_| anyhow::anyhow!("the publisher stopped"))?
    }
}
