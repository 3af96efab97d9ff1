//! `POST /api/v1/signatures/check`: the signature checker, on a request a receiver got or on a
//! logged attempt.

use std::collections::BTreeMap;

use app::domain::{AttemptId, FieldError, SignatureReport};
use app::error::AppError;
use app::service::webhooks as service;
use app::state::AppState;
use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use utoipa::ToSchema;

use super::json::ApiJson;
use super::webhooks::{parse_id, refusal};
use super::{ApiError, ApiPartner, ErrorBody};

/// What to check: a request a receiver got (`webhookId`, `headers` and `body`), or a logged
/// attempt (`attemptId` alone).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CheckBody {
    /// The webhook the request was sent for.
    #[schema(example = "wh_01KAQ3M7A8Q9XKJ2V5T6N4B0CD")]
    webhook_id: Option<String>,
    /// The request's headers as received, name to value (names in any case).
    #[schema(example = json!({"x-webhook-signature": "5d1c…", "webhook-id": "evt_…", "webhook-timestamp": "1764950400", "webhook-signature": "v1,…"}))]
    headers: Option<BTreeMap<String, String>>,
    /// The request's body, exactly as received (at most 256 KiB).
    body: Option<String>,
    /// Or a logged attempt, checked as it was sent (its timestamp against the time it was sent).
    #[schema(example = "att_01KAQ3M7A8Q9XKJ2V5T6N4B0CD")]
    attempt_id: Option<String>,
}

/// `POST /api/v1/signatures/check`: 200 with each check (`x-webhook-signature`,
/// `webhook-signature`, `webhook-timestamp`), whether a signature is genuine, and the likely
/// cause when a check fails.
#[utoipa::path(post, path = "/api/v1/signatures/check", tag = "events", security(("apiKey" = [])), request_body = CheckBody, responses((status = 200, body = SignatureReport), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn check(
    State(state): State<AppState>,
    partner: ApiPartner,
    ApiJson(body): ApiJson<CheckBody>,
) -> Result<Json<SignatureReport>, ApiError> {
    let report = match body {
        CheckBody { attempt_id: Some(attempt), webhook_id: None, headers: None, body: None } => {
            let not_found =
                || ApiError::NotFound(format!("no attempt with id `{}`", attempt.chars().take(64).collect::<String>()));
            let id = AttemptId::parse(&attempt).map_err(|_| not_found())?;
            service::check_attempt_signature(&state, &partner.0, &id).await.map_err(|e| match e {
                AppError::NotFound => not_found(),
                other => other.into(),
            })?
        }
        CheckBody { attempt_id: None, webhook_id: Some(webhook), headers: Some(headers), body: Some(body) } => {
            let headers: Vec<(String, String)> = headers.into_iter().collect();
            service::check_signature(&state, &partner.0, &parse_id(&webhook)?, &headers, &body)
                .await
                .map_err(refusal(&webhook))?
        }
        CheckBody { attempt_id: Some(_), .. } => {
            return Err(AppError::Invalid(FieldError::new(
                "attemptId",
                "comes alone: an attempt is checked as it was sent, so leave out webhookId, headers and body",
            ))
            .into());
        }
        CheckBody { webhook_id, headers, body, .. } => {
            let missing: Vec<FieldError> =
                [("webhookId", webhook_id.is_none()), ("headers", headers.is_none()), ("body", body.is_none())]
                    .into_iter()
                    .filter(|(_, absent)| *absent)
                    .map(|(field, _)| {
                        FieldError::new(field, "is required (or give attemptId alone, to check a logged attempt)")
                    })
                    .collect();
            return Err(AppError::InvalidFields(missing).into());
        }
    };
    Ok(Json(report))
}
