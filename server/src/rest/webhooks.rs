//! `/api/v1/webhooks`: the partner's webhooks over REST.

use app::api::AppError;
use app::domain::{AttemptResult, RotatedSecret, WebhookId, WebhookInput, WebhookView};
use app::service::webhooks as service;
use app::state::AppState;
use app::store::webhooks::{self, WebhookRecord};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use super::{ApiAdmin, ApiError, ApiJson, ApiPartner, ErrorBody};

/// An auth header as a request body gives it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthHeaderBody {
    name: String,
    /// Required when creating; on update, leaving it out keeps the saved value.
    #[serde(default)]
    value: Option<String>,
}

/// `POST /api/v1/webhooks`
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateBody {
    /// `https://` URL, at most 2,048 characters.
    #[schema(example = "https://api.example.com/webhooks")]
    url: String,
    /// Whether it receives events right away (default true).
    #[serde(default = "yes")]
    active: bool,
    #[serde(default)]
    auth_header: Option<AuthHeaderBody>,
    /// Event types to receive; left out or `null` for all.
    #[serde(default)]
    event_types: Option<Vec<String>>,
    /// A Jinja template that must render JSON; left out for the default body.
    #[serde(default)]
    payload_template: Option<String>,
    /// Most requests per second the dispatcher sends it (1 to 1000); left out for no limit.
    #[serde(default)]
    rate_limit: Option<u32>,
    /// Most requests under way to it at once (1 to 64); left out for the dispatcher's own
    /// limit, which adapts to how the receiver answers (up to 64).
    #[serde(default)]
    max_concurrent_requests: Option<u32>,
}

fn yes() -> bool {
    true
}

/// `PATCH /api/v1/webhooks/{id}`: a field left out stays as it is; `null` clears it
/// (`eventTypes: null` means all types).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PatchBody {
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    active: Option<bool>,
    /// `null` removes the header; a name without value keeps the saved value.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<AuthHeaderBody>, nullable)]
    auth_header: Option<Option<AuthHeaderBody>>,
    /// `null` means all event types.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Vec<String>>, nullable)]
    event_types: Option<Option<Vec<String>>>,
    /// `null` removes the template.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, nullable)]
    payload_template: Option<Option<String>>,
    /// Requests per second (1 to 1000); `null` removes the limit.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u32>, nullable)]
    rate_limit: Option<Option<u32>>,
    /// Requests under way at once (1 to 64); `null` leaves it to the dispatcher.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u32>, nullable)]
    max_concurrent_requests: Option<Option<u32>>,
}

/// Tells `null` (Some(None)) from a missing field (None, by `default`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// A webhook just made, with its signing secret.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedBody {
    #[serde(flatten)]
    webhook: WebhookView,
    secret: String,
}

/// `{secret}`
#[derive(Debug, Serialize, ToSchema)]
pub struct SecretBody {
    secret: String,
}

/// `{data: [...]}`
#[derive(Debug, Serialize, ToSchema)]
pub struct ListBody {
    data: Vec<WebhookView>,
}

pub(super) fn not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("no webhook with id `{}`", id.chars().take(64).collect::<String>()))
}

/// A webhook id from the path; a malformed one is as missing as another partner's.
pub(super) fn parse_id(id: &str) -> Result<WebhookId, ApiError> {
    WebhookId::parse(id).map_err(|_| not_found(id))
}

/// The service's refusal as the API says it, a missing webhook naming the id asked for.
pub(super) fn refusal(id: &str) -> impl Fn(AppError) -> ApiError + '_ {
    move |err| match err {
        AppError::NotFound => not_found(id),
        other => other.into(),
    }
}

/// The partner's webhook `id` with its secrets, or the 404 a missing one (or another partner's) gets.
pub(super) async fn load(state: &AppState, partner: &ApiPartner, id: &str) -> Result<WebhookRecord, ApiError> {
    service::record(state, &partner.0, &parse_id(id)?).await.map_err(refusal(id))
}

