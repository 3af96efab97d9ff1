//! The delivery log: pages of attempts, one attempt's detail, the hourly chart, resend and
//! "Replay missed events".

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::AppError;
use crate::domain::{AttemptDetail, AttemptPage, HourBar, LogQuery, ReplayView};

/// What a replay from a time would send, before it starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayPlan {
    /// Events created from this time on (RFC 3339).
    pub since: String,
    /// How many would be sent.
    pub count: i64,
}

/// A page of the signed-in partner's delivery log; `query.webhook` narrows it to one webhook.
#[server(endpoint = "logs/page")]
pub async fn load_attempt_page(query: LogQuery) -> Result<AttemptPage, AppError> {
    let (user, state) = super::require_user().await?;
    let request = query.parse()?;
    Ok(crate::store::log::page(&state.db, &user.partner_id, &request).await?)
}

/// One attempt with its request and answer.
#[server(endpoint = "logs/attempt")]
pub async fn load_attempt(id: String) -> Result<AttemptDetail, AppError> {
    let (user, state) = super::require_user().await?;
    let id = crate::domain::AttemptId::parse(&id).map_err(|_| AppError::NotFound)?;
    crate::store::log::detail(&state.db, &user.partner_id, &id).await?.ok_or(AppError::NotFound)
}

/// Attempts and failures per hour of the webhook's last 24 hours.
#[server(endpoint = "logs/hourly")]
pub async fn webhook_hourly(webhook: String) -> Result<Vec<HourBar>, AppError> {
    let (user, state) = super::require_user().await?;
    let webhook = crate::domain::WebhookId::parse(&webhook).map_err(|_| AppError::NotFound)?;
    Ok(crate::store::log::hourly(&state.db, &user.partner_id, &webhook).await?)
}

/// Sends a delivery's event again to the same webhook (a new delivery, logged as a resend).
#[server(endpoint = "logs/resend")]
pub async fn resend_delivery(delivery: String) -> Result<String, AppError> {
    let (user, state) = super::require_admin().await?;
    let delivery = crate::domain::DeliveryId::parse(&delivery).map_err(|_| AppError::NotFound)?;
    let id = resend(&state, &user.partner_id, &delivery).await?;
    Ok(id.to_string())
}

/// The one way a resend is made, for the portal and the API: queue it and wake the dispatcher.
#[cfg(feature = "ssr")]
pub async fn resend(
    state: &crate::state::AppState,
    partner: &crate::domain::PartnerId,
    delivery: &crate::domain::DeliveryId,
) -> Result<crate::domain::DeliveryId, AppError> {
    use crate::store::log::Resent;
    state.meter(partner, crate::domain::Metered::Resend).await?;
    match crate::store::log::resend(&state.db, partner, delivery).await? {
        Resent::Queued(id) => {
            tracing::info!(partner = %partner, delivery = %delivery, resend = %id, "delivery resent");
            state.wake.notify_one();
            Ok(id)
        }
        Resent::NotFound => Err(AppError::NotFound),
        Resent::WebhookInactive => Err(inactive()),
    }
}

#[cfg(feature = "ssr")]
fn inactive() -> AppError {
    AppError::Conflict("The webhook is inactive: activate it first, then send again.".into())
}

/// A replay's start from the form or the API: the time given, or the webhook's last
/// deactivation, or its creation.
#[cfg(feature = "ssr")]
async fn replay_since(
    state: &crate::state::AppState,
    partner: &crate::domain::PartnerId,
    webhook: &crate::domain::WebhookId,
    since: Option<&str>,
) -> Result<i64, AppError> {
    match since.map(str::trim).filter(|s| !s.is_empty()) {
        Some(text) => Ok(crate::domain::parse_time("since", text)?.timestamp_millis()),
        None => {
            let record =
                crate::store::webhooks::record(&state.db, partner, webhook).await?.ok_or(AppError::NotFound)?;
            Ok(record.last_deactivated_at.unwrap_or(record.created_at))
        }
    }
}

/// How many events "Replay missed events" would send from `since` (default: the webhook's last
/// deactivation): its types' events never queued for it.
#[server(endpoint = "logs/replay_plan")]
pub async fn plan_replay(webhook: String, since: Option<String>) -> Result<ReplayPlan, AppError> {
    let (user, state) = super::require_user().await?;
    let webhook = crate::domain::WebhookId::parse(&webhook).map_err(|_| AppError::NotFound)?;
    let since = replay_since(&state, &user.partner_id, &webhook, since.as_deref()).await?;
    let count = crate::store::log::count_missed(&state.db, &user.partner_id, &webhook, since)
        .await?
        .ok_or(AppError::NotFound)?;
    Ok(ReplayPlan { since: crate::store::from_ms(since).to_rfc3339_opts(chrono::SecondsFormat::Secs, true), count })
}

/// Starts "Replay missed events" from `since` (default: the webhook's last deactivation).
#[server(endpoint = "logs/replay")]
pub async fn start_replay(webhook: String, since: Option<String>) -> Result<ReplayView, AppError> {
    let (user, state) = super::require_admin().await?;
    let webhook = crate::domain::WebhookId::parse(&webhook).map_err(|_| AppError::NotFound)?;
    replay(&state, &user.partner_id, &webhook, since.as_deref()).await
}

/// The one way a replay starts, for the portal and the API.
#[cfg(feature = "ssr")]
pub async fn replay(
    state: &crate::state::AppState,
    partner: &crate::domain::PartnerId,
    webhook: &crate::domain::WebhookId,
    since: Option<&str>,
) -> Result<ReplayView, AppError> {
    use crate::store::log::Replay;
    let since = replay_since(state, partner, webhook, since).await?;
    state.meter(partner, crate::domain::Metered::Replay).await?;
    match crate::store::log::start_replay(&state.db, partner, webhook, since).await? {
        Replay::Started(view) => {
            tracing::info!(partner = %partner, webhook = %webhook, replay = %view.id, total = view.total, "replay started");
            state.wake.notify_one();
            Ok(view)
        }
        Replay::NotFound => Err(AppError::NotFound),
        Replay::WebhookInactive => {
            Err(AppError::Conflict("The webhook is inactive: activate it first, then replay.".into()))
        }
    }
}

/// The webhook's newest replay and its progress; `None` when it never had one.
#[server(endpoint = "logs/replay_progress")]
pub async fn replay_progress(webhook: String) -> Result<Option<ReplayView>, AppError> {
    let (user, state) = super::require_user().await?;
    let webhook = crate::domain::WebhookId::parse(&webhook).map_err(|_| AppError::NotFound)?;
    Ok(crate::store::log::latest_replay(&state.db, &user.partner_id, &webhook).await?)
}
