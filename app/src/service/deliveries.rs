//! A webhook's deliveries again: resend one, replay the events it never received, or recover
//! the deliveries that failed in a period.

use super::audit::note;
use crate::domain::{
    Actor, AuditAction, DeliveryId, FieldError, Metered, PartnerId, RecoveryView, ReplayView, WebhookId, parse_time,
};
use crate::error::AppError;
use crate::state::AppState;
use crate::store::queue::{self, Recovery, Replay, Resent};

/// Sends a delivery's event again to the same webhook (a new delivery, logged as a resend),
/// counted against the partner's resends per minute. Refused while the webhook is inactive.
pub async fn resend(
    state: &AppState,
    partner: &PartnerId,
    by: &Actor,
    delivery: &DeliveryId,
) -> Result<DeliveryId, AppError> {
    state.meter(partner, Metered::Resend).await?;
    match queue::resend(&state.db, partner, delivery).await? {
        Resent::Queued(id) => {
            tracing::info!(partner = %partner, delivery = %delivery, resend = %id, "delivery resent");
            state.wake.notify_one();
            note(&state.db, partner, by, AuditAction::DeliveryResent, &format!("{delivery} (as {id})")).await;
            Ok(id)
        }
        Resent::NotFound => Err(AppError::NotFound),
        Resent::WebhookInactive => {
            Err(AppError::Conflict("The webhook is inactive: activate it first, then send again.".into()))
        }
    }
}

/// Where a replay starts (ms): `since` when given (RFC 3339), else the webhook's last
/// deactivation, else its creation.
pub async fn replay_since(
    state: &AppState,
    partner: &PartnerId,
    webhook: &WebhookId,
    since: Option<&str>,
) -> Result<i64, AppError> {
    match since.map(str::trim).filter(|s| !s.is_empty()) {
        Some(text) => Ok(parse_time("since", text)?.timestamp_millis()),
        None => {
            let record = super::webhooks::record(state, partner, webhook).await?;
            Ok(record.last_deactivated_at.unwrap_or(record.created_at))
        }
    }
}

/// How many events a replay from `since` (ms) would send: the webhook's types' events never
/// queued for it, counted by the database. A count over the partner's events, open to viewers:
/// counted against the partner's replay plans per minute.
pub async fn count_missed(
    state: &AppState,
    partner: &PartnerId,
    webhook: &WebhookId,
    since: i64,
) -> Result<i64, AppError> {
    state.meter(partner, Metered::ReplayPlan).await?;
    queue::count_missed(&state.db, partner, webhook, since).await?.ok_or(AppError::NotFound)
}

/// Starts "Replay missed events" from `since` (see [`replay_since`]), counted against the
/// partner's replays per minute; queued in chunks. Refused while the webhook is inactive.
pub async fn replay(
    state: &AppState,
    partner: &PartnerId,
    by: &Actor,
    webhook: &WebhookId,
    since: Option<&str>,
) -> Result<ReplayView, AppError> {
    let since = replay_since(state, partner, webhook, since).await?;
    state.meter(partner, Metered::Replay).await?;
    // In a task of its own: a replay queues in chunks, and if the request is stopped half way
    // (the request deadline, a closed tab) it still queues every missed event.
    let (db, who, hook) = (state.db.clone(), partner.clone(), webhook.clone());
    let started = tokio::spawn(async move { queue::start_replay(&db, &who, &hook, since).await })
        .await
        .map_err(anyhow::Error::from)??;
    match started {
        Replay::Started(view) => {
            tracing::info!(partner = %partner, webhook = %webhook, replay = %view.id, total = view.total, "replay started");
            state.wake.notify_one();
            let subject =
                format!("{} events to {webhook} since {}", view.total, crate::store::from_ms(since).to_rfc3339());
            note(&state.db, partner, by, AuditAction::EventsReplayed, &subject).await;
            Ok(view)
        }
        Replay::NotFound => Err(AppError::NotFound),
        Replay::WebhookInactive => {
            Err(AppError::Conflict("The webhook is inactive: activate it first, then replay.".into()))
        }
    }
}

/// The period of a recovery (ms): `since` (RFC 3339, required) until `until` (RFC 3339; now
/// when left out). Refused, naming the field, when a time is not one, `until` is not after
/// `since`, or `since` is later than now.
pub fn recovery_period(since: &str, until: Option<&str>) -> Result<(i64, i64), AppError> {
    let since = match since.trim() {
        "" => {
            return Err(
                FieldError::new("since", "is required: the time from which failed deliveries are sent again").into()
            );
        }
        text => parse_time("since", text)?.timestamp_millis(),
    };
    // `since` may be this very millisecond (nothing failed since), not later.
    let now = crate::store::now_ms();
    if since > now {
        return Err(FieldError::new("since", "is in the future: pick a time before now").into());
    }
    match until.map(str::trim).filter(|u| !u.is_empty()) {
        Some(text) => {
            let until = parse_time("until", text)?.timestamp_millis();
            if until <= since {
                return Err(FieldError::new("until", "must be after since").into());
            }
            Ok((since, until))
        }
        None => Ok((since, now)),
    }
}

/// How many of the webhook's deliveries failed in the period: the count "Recover failed
/// deliveries" shows first. Counted against the partner's replay plans per minute.
pub async fn count_failed(
    state: &AppState,
    partner: &PartnerId,
    webhook: &WebhookId,
    (since, until): (i64, i64),
) -> Result<i64, AppError> {
    state.meter(partner, Metered::ReplayPlan).await?;
    queue::count_failed(&state.db, partner, webhook, since, until).await?.ok_or(AppError::NotFound)
}

/// "Recover failed deliveries": queues again every delivery of the webhook that failed in the
/// period, in chunks, counted against the partner's replays per minute. Refused while the
/// webhook is inactive (activate it once the endpoint is fixed).
pub async fn recover(
    state: &AppState,
    partner: &PartnerId,
    by: &Actor,
    webhook: &WebhookId,
    (since, until): (i64, i64),
) -> Result<RecoveryView, AppError> {
    state.meter(partner, Metered::Replay).await?;
    // In a task of its own, like a replay: a stopped request still queues every chunk.
    let (db, who, hook) = (state.db.clone(), partner.clone(), webhook.clone());
    let started = tokio::spawn(async move { queue::start_recovery(&db, &who, &hook, since, until).await })
        .await
        .map_err(anyhow::Error::from)??;
    match started {
        Recovery::Started(view) => {
            tracing::info!(partner = %partner, webhook = %webhook, recovery = %view.id, total = view.total, "recovery started");
            state.wake.notify_one();
            let subject = format!(
                "{} deliveries of {webhook} that failed from {} until {}",
                view.total,
                view.since.to_rfc3339(),
                view.until.to_rfc3339()
            );
            note(&state.db, partner, by, AuditAction::DeliveriesRecovered, &subject).await;
            Ok(view)
        }
        Recovery::NotFound => Err(AppError::NotFound),
        Recovery::WebhookInactive => Err(AppError::Conflict(
            "The webhook is inactive: fix your endpoint, activate the webhook, then recover.".into(),
        )),
    }
}