/// `GET /api/v1/webhooks`
#[utoipa::path(get, path = "/api/v1/webhooks", tag = "webhooks", security(("apiKey" = [])), responses((status = 200, body = ListBody), (status = 401, body = ErrorBody)))]
pub async fn list(State(state): State<AppState>, partner: ApiPartner) -> Result<Json<ListBody>, ApiError> {
    Ok(Json(ListBody { data: webhooks::list(&state.db, &partner.0).await? }))
}

/// `POST /api/v1/webhooks`: 201 with the webhook and its signing secret.
#[utoipa::path(post, path = "/api/v1/webhooks", tag = "webhooks", security(("apiKey" = [])), request_body = CreateBody, responses((status = 201, body = CreatedBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 422, description = "a field was refused, or the partner has its limit of webhooks (`limit_reached`)", body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    ApiAdmin(partner): ApiAdmin,
    ApiJson(body): ApiJson<CreateBody>,
) -> Result<impl IntoResponse, ApiError> {
    let (auth_header_name, auth_header_value) = match body.auth_header {
        Some(h) => (h.name, h.value.unwrap_or_default()),
        None => (String::new(), String::new()),
    };
    let input = WebhookInput {
        url: body.url,
        active: body.active,
        auth_header_name,
        auth_header_value,
        event_types: body.event_types,
        payload_template: body.payload_template.unwrap_or_default(),
        rate_limit: body.rate_limit.map(|n| n.to_string()).unwrap_or_default(),
        max_concurrent_requests: body.max_concurrent_requests.map(|n| n.to_string()).unwrap_or_default(),
    };
    let (webhook, secret) = service::create(&state, &partner.0, &partner.1, &input).await?;
    Ok((StatusCode::CREATED, Json(CreatedBody { webhook, secret: secret.expose().to_owned() })))
}

/// `GET /api/v1/webhooks/{id}`
#[utoipa::path(get, path = "/api/v1/webhooks/{id}", tag = "webhooks", security(("apiKey" = [])), params(("id" = String, Path)), responses((status = 200, body = WebhookView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn show(
    State(state): State<AppState>,
    partner: ApiPartner,
    Path(id): Path<String>,
) -> Result<Json<WebhookView>, ApiError> {
    Ok(Json(webhooks::get(&state.db, &partner.0, &parse_id(&id)?).await?.ok_or_else(|| not_found(&id))?))
}

/// `PATCH /api/v1/webhooks/{id}`: changes the fields given; every refused field is reported
/// and nothing is saved.
#[utoipa::path(patch, path = "/api/v1/webhooks/{id}", tag = "webhooks", security(("apiKey" = [])), params(("id" = String, Path)), request_body = PatchBody, responses((status = 200, body = WebhookView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    ApiAdmin(partner): ApiAdmin,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<PatchBody>,
) -> Result<Json<WebhookView>, ApiError> {
    let record = load(&state, &partner, &id).await?;
    let mut input = record.to_input();
    if let Some(url) = body.url {
        input.url = url;
    }
    if let Some(active) = body.active {
        input.active = active;
    }
    match body.auth_header {
        None => {}
        Some(None) => (input.auth_header_name, input.auth_header_value) = (String::new(), String::new()),
        Some(Some(h)) => (input.auth_header_name, input.auth_header_value) = (h.name, h.value.unwrap_or_default()),
    }
    if let Some(event_types) = body.event_types {
        input.event_types = event_types;
    }
    if let Some(template) = body.payload_template {
        input.payload_template = template.unwrap_or_default();
    }
    if let Some(limit) = body.rate_limit {
        input.rate_limit = limit.map(|n| n.to_string()).unwrap_or_default();
    }
    if let Some(cap) = body.max_concurrent_requests {
        input.max_concurrent_requests = cap.map(|n| n.to_string()).unwrap_or_default();
    }
    Ok(Json(service::update(&state, &partner.0, &partner.1, &record, &input).await.map_err(refusal(&id))?))
}

/// `DELETE /api/v1/webhooks/{id}`: 204.
#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", tag = "webhooks", security(("apiKey" = [])), params(("id" = String, Path)), responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    ApiAdmin(partner): ApiAdmin,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    service::delete(&state, &partner.0, &partner.1, &parse_id(&id)?).await.map_err(refusal(&id))?;
    Ok(StatusCode::NO_CONTENT)
}

