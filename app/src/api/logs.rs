//! The delivery log: pages of attempts, one attempt's detail, the hourly chart, resend and
//! "Replay missed events", "Recover failed deliveries".

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::AppError;
use crate::domain::{AttemptDetail, AttemptPage, HourBar, LogQuery, RecoveryView, ReplayView};
#[cfg(feature = "ssr")]
use crate::service::deliveries as service;

/// What a replay from a time would send, before it starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayPlan {
    /// Events created from this time on (RFC 3339).
    pub since: String,
    /// How many would be sent.
    pub count: i64,
}

/// What a recovery of failed deliveries would send: the period, and how many.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryPlan {
    /// Deliveries that failed from this time (RFC 3339)…
    pub since: String,
    /// …until this one.
    pub until: String,
    /// How many would be sent again.
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

/// The id of one of `partner`'s webhooks; another partner's (or environment's) is not found,
/// as on every other route, rather than read as one with nothing to show.
#[cfg(feature = "ssr")]
async fn own_webhook(
    state: &crate::state::AppState,
    partner: &crate::domain::PartnerId,
    webhook: &str,
) -> Result<crate::domain::WebhookId, AppError> {
    let webhook = crate::domain::WebhookId::parse(webhook).map_err(|_| AppError::NotFound)?;
    crate::store::webhooks::get(&state.db, partner, &webhook).await?.ok_or(AppError::NotFound)?;
    Ok(webhook)
}

/// Attempts and failures per hour of the webhook's last 24 hours.
#[server(endpoint = "logs/hourly")]
pub async fn webhook_hourly(webhook: String) -> Result<Vec<HourBar>, AppError> {
    let (user, state) = super::require_user().await?;
    let webhook = own_webhook(&state, &user.partner_id, &webhook).await?;
    Ok(crate::store::log::hourly(&state.db, &user.partner_id, &webhook).await?)
}

/// Sends a delivery's event again to the same webhook (a new delivery, logged as a resend).
#[server(endpoint = "logs/resend")]
pub async fn resend_delivery(delivery: String) -> Result<String, AppError> {
    let (user, state) = super::require_admin().await?;
    let delivery = crate::domain::DeliveryId::parse(&delivery).map_err(|_| AppError::NotFound)?;
    let id = service::resend(&state, &user.partner_id, &user.actor(), &delivery).await?;
    Ok(id.to_string())
}

/// How many events "Replay missed events" would send from `since` (default: the webhook's last
/// deactivation): its types' events never queued for it.
#[server(endpoint = "logs/replay_plan")]
pub async fn plan_replay(webhook: String, since: Option<String>) -> Result<ReplayPlan, AppError> {
    let (user, state) = super::require_user().await?;
    let webhook = crate::domain::WebhookId::parse(&webhook).map_err(|_| AppError::NotFound)?;
    let since = service::replay_since(&state, &user.partner_id, &webhook, since.as_deref()).await?;
    let count = service::count_missed(&state, &user.partner_id, &webhook, since).await?;
    Ok(ReplayPlan { since: crate::store::from_ms(since).to_rfc3339_opts(chrono::SecondsFormat::Secs, true), count })
}

/// Starts "Replay missed events" from `since` (default: the webhook's last deactivation).
#[server(endpoint = "logs/replay")]
pub async fn start_replay(webhook: String, since: Option<String>) -> Result<ReplayView, AppError> {
    let (user, state) = super::require_admin().await?;
    let webhook = crate::domain::WebhookId::parse(&webhook).map_err(|_| AppError::NotFound)?;
    service::replay(&state, &user.partner_id, &user.actor(), &webhook, since.as_deref()).await
}

/// The webhook's newest replay and its progress; `None` when it never had one.
#[server(endpoint = "logs/replay_progress")]
pub async fn replay_progress(webhook: String) -> Result<Option<ReplayView>, AppError> {
    let (user, state) = super::require_user().await?;
    let webhook = own_webhook(&state, &user.partner_id, &webhook).await?;
    Ok(crate::store::log::latest_replay(&state.db, &user.partner_id, &webhook).await?)
}

/// How many of the webhook's deliveries failed in a period (RFC 3339 or the form's local
/// date and time, read as UTC; `until` defaults to now): "Recover failed deliveries" counts first.
#[server(endpoint = "logs/recover_plan")]
pub async fn plan_recovery(webhook: String, since: String, until: Option<String>) -> Result<RecoveryPlan, AppError> {
    let (user, state) = super::require_user().await?;
    let webhook = crate::domain::WebhookId::parse(&webhook).map_err(|_| AppError::NotFound)?;
    let period = service::recovery_period(&since, until.as_deref())?;
    let count = service::count_failed(&state, &user.partner_id, &webhook, period).await?;
    // To the millisecond: the run that starts from this plan covers exactly what was counted.
    let text = |ms: i64| crate::store::from_ms(ms).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    Ok(RecoveryPlan { since: text(period.0), until: text(period.1), count })
}

/// Starts "Recover failed deliveries" for the period a plan counted.
#[server(endpoint = "logs/recover")]
pub async fn start_recovery(webhook: String, since: String, until: Option<String>) -> Result<RecoveryView, AppError> {
    let (user, state) = super::require_admin().await?;
    let webhook = crate::domain::WebhookId::parse(&webhook).map_err(|_| AppError::NotFound)?;
    let period = service::recovery_period(&since, until.as_deref())?;
    service::recover(&state, &user.partner_id, &user.actor(), &webhook, period).await
}

/// The webhook's newest recovery and its progress; `None` when it never had one.
#[server(endpoint = "logs/recover_progress")]
pub async fn recovery_progress(webhook: String) -> Result<Option<RecoveryView>, AppError> {
    let (user, state) = super::require_user().await?;
    let webhook = own_webhook(&state, &user.partner_id, &webhook).await?;
    Ok(crate::store::queue::recovery_view(&state.db, &user.partner_id, &webhook).await?)
}
