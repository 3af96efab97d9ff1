//! The delivery log over REST: attempts (per webhook and partner-wide), one attempt, resend
//! and "Replay missed events".

use app::domain::{AttemptDetail, AttemptId, AttemptPage, DeliveryId, LogQuery, RecoveryView, ReplayView};
use app::state::AppState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{ApiAdmin, ApiError, ApiPartner, ErrorBody};

/// Log filters and paging, as query parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // read through `LogQuery`; here for the OpenAPI document
pub struct AttemptParams {
    /// 1 to 100 (default 50).
    limit: Option<String>,
    /// The `next` of the previous page.
    cursor: Option<String>,
    /// `success` or `failure`.
    outcome: Option<String>,
    /// An event type, e.g. `verification.completed`.
    event_type: Option<String>,
    /// From this time on (RFC 3339).
    from: Option<String>,
    /// Before this time (RFC 3339).
    to: Option<String>,
}

/// `202 {deliveryId}`: the new delivery of the same event.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResentBody {
    delivery_id: String,
}

/// `POST /api/v1/webhooks/{id}/replay`: `since` defaults to the webhook's last deactivation.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReplayBody {
    /// RFC 3339 time; events created from then on that were never sent to the webhook go out.
    since: Option<String>,
}

/// `POST /api/v1/webhooks/{id}/recover`: the period whose failed deliveries go out again.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecoverBody {
    /// RFC 3339 time: deliveries that failed from then on…
    since: String,
    /// …until this time (RFC 3339; now when left out).
    until: Option<String>,
}

fn query(params: Result<Query<LogQuery>, QueryRejection>) -> Result<LogQuery, ApiError> {
    params.map(|Query(q)| q).map_err(|e| ApiError::BadRequest(e.body_text()))
}

/// `GET /api/v1/webhooks/{id}/attempts`: the webhook's attempts, newest first, `{data, next}`.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/attempts", tag = "logs", security(("apiKey" = [])), params(("id" = String, Path), AttemptParams), responses((status = 200, body = AttemptPage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn webhook_attempts(
    State(state): State<AppState>,
    partner: ApiPartner,
    Path(id): Path<String>,
    params: Result<Query<LogQuery>, QueryRejection>,
) -> Result<Json<AttemptPage>, ApiError> {
    let webhook = super::webhooks::load(&state, &partner, &id).await?.id.clone();
    let mut request = query(params)?.parse().map_err(ApiError::Invalid)?;
    request.filter.webhook = Some(webhook);
    Ok(Json(app::store::log::page(&state.db, &partner.0, &request).await?))
}

/// `GET /api/v1/attempts`: the partner's attempts across webhooks (`webhook=` narrows it).
#[utoipa::path(get, path = "/api/v1/attempts", tag = "logs", security(("apiKey" = [])), params(AttemptParams, ("webhook" = Option<String>, Query, description = "Only this webhook's")), responses((status = 200, body = AttemptPage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn attempts(
    State(state): State<AppState>,
    partner: ApiPartner,
    params: Result<Query<LogQuery>, QueryRejection>,
) -> Result<Json<AttemptPage>, ApiError> {
    let request = query(params)?.parse().map_err(ApiError::Invalid)?;
    Ok(Json(app::store::log::page(&state.db, &partner.0, &request).await?))
}

/// `GET /api/v1/attempts/{id}`: one attempt with its request headers (auth value masked),
/// body and the first 4 KiB of the answer.
#[utoipa::path(get, path = "/api/v1/attempts/{id}", tag = "logs", security(("apiKey" = [])), params(("id" = String, Path)), responses((status = 200, body = AttemptDetail), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn attempt(
    State(state): State<AppState>,
    partner: ApiPartner,
    Path(id): Path<String>,
) -> Result<Json<AttemptDetail>, ApiError> {
    let not_found = || ApiError::NotFound(format!("no attempt with id `{}`", id.chars().take(64).collect::<String>()));
    let attempt = AttemptId::parse(&id).map_err(|_| not_found())?;
    Ok(Json(app::store::log::detail(&state.db, &partner.0, &attempt).await?.ok_or_else(not_found)?))
}

