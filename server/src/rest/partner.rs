//! `GET /api/v1/partner`: which partner a key speaks for.

use app::state::AppState;
use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use super::{ApiError, ApiPartner, ErrorBody};

/// The caller's partner.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PartnerBody {
    /// The partner's id (`ptn_…`), the same for both environments.
    id: String,
    name: String,
    /// The environment the key belongs to, and the only one it sees: `production` or `sandbox`.
    environment: app::domain::Environment,
}

#[utoipa::path(get, path = "/api/v1/partner", tag = "partner", security(("apiKey" = [])), responses((status = 200, body = PartnerBody), (status = 401, body = ErrorBody)))]
/// Answers the partner and environment the API key belongs to: a cheap way to check a key works.
pub async fn show(
    State(state): State<AppState>,
    ApiPartner(partner, _): ApiPartner,
) -> Result<Json<PartnerBody>, ApiError> {
    let (name, environment, account) = app::store::accounts::partner_environment(&state.db, &partner)
        .await?
        .ok_or_else(|| ApiError::NotFound("partner not found".into()))?;
    Ok(Json(PartnerBody { id: account.to_string(), name, environment }))
}
