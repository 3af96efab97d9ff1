//! The signed-in partner's webhooks: list, read, save, activate, deactivate, delete, and the
//! signing secret.

use leptos::prelude::*;

use super::AppError;
use crate::domain::{RotatedSecret, WebhookView};

#[cfg(feature = "ssr")]
use crate::domain::WebhookId;
#[cfg(feature = "ssr")]
use crate::service::webhooks as service;

/// A webhook id from a URL or a form; a malformed one is as missing as another partner's.
#[cfg(feature = "ssr")]
fn webhook_id(text: &str) -> Result<WebhookId, AppError> {
    WebhookId::parse(text).map_err(|_| AppError::NotFound)
}

/// The partner's webhooks, newest first.
#[server(endpoint = "webhooks/list")]
pub async fn list_webhooks() -> Result<Vec<WebhookView>, AppError> {
    let (user, state) = super::require_user().await?;
    Ok(crate::store::webhooks::list(&state.db, &user.partner_id).await?)
}

/// One webhook.
#[server(endpoint = "webhooks/get")]
pub async fn get_webhook(id: String) -> Result<WebhookView, AppError> {
    let (user, state) = super::require_user().await?;
    crate::store::webhooks::get(&state.db, &user.partner_id, &webhook_id(&id)?).await?.ok_or(AppError::NotFound)
}

/// Creates (without `id`) or updates a webhook from the form, then shows it. Every refused
/// field is reported at once and nothing is saved.
#[allow(clippy::too_many_arguments)]
#[server(endpoint = "webhooks/save")]
pub async fn save_webhook(
    id: Option<String>,
    url: String,
    active: Option<String>,
    auth_header_name: Option<String>,
    auth_header_value: Option<String>,
    event_types_mode: Option<String>,
    type_verification_completed: Option<String>,
    type_verification_failed: Option<String>,
    type_verification_expired: Option<String>,
    type_review_completed: Option<String>,
    payload_template: Option<String>,
    rate_limit: Option<String>,
    max_concurrent_requests: Option<String>,
    environment: Option<String>,
) -> Result<WebhookView, AppError> {
    use crate::domain::{EventType, WebhookInput};

    let (user, state) = super::require_admin_in(environment).await?;
    let existing = match id.as_deref().filter(|id| !id.is_empty()) {
        Some(id) => Some(service::record(&state, &user.partner_id, &webhook_id(id)?).await?),
        None => None,
    };
    let selected: Vec<String> = [
        (type_verification_completed, EventType::VerificationCompleted),
        (type_verification_failed, EventType::VerificationFailed),
        (type_verification_expired, EventType::VerificationExpired),
        (type_review_completed, EventType::ReviewCompleted),
    ]
    .into_iter()
    .filter(|(checked, _)| checked.is_some())
    .map(|(_, t)| t.as_str().to_owned())
    .collect();
    let input = WebhookInput {
        url,
        active: active.is_some(),
        auth_header_name: auth_header_name.unwrap_or_default(),
        auth_header_value: auth_header_value.unwrap_or_default(),
        event_types: (event_types_mode.as_deref() == Some("selected")).then_some(selected),
        payload_template: payload_template.unwrap_or_default(),
        rate_limit: rate_limit.unwrap_or_default(),
        max_concurrent_requests: max_concurrent_requests.unwrap_or_default(),
    };
    let view = match existing {
        Some(record) => service::update(&state, &user.partner_id, &user.actor(), &record, &input).await?,
        None => service::create(&state, &user.partner_id, &user.actor(), &input).await?.0,
    };
    let saved = if view.active { "active" } else { "inactive" };
    leptos_axum::redirect(&format!("/webhooks/{}?saved={saved}", view.id));
    Ok(view)
}

/// Switches a webhook on or off.
#[server(endpoint = "webhooks/set_active")]
pub async fn set_webhook_active(id: String, active: bool) -> Result<WebhookView, AppError> {
    let (user, state) = super::require_admin().await?;
    service::set_active(&state, &user.partner_id, &user.actor(), &webhook_id(&id)?, active).await
}

/// Deletes a webhook and goes back to the list.
#[server(endpoint = "webhooks/delete")]
pub async fn delete_webhook(id: String) -> Result<(), AppError> {
    let (user, state) = super::require_admin().await?;
    service::delete(&state, &user.partner_id, &user.actor(), &webhook_id(&id)?).await?;
    leptos_axum::redirect("/webhooks");
    Ok(())
}

/// The webhook's signing secret, on explicit request.
#[server(endpoint = "webhooks/secret")]
pub async fn reveal_signing_secret(id: String) -> Result<String, AppError> {
    let (user, state) = super::require_admin().await?;
    let secret = service::reveal_secret(&state, &user.partner_id, &user.actor(), &webhook_id(&id)?).await?;
    Ok(secret.expose().to_owned())
}

