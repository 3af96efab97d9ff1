//! Bearer authentication for partners' API keys.

use app::auth::hash_api_key;
use app::domain::{Actor, ApiKeyToken, PartnerId, Role};
use app::state::AppState;
use app::store;
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::ApiError;

/// The partner an API key belongs to, and the key as the audit log names it. A handler that
/// takes this can only run for a caller with a live key, and only ever sees that key's partner.
#[derive(Debug, Clone)]
pub struct ApiPartner(pub PartnerId, pub Actor);

/// An [`ApiPartner`] whose key may change things (an `admin` key); a `viewer` key gets 403.
/// Every route that changes something takes this.
#[derive(Debug, Clone)]
pub struct ApiAdmin(pub ApiPartner);

impl FromRequestParts<AppState> for ApiAdmin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let (partner, role, actor) = authenticate(parts, state).await?;
        if !role.can_change() {
            return Err(ApiError::Forbidden(
                "this API key is a viewer key: it reads webhooks and logs, and changes nothing",
            ));
        }
        Ok(Self(ApiPartner(partner, actor)))
    }
}

impl FromRequestParts<AppState> for ApiPartner {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let (partner, _, actor) = authenticate(parts, state).await?;
        Ok(Self(partner, actor))
    }
}

/// The partner and role of the request's API key.
async fn authenticate(parts: &Parts, state: &AppState) -> Result<(PartnerId, Role, Actor), ApiError> {
    let header = parts
        .headers
        .get(AUTHORIZATION)
        .ok_or(ApiError::Unauthorized("send your API key as `Authorization: Bearer <key>`"))?;
    let token = header
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .ok_or(ApiError::Unauthorized("the Authorization header must be `Bearer <key>`"))?;
    let token = ApiKeyToken::parse(token).ok_or(ApiError::Unauthorized("the API key is not valid"))?;
    store::api_keys::authenticate(&state.db, &hash_api_key(&token))
        .await?
        .ok_or(ApiError::Unauthorized("the API key is not valid or was revoked"))
}
