//! `/api/v1/inspectors`: request inspectors, throwaway capture URLs served by the portal, and
//! what they captured.

use app::api::AppError;
use app::domain::{CapturedRequest, InspectorId, InspectorView};
use app::service::inspectors as service;
use app::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use super::{ApiAdmin, ApiError, ApiPartner, ErrorBody};

/// `{data: [...]}`: the partner's inspectors, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct InspectorList {
    data: Vec<InspectorView>,
}

/// `{data: [...]}`: what an inspector captured, newest first (the newest 100 are kept).
#[derive(Debug, Serialize, ToSchema)]
pub struct CapturedList {
    data: Vec<CapturedRequest>,
}

fn not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("no request inspector with id `{}`", id.chars().take(64).collect::<String>()))
}

/// The id in the path; a malformed one is as missing as another partner's, and the service's
/// "not found" names the id asked for.
fn parse_id(id: &str) -> Result<InspectorId, ApiError> {
    InspectorId::parse(id).map_err(|_| not_found(id))
}

fn refusal(id: &str) -> impl Fn(AppError) -> ApiError + '_ {
    move |err| match err {
        AppError::NotFound => not_found(id),
        other => other.into(),
    }
}

/// `POST /api/v1/inspectors`: 201 with a new capture URL that keeps the newest 100 requests it
/// receives (256 KiB each at most) for 24 hours. Point a webhook or a test at `url`.
#[utoipa::path(post, path = "/api/v1/inspectors", tag = "inspectors", security(("apiKey" = [])), responses((status = 201, body = InspectorView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    ApiAdmin(partner): ApiAdmin,
) -> Result<(StatusCode, Json<InspectorView>), ApiError> {
    Ok((StatusCode::CREATED, Json(service::create(&state, &partner.0, &partner.1).await?)))
}

/// `GET /api/v1/inspectors`
#[utoipa::path(get, path = "/api/v1/inspectors", tag = "inspectors", security(("apiKey" = [])), responses((status = 200, body = InspectorList), (status = 401, body = ErrorBody)))]
pub async fn list(State(state): State<AppState>, partner: ApiPartner) -> Result<Json<InspectorList>, ApiError> {
    Ok(Json(InspectorList { data: service::list(&state, &partner.0).await? }))
}

/// `GET /api/v1/inspectors/{id}`
#[utoipa::path(get, path = "/api/v1/inspectors/{id}", tag = "inspectors", security(("apiKey" = [])), params(("id" = String, Path)), responses((status = 200, body = InspectorView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn show(
    State(state): State<AppState>,
    partner: ApiPartner,
    Path(id): Path<String>,
) -> Result<Json<InspectorView>, ApiError> {
    Ok(Json(service::get(&state, &partner.0, &parse_id(&id)?).await.map_err(refusal(&id))?))
}

/// `DELETE /api/v1/inspectors/{id}`: 204; the capture URL answers 404 from then on.
#[utoipa::path(delete, path = "/api/v1/inspectors/{id}", tag = "inspectors", security(("apiKey" = [])), params(("id" = String, Path)), responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    ApiAdmin(partner): ApiAdmin,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    service::delete(&state, &partner.0, &partner.1, &parse_id(&id)?).await.map_err(refusal(&id))?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/inspectors/{id}/requests`: newest first, each with its method, headers, body,
/// time and the signature checks against the partner's webhook that points at the inspector.
#[utoipa::path(get, path = "/api/v1/inspectors/{id}/requests", tag = "inspectors", security(("apiKey" = [])), params(("id" = String, Path)), responses((status = 200, body = CapturedList), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn requests(
    State(state): State<AppState>,
    partner: ApiPartner,
    Path(id): Path<String>,
) -> Result<Json<CapturedList>, ApiError> {
    Ok(Json(CapturedList { data: service::requests(&state, &partner.0, &parse_id(&id)?).await.map_err(refusal(&id))? }))
}
