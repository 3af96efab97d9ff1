//! A partner's webhooks: create, update, switch on or off, delete, rotate the secret, test,
//! and check a request's signatures.

use super::audit::{note, webhook_subject};
use crate::domain::{
    Actor, AttemptId, AttemptResult, AuditAction, Counted, EventBody, FieldError, Metered, Origin, PartnerId,
    RotatedSecret, SignatureReport, SigningSecret, WebhookId, WebhookInput, WebhookView, check_request_limits,
};
use crate::error::AppError;
use crate::state::AppState;
use crate::store::webhooks::{self, WebhookRecord};

/// The partner's webhook `id` with its secrets; [`AppError::NotFound`] for a missing one or
/// another partner's.
pub async fn record(state: &AppState, partner: &PartnerId, id: &WebhookId) -> Result<WebhookRecord, AppError> {
    webhooks::record(&state.db, partner, id).await?.ok_or(AppError::NotFound)
}

/// The webhook's signing secret, shown on explicit request (and noted in the audit log).
pub async fn reveal_secret(
    state: &AppState,
    partner: &PartnerId,
    by: &Actor,
    id: &WebhookId,
) -> Result<SigningSecret, AppError> {
    let record = record(state, partner, id).await?;
    let subject = webhook_subject(record.settings.url.as_str(), id);
    super::audit::note_once_a_minute(&state.db, partner, by, AuditAction::SecretRevealed, &subject).await;
    Ok(record.signing_secret.clone())
}

/// Checks `input` (every refused field at once) and its template (in the sandbox, for the
/// sample event) against the webhook's saved auth header, if it has one.
async fn settings(
    state: &AppState,
    partner: &PartnerId,
    input: &WebhookInput,
    saved: Option<&WebhookRecord>,
) -> Result<crate::domain::WebhookSettings, AppError> {
    let saved_header = saved.and_then(|r| r.settings.auth_header.as_ref());
    // A capture URL of this portal's own request inspectors is delivered to in-process, never
    // over the network: the address rules have nothing to guard there.
    let policy = match crate::domain::captured_by(&state.settings.public_url, &input.url) {
        Some(_) => crate::domain::UrlPolicy { allow_private: true },
        None => state.settings.url_policy,
    };
    let settings = input.parse(policy, saved_header)?;
    state.sender.sandbox().check(partner, settings.payload_template.as_ref()).await??;
    Ok(settings)
}

/// A new webhook from `input`, with its signing secret; refused when a field is, or when the
/// partner has its limit of webhooks. Nothing is saved when refused.
pub async fn create(
    state: &AppState,
    partner: &PartnerId,
    by: &Actor,
    input: &WebhookInput,
) -> Result<(WebhookView, SigningSecret), AppError> {
    let settings = settings(state, partner, input, None).await?;
    let quotas = &state.settings.quotas;
    let Some((view, secret)) = webhooks::create(&state.db, partner, &settings, quotas.webhooks).await? else {
        return Err(AppError::LimitReached(Counted::Webhooks.refusal(quotas)));
    };
    tracing::info!(partner = %partner, webhook = %view.id, "webhook created");
    note(&state.db, partner, by, AuditAction::WebhookCreated, &webhook_subject(&view.url, &view.id)).await;
    Ok((view, secret))
}

/// The webhook `record` changed to `input`; an auth header name with no value keeps the
/// saved value. Switched on, its held deliveries are due again.
pub async fn update(
    state: &AppState,
    partner: &PartnerId,
    by: &Actor,
    record: &WebhookRecord,
    input: &WebhookInput,
) -> Result<WebhookView, AppError> {
    let settings = settings(state, partner, input, Some(record)).await?;
    let view = webhooks::update(&state.db, partner, &record.id, &settings).await?.ok_or(AppError::NotFound)?;
    if view.active && !record.settings.active {
        state.wake.notify_one();
    }
    tracing::info!(partner = %partner, webhook = %view.id, "webhook saved");
    note(&state.db, partner, by, AuditAction::WebhookChanged, &webhook_subject(&view.url, &view.id)).await;
    Ok(view)
}

/// Switches the webhook on or off; switched on, its held deliveries are due again.
pub async fn set_active(
    state: &AppState,
    partner: &PartnerId,
    by: &Actor,
    id: &WebhookId,
    active: bool,
) -> Result<WebhookView, AppError> {
    let view = webhooks::set_active(&state.db, partner, id, active).await?.ok_or(AppError::NotFound)?;
    if active {
        state.wake.notify_one();
    }
    tracing::info!(partner = %partner, webhook = %id, active, "webhook switched");
    let action = if active { AuditAction::WebhookActivated } else { AuditAction::WebhookDeactivated };
    note(&state.db, partner, by, action, &webhook_subject(&view.url, id)).await;
    Ok(view)
}

/// Deletes the webhook, its deliveries and its log.
pub async fn delete(state: &AppState, partner: &PartnerId, by: &Actor, id: &WebhookId) -> Result<(), AppError> {
    let url = record(state, partner, id).await?.settings.url.clone();
    if !webhooks::delete(&state.db, partner, id).await? {
        return Err(AppError::NotFound);
    }
    tracing::info!(partner = %partner, webhook = %id, "webhook deleted");
    note(&state.db, partner, by, AuditAction::WebhookDeleted, &webhook_subject(url.as_str(), id)).await;
    Ok(())
}