/// A new signing secret; for 24 hours the old one keeps signing (see [`RotatedSecret`]).
#[server(endpoint = "webhooks/rotate_secret")]
pub async fn rotate_signing_secret(id: String) -> Result<RotatedSecret, AppError> {
    let (user, state) = super::require_admin().await?;
    service::rotate_secret(&state, &user.partner_id, &user.actor(), &webhook_id(&id)?).await
}

/// Ends a rotation's overlap now: only the current secret signs from here on.
#[server(endpoint = "webhooks/end_overlap")]
pub async fn end_secret_overlap(id: String) -> Result<(), AppError> {
    let (user, state) = super::require_admin().await?;
    service::end_secret_overlap(&state, &user.partner_id, &user.actor(), &webhook_id(&id)?).await
}

/// "Test Webhook": sends an event of `event_type` (by default `verification.completed`) now,
/// with `data` (JSON text; blank for the type's example), and says what the receiver answered.
#[server(endpoint = "webhooks/test")]
pub async fn test_webhook(
    id: String,
    event_type: Option<String>,
    data: Option<String>,
) -> Result<crate::domain::AttemptResult, AppError> {
    let (user, state) = super::require_admin().await?;
    let data = match data.as_deref().map(str::trim).filter(|d| !d.is_empty()) {
        None => None,
        Some(text) => Some(serde_json::from_str(text).map_err(|e| {
            AppError::Invalid(crate::domain::FieldError::new("data", format!("is not valid JSON ({e})")))
        })?),
    };
    service::test(&state, &user.partner_id, &user.actor(), &webhook_id(&id)?, event_type.as_deref(), data).await
}

/// The signature checker on a request a receiver got for webhook `id`: `headers` pasted one
/// `name: value` per line, `body` exactly as received. Open to every role: it reveals no secret.
#[server(endpoint = "signatures/check")]
pub async fn check_signature(
    id: String,
    headers: String,
    body: String,
) -> Result<crate::domain::SignatureReport, AppError> {
    let (user, state) = super::require_user().await?;
    let headers = crate::domain::parse_header_lines(&headers)?;
    service::check_signature(&state, &user.partner_id, &webhook_id(&id)?, &headers, &body).await
}

/// The signature checker on logged attempt `attempt`, as it was sent.
#[server(endpoint = "signatures/check-attempt")]
pub async fn check_attempt_signature(attempt: String) -> Result<crate::domain::SignatureReport, AppError> {
    let (user, state) = super::require_user().await?;
    let id = crate::domain::AttemptId::parse(attempt.trim()).map_err(|_| AppError::NotFound)?;
    service::check_attempt_signature(&state, &user.partner_id, &id).await
}

/// What a payload template makes of the sample event: the exact body that is sent and signed,
/// or why not.
/// Admins only (the ones who can save a template); the render runs in the sandbox, under its
/// deadline and memory limit, like every delivery's.
#[server(endpoint = "webhooks/preview")]
pub async fn preview_template(template: String) -> Result<String, AppError> {
    use crate::domain::{EventBody, FieldError, PayloadTemplate};
    use crate::sandbox::RenderError;
    let (user, state) = super::require_admin().await?;
    let body = if template.trim().is_empty() {
        serde_json::to_string(&EventBody::sample()).map_err(anyhow::Error::from)?
    } else {
        let template = PayloadTemplate::parse(&template)?;
        state.sender.sandbox().render(&user.partner_id, &template, &EventBody::sample()).await.map_err(|e| match e {
            RenderError::Template(e) => AppError::Invalid(FieldError::new("payloadTemplate", e.0)),
            RenderError::Unavailable(e) => e.into(),
        })?
    };
    Ok(body)
}

/// The banners to show: webhooks the dispatcher switched off that are still off, until someone
/// of the partner dismisses them.
#[server(endpoint = "alerts/open")]
pub async fn open_alerts() -> Result<Vec<crate::domain::AlertView>, AppError> {
    let (user, state) = super::require_user().await?;
    Ok(crate::store::alerts::open(&state.db, &user.partner_id).await?)
}

/// Hides an alert's banner for everyone of the partner: an admin's call, since it hides the
/// news from the whole team.
#[server(endpoint = "alerts/dismiss")]
pub async fn dismiss_alert(id: String) -> Result<(), AppError> {
    let (user, state) = super::require_admin().await?;
    let id = crate::domain::AlertId::parse(&id).map_err(|_| AppError::NotFound)?;
    if crate::store::alerts::dismiss(&state.db, &user.partner_id, &id).await? {
        Ok(())
    } else {
        Err(AppError::NotFound)
    }
}
