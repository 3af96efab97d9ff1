//! The operator publishes an event: stored, and queued for each of the partner's active
//! webhooks that take its type, in one transaction. The API hands its events to the
//! [`Publisher`], which publishes those arriving together in one transaction.

use tokio::sync::Notify;

use crate::domain::NewEvent;
use crate::store::Db;
use crate::store::events::{self, Published, Publisher};

/// Publishes `event` and wakes the dispatcher (`wake`) when it queued something new. A
/// process without a dispatcher (the command line) passes a `Notify` nobody waits on: the
/// dispatchers of other processes hear of it through the database.
pub async fn publish(db: &Db, wake: &Notify, event: &NewEvent) -> anyhow::Result<Published> {
    let published = events::publish(db, event).await?;
    announce(wake, event, &published);
    Ok(published)
}

/// [`publish`] through `publisher`, with whatever else is being published now.
pub async fn publish_with(publisher: &Publisher, wake: &Notify, event: &NewEvent) -> anyhow::Result<Published> {
    let published = publisher.publish(event.clone()).await?;
    announce(wake, event, &published);
    Ok(published)
}

/// Logs a new event and wakes the dispatcher if it queued something.
fn announce(wake: &Notify, event: &NewEvent, published: &Published) {
    if let Published::New { deliveries } = published {
        tracing::info!(partner = %event.partner, event = %event.id, deliveries, "event published");
        wake.notify_one();
    }
}