/// A new signing secret; for 24 hours the old one keeps signing `x-webhook-signature`, and
/// `webhook-signature` beside the new one (see [`RotatedSecret`]).
pub async fn rotate_secret(
    state: &AppState,
    partner: &PartnerId,
    by: &Actor,
    id: &WebhookId,
) -> Result<RotatedSecret, AppError> {
    let url = record(state, partner, id).await?.settings.url.clone();
    let (secret, until) = webhooks::rotate_secret(&state.db, partner, id).await?.ok_or(AppError::NotFound)?;
    tracing::info!(partner = %partner, webhook = %id, "signing secret rotated");
    note(&state.db, partner, by, AuditAction::SecretRotated, &webhook_subject(url.as_str(), id)).await;
    Ok(RotatedSecret { secret: secret.expose().to_owned(), old_signs_until: crate::store::from_ms(until) })
}

/// Ends a rotation's overlap now: the rotated-out secret stops signing at once (after it
/// leaked, say).
pub async fn end_secret_overlap(
    state: &AppState,
    partner: &PartnerId,
    by: &Actor,
    id: &WebhookId,
) -> Result<(), AppError> {
    let url = record(state, partner, id).await?.settings.url.clone();
    if !webhooks::end_secret_overlap(&state.db, partner, id).await? {
        return Err(AppError::NotFound);
    }
    tracing::info!(partner = %partner, webhook = %id, "the old signing secret's overlap ended");
    note(&state.db, partner, by, AuditAction::SecretOverlapEnded, &webhook_subject(url.as_str(), id)).await;
    Ok(())
}

/// "Test Webhook": an event of the type the partner picks (by default
/// `verification.completed`) with the catalog's example data or the partner's own, sent now,
/// active or not, counted against the partner's tests per minute, and logged as a test attempt
/// (never retried, not counted in health); what the receiver answered, whatever it answered.
/// Input that breaks a rule is refused before anything is counted or sent. A template sandbox
/// too busy to render is no test result: the caller is told to try again.
#[tracing::instrument(skip_all, fields(webhook = %id))]
pub async fn test(
    state: &AppState,
    partner: &PartnerId,
    by: &Actor,
    id: &WebhookId,
    event_type: Option<&str>,
    data: Option<serde_json::Value>,
) -> Result<AttemptResult, AppError> {
    use crate::store::attempts::{AttemptRecord, Next};
    let event = EventBody::for_test(event_type, data).map_err(AppError::from)?;
    let record = record(state, partner, id).await?;
    state.meter(partner, Metered::Test).await?;
    let (request, result) = crate::delivery::attempt(&state.sender, &record, &event).await?;
    let log = AttemptRecord {
        delivery: None,
        partner,
        webhook: id,
        event: &event,
        number: 1,
        request: request.as_ref(),
        result: &result,
        origin: Origin::Test,
    };
    crate::store::attempts::record(&state.db, &log, &Next::Succeeded).await?;
    let subject = format!("{} with {}", webhook_subject(record.settings.url.as_str(), id), event.event_type);
    note(&state.db, partner, by, AuditAction::WebhookTested, &subject).await;
    Ok(result)
}

/// The signature checker on a request a receiver got for the partner's webhook `id`: its
/// signatures checked against the webhook's current and previous secrets, and its timestamp
/// against now. Refused, naming the field, when larger than the checker takes.
pub async fn check_signature(
    state: &AppState,
    partner: &PartnerId,
    id: &WebhookId,
    headers: &[(String, String)],
    body: &str,
) -> Result<SignatureReport, AppError> {
    check_request_limits(headers, body)?;
    let record = record(state, partner, id).await?;
    state.meter(partner, Metered::SignatureCheck).await?;
    Ok(signature_report(&record, headers, body, chrono::Utc::now().timestamp()))
}

/// The signature checker on a logged attempt's request, as it was sent: its timestamp is held
/// against the time it was sent. An attempt that sent nothing (its template failed) is refused.
pub async fn check_attempt_signature(
    state: &AppState,
    partner: &PartnerId,
    attempt: &AttemptId,
) -> Result<SignatureReport, AppError> {
    let detail = crate::store::log::detail(&state.db, partner, attempt).await?.ok_or(AppError::NotFound)?;
    if detail.request_headers.is_empty() {
        return Err(AppError::Invalid(FieldError::new(
            "attemptId",
            format!("names attempt {attempt}, which sent no request (see its error in the log)"),
        )));
    }
    let record = record(state, partner, &detail.summary.webhook_id).await?;
    state.meter(partner, Metered::SignatureCheck).await?;
    let sent = detail.summary.created_at.timestamp();
    Ok(signature_report(&record, &detail.request_headers, &detail.request_body, sent))
}

pub(crate) fn signature_report(
    record: &WebhookRecord,
    headers: &[(String, String)],
    body: &str,
    now: i64,
) -> SignatureReport {
    use crate::delivery::verify::{NamedSecret, check};
    let mut secrets = vec![NamedSecret { name: "the current secret", secret: &record.signing_secret }];
    if let Some(previous) = &record.previous_secret {
        secrets.push(NamedSecret {
            name: "the previous secret (for 24 hours after a rotation it signs x-webhook-signature, and webhook-signature beside the current one: accept both until then)",
            secret: previous,
        });
    }
    check(&secrets, headers, body, now)
}
