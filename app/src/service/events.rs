//! The operator publishes an event: stored, and queued for each of the partner's active
//! webhooks that take its type, in one transaction. The API hands its events to the
//! [`Publisher`], which publishes those arriving together in one transaction. Partners search
//! their events and read one with its deliveries.

use tokio::sync::Notify;

use crate::domain::{Environment, EventDetail, EventPage, EventQuery, NewEvent, PartnerId};
use crate::error::AppError;
use crate::store::events::{self, Published, Publisher};
use crate::store::{Db, accounts, event_search};

/// Publishes `event` and wakes the dispatcher (`wake`) when it queued something new. A
/// process without a dispatcher (the command line) passes a `Notify` nobody waits on: the
/// dispatchers of other processes hear of it through the database.
pub async fn publish(db: &Db, wake: &Notify, event: &NewEvent) -> anyhow::Result<Published> {
    let Some(event) = in_environment(db, event).await? else { return Ok(Published::UnknownPartner) };
    let published = events::publish(db, &event).await?;
    announce(wake, &event, &published);
    Ok(published)
}

/// [`publish`] through `publisher`, with whatever else is being published now.
pub async fn publish_with(
    db: &Db,
    publisher: &Publisher,
    wake: &Notify,
    event: &NewEvent,
) -> anyhow::Result<Published> {
    let Some(event) = in_environment(db, event).await? else { return Ok(Published::UnknownPartner) };
    let published = publisher.publish(event.clone().into_owned()).await?;
    announce(wake, &event, &published);
    Ok(published)
}

/// `event` addressed to its environment's partner row: as it is for production (the store
/// checks the row is a production one), to the account's sandbox (made on first use) for the
/// sandbox; `None` when the account does not exist.
async fn in_environment<'a>(db: &Db, event: &'a NewEvent) -> anyhow::Result<Option<std::borrow::Cow<'a, NewEvent>>> {
    use std::borrow::Cow;
    match event.environment {
        Environment::Production => Ok(Some(Cow::Borrowed(event))),
        Environment::Sandbox => Ok(accounts::environment_partner(db, &event.partner, Environment::Sandbox)
            .await?
            .map(|partner| Cow::Owned(NewEvent { partner, ..event.clone() }))),
    }
}

/// Logs a new event and wakes the dispatcher if it queued something.
fn announce(wake: &Notify, event: &NewEvent, published: &Published) {
    if let Published::New { deliveries } = published {
        tracing::info!(partner = %event.partner, event = %event.id, deliveries, "event published");
        wake.notify_one();
    }
}

/// A page of `partner`'s events matching `query` (every bad field named at once).
pub async fn search(db: &Db, partner: &PartnerId, query: &EventQuery) -> Result<EventPage, AppError> {
    let search = query.parse()?;
    Ok(event_search::page(db, partner, &search).await?)
}

/// One of `partner`'s events with its deliveries and their attempts, or `NotFound`.
pub async fn event(db: &Db, partner: &PartnerId, id: &str) -> Result<EventDetail, AppError> {
    event_search::detail(db, partner, id).await?.ok_or(AppError::NotFound)
}
