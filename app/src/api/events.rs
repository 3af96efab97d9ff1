//! Event search for the portal's pages: a page of events, one event with its deliveries.

use leptos::prelude::*;

use super::AppError;
use crate::domain::{EventDetail, EventPage, EventQuery};

/// A page of the signed-in partner's events (in the session's environment) matching `query`.
#[server(endpoint = "events/search")]
pub async fn search_events(query: EventQuery) -> Result<EventPage, AppError> {
    let (user, state) = super::require_user().await?;
    crate::service::events::search(&state.db, &user.partner_id, &query).await
}

/// One of the signed-in partner's events with its deliveries and their attempts.
#[server(endpoint = "events/show")]
pub async fn load_event(id: String) -> Result<EventDetail, AppError> {
    let (user, state) = super::require_user().await?;
    crate::service::events::event(&state.db, &user.partner_id, &id).await
}
