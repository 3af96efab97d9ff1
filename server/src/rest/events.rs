//! `POST /api/v1/events`: the operator publishes an event for a partner.

use std::sync::Arc;

use app::domain::NewEvent;
use app::state::AppState;
use app::store::events::Published;
use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ApiSettings;
use super::{ApiError, ApiJson, ErrorBody};

/// A caller holding the operator token.
pub struct Operator;

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &AppState) -> Result<Self, ApiError> {
        let settings = parts
            .extensions
            .get::<Arc<ApiSettings>>()
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("API settings missing"))?;
        let Some(expected) = settings.operator_token.as_ref() else {
            return Err(ApiError::Forbidden(
                "operator calls are disabled: the operator has not set PORTAL_OPERATOR_TOKEN",
            ));
        };
        let given = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or(ApiError::Unauthorized("send the operator token as `Authorization: Bearer <token>`"))?;
        if !expected.matches(given) {
            return Err(ApiError::Unauthorized("the operator token is not valid"));
        }
        Ok(Operator)
    }
}

/// An event to publish.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PublishBody {
    /// The partner it happened for (`ptn_…`).
    partner_id: String,
    /// `production` (the default) or `sandbox`: whose webhooks get it.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "production")]
    environment: Option<String>,
    /// `verification.completed`, `verification.failed`, `verification.expired` or `review.completed`.
    #[serde(rename = "type")]
    event_type: String,
    /// Overall result, such as `success` or `failed`.
    status: String,
    /// The details, a JSON object.
    #[schema(value_type = Object)]
    data: serde_json::Value,
    /// Your id for the event; publishing the same id again creates nothing new.
    #[serde(default)]
    id: Option<String>,
}

/// `{id, deliveries}`
#[derive(Debug, Serialize, ToSchema)]
pub struct PublishedBody {
    id: String,
    /// How many active webhooks it will be sent to.
    deliveries: i64,
}

/// `POST /api/v1/events`: stores the event and queues its deliveries in one transaction.
#[utoipa::path(post, path = "/api/v1/events", tag = "operator", security(("operatorToken" = [])), request_body = PublishBody,
    responses((status = 202, body = PublishedBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn publish(
    State(state): State<AppState>,
    _operator: Operator,
    Extension(_settings): Extension<Arc<ApiSettings>>,
    ApiJson(body): ApiJson<PublishBody>,
) -> Result<(StatusCode, Json<PublishedBody>), ApiError> {
    let event = NewEvent::parse(
        &body.partner_id,
        body.environment.as_deref(),
        &body.event_type,
        &body.status,
        body.data,
        body.id.as_deref(),
    )
    .map_err(ApiError::Invalid)?;
    let deliveries = match app::service::events::publish_with(&state.db, &state.publisher, &state.wake, &event).await? {
        Published::New { deliveries } | Published::Again { deliveries } => deliveries,
        Published::Conflict => {
            return Err(ApiError::Conflict(format!(
                "event id `{}` belongs to another partner's event, or to this partner's other environment",
                event.id
            )));
        }
        Published::UnknownPartner => {
            return Err(ApiError::Invalid(vec![app::domain::FieldError::new(
                "partnerId",
                format!("`{}` is not a partner", event.partner),
            )]));
        }
    };
    Ok((StatusCode::ACCEPTED, Json(PublishedBody { id: event.id.to_string(), deliveries })))
}