async fn switch(state: AppState, partner: ApiPartner, id: String, active: bool) -> Result<Json<WebhookView>, ApiError> {
    Ok(Json(service::set_active(&state, &partner.0, &partner.1, &parse_id(&id)?, active).await.map_err(refusal(&id))?))
}

/// `POST /api/v1/webhooks/{id}/test`: what to send; the body may be left out (or `null`).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TestBody {
    /// The event type (default `verification.completed`; see `GET /api/v1/event-types`).
    #[serde(rename = "type")]
    #[schema(example = "verification.failed")]
    event_type: Option<String>,
    /// The event's `data`: a JSON object of at most 64 KiB (default: the type's example).
    #[schema(value_type = Option<Object>)]
    data: Option<serde_json::Value>,
}

/// `POST /api/v1/webhooks/{id}/test`: 200 with what the receiver said, whatever it said.
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/test", tag = "webhooks", security(("apiKey" = [])), params(("id" = String, Path)), request_body(content = Option<TestBody>, description = "Optional: the event type and data to send."), responses((status = 200, body = AttemptResult), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn test(
    State(state): State<AppState>,
    ApiAdmin(partner): ApiAdmin,
    Path(id): Path<String>,
    body: Option<ApiJson<Option<TestBody>>>,
) -> Result<Json<AttemptResult>, ApiError> {
    let body = body.and_then(|b| b.0).unwrap_or_default();
    let answer =
        service::test(&state, &partner.0, &partner.1, &parse_id(&id)?, body.event_type.as_deref(), body.data).await;
    Ok(Json(answer.map_err(refusal(&id))?))
}

/// `POST /api/v1/webhooks/{id}/activate`
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/activate", tag = "webhooks", security(("apiKey" = [])), params(("id" = String, Path)), responses((status = 200, body = WebhookView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn activate(
    State(state): State<AppState>,
    ApiAdmin(partner): ApiAdmin,
    Path(id): Path<String>,
) -> Result<Json<WebhookView>, ApiError> {
    switch(state, partner, id, true).await
}

/// `POST /api/v1/webhooks/{id}/deactivate`
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/deactivate", tag = "webhooks", security(("apiKey" = [])), params(("id" = String, Path)), responses((status = 200, body = WebhookView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn deactivate(
    State(state): State<AppState>,
    ApiAdmin(partner): ApiAdmin,
    Path(id): Path<String>,
) -> Result<Json<WebhookView>, ApiError> {
    switch(state, partner, id, false).await
}

/// `GET /api/v1/webhooks/{id}/secret`
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/secret", tag = "webhooks", security(("apiKey" = [])), params(("id" = String, Path)), responses((status = 200, body = SecretBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn secret(
    State(state): State<AppState>,
    ApiAdmin(partner): ApiAdmin,
    Path(id): Path<String>,
) -> Result<Json<SecretBody>, ApiError> {
    let secret = service::reveal_secret(&state, &partner.0, &partner.1, &parse_id(&id)?).await.map_err(refusal(&id))?;
    Ok(Json(SecretBody { secret: secret.expose().to_owned() }))
}

/// `DELETE /api/v1/webhooks/{id}/secret/previous`: ends a rotation's overlap now.
#[utoipa::path(delete, path = "/api/v1/webhooks/{id}/secret/previous", tag = "webhooks", security(("apiKey" = [])), params(("id" = String, Path)), responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn end_secret_overlap(
    State(state): State<AppState>,
    ApiAdmin(partner): ApiAdmin,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    service::end_secret_overlap(&state, &partner.0, &partner.1, &parse_id(&id)?).await.map_err(refusal(&id))?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/webhooks/{id}/secret/rotate`
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/secret/rotate", tag = "webhooks", security(("apiKey" = [])), params(("id" = String, Path)), responses((status = 200, body = RotatedSecret), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn rotate_secret(
    State(state): State<AppState>,
    ApiAdmin(partner): ApiAdmin,
    Path(id): Path<String>,
) -> Result<Json<RotatedSecret>, ApiError> {
    Ok(Json(service::rotate_secret(&state, &partner.0, &partner.1, &parse_id(&id)?).await.map_err(refusal(&id))?))
}
