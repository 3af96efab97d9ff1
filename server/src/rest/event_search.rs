//! Event search over REST: `GET /api/v1/events` (a partner's events, newest first, filtered and
//! searched) and `GET /api/v1/events/{id}` (one, with its deliveries and their attempts).

use app::domain::{EventDetail, EventPage, EventQuery};
use app::state::AppState;
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use utoipa::IntoParams;

use super::{ApiError, ApiPartner, ErrorBody};

/// Search filters and paging, as query parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // read through `EventQuery`; here for the OpenAPI document
pub struct EventParams {
    /// An event type, e.g. `verification.completed`.
    r#type: Option<String>,
    /// Published from this time on (RFC 3339).
    since: Option<String>,
    /// Published before this time (RFC 3339).
    until: Option<String>,
    /// An event id, or a `verificationId` or `sessionId` inside the events' data.
    search: Option<String>,
    /// The `next` of the previous page.
    cursor: Option<String>,
}

/// `GET /api/v1/events`: the key's environment's events, newest first, 50 a page, `{data, next}`.
#[utoipa::path(get, path = "/api/v1/events", tag = "events", security(("apiKey" = [])), params(EventParams), responses((status = 200, body = EventPage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    ApiPartner(partner, _): ApiPartner,
    params: Result<Query<EventQuery>, QueryRejection>,
) -> Result<Json<EventPage>, ApiError> {
    let Query(query) = params.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    Ok(Json(app::service::events::search(&state.db, &partner, &query).await?))
}

/// `GET /api/v1/events/{id}`: one event, its data, and per webhook its delivery and attempts.
#[utoipa::path(get, path = "/api/v1/events/{id}", tag = "events", security(("apiKey" = [])), params(("id" = String, Path)), responses((status = 200, body = EventDetail), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn show(
    State(state): State<AppState>,
    ApiPartner(partner, _): ApiPartner,
    Path(id): Path<String>,
) -> Result<Json<EventDetail>, ApiError> {
    Ok(Json(app::service::events::event(&state.db, &partner, &id).await?))
}