/// `POST /api/v1/deliveries/{id}/resend`: 202; a new delivery of the same event (same id) to
/// the same webhook, logged as a resend. 409 while the webhook is inactive.
#[utoipa::path(post, path = "/api/v1/deliveries/{id}/resend", tag = "logs", security(("apiKey" = [])), params(("id" = String, Path)), responses((status = 202, body = ResentBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn resend(
    State(state): State<AppState>,
    ApiAdmin(partner): ApiAdmin,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<ResentBody>), ApiError> {
    let not_found = || ApiError::NotFound(format!("no delivery with id `{}`", id.chars().take(64).collect::<String>()));
    let delivery = DeliveryId::parse(&id).map_err(|_| not_found())?;
    let new =
        app::service::deliveries::resend(&state, &partner.0, &partner.1, &delivery).await.map_err(|e| match e {
            app::api::AppError::NotFound => not_found(),
            other => other.into(),
        })?;
    Ok((StatusCode::ACCEPTED, Json(ResentBody { delivery_id: new.to_string() })))
}

/// `POST /api/v1/webhooks/{id}/replay`: 202 with the replay; its events go out as deliveries
/// marked `replay`. 409 while the webhook is inactive.
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/replay", tag = "logs", security(("apiKey" = [])), params(("id" = String, Path)), request_body(content = Option<ReplayBody>), responses((status = 202, body = ReplayView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn replay(
    State(state): State<AppState>,
    ApiAdmin(partner): ApiAdmin,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<ReplayView>), ApiError> {
    let body: ReplayBody = if body.iter().all(u8::is_ascii_whitespace) {
        ReplayBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(format!("the body is not valid: {e}")))?
    };
    let webhook = super::webhooks::parse_id(&id)?;
    let view = app::service::deliveries::replay(&state, &partner.0, &partner.1, &webhook, body.since.as_deref())
        .await
        .map_err(|e| match e {
            app::api::AppError::NotFound => super::webhooks::not_found(&id),
            other => other.into(),
        })?;
    Ok((StatusCode::ACCEPTED, Json(view)))
}

/// `GET /api/v1/webhooks/{id}/replay`: the newest replay and its progress (404 when none).
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/replay", tag = "logs", security(("apiKey" = [])), params(("id" = String, Path)), responses((status = 200, body = ReplayView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn replay_progress(
    State(state): State<AppState>,
    partner: ApiPartner,
    Path(id): Path<String>,
) -> Result<Json<ReplayView>, ApiError> {
    let webhook = super::webhooks::load(&state, &partner, &id).await?.id.clone();
    app::store::log::latest_replay(&state.db, &partner.0, &webhook)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound("this webhook was never replayed".into()))
}

/// `POST /api/v1/webhooks/{id}/recover`: 202 with the recovery; the webhook's deliveries that
/// failed in the period are queued again, in chunks. 409 while the webhook is inactive.
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/recover", tag = "logs", security(("apiKey" = [])), params(("id" = String, Path)), request_body = RecoverBody, responses((status = 202, body = RecoveryView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn recover(
    State(state): State<AppState>,
    ApiAdmin(partner): ApiAdmin,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<RecoveryView>), ApiError> {
    // Another partner's webhook reads as missing whatever the body holds.
    let webhook = super::webhooks::load(&state, &partner, &id).await?.id.clone();
    let body: RecoverBody =
        serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(format!("the body is not valid: {e}")))?;
    let period = app::service::deliveries::recovery_period(&body.since, body.until.as_deref())?;
    let view = app::service::deliveries::recover(&state, &partner.0, &partner.1, &webhook, period).await.map_err(
        |e| match e {
            app::api::AppError::NotFound => super::webhooks::not_found(&id),
            other => other.into(),
        },
    )?;
    Ok((StatusCode::ACCEPTED, Json(view)))
}

/// `GET /api/v1/webhooks/{id}/recover`: the newest recovery and its progress (404 when none).
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/recover", tag = "logs", security(("apiKey" = [])), params(("id" = String, Path)), responses((status = 200, body = RecoveryView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn recovery_progress(
    State(state): State<AppState>,
    partner: ApiPartner,
    Path(id): Path<String>,
) -> Result<Json<RecoveryView>, ApiError> {
    let webhook = super::webhooks::load(&state, &partner, &id).await?.id.clone();
    app::store::queue::recovery_view(&state.db, &partner.0, &webhook)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound("no failed deliveries of this webhook were ever recovered".into()))
}
