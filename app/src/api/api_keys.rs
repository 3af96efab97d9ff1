//! The partner's API keys: list, create (the key is shown once), revoke.

use leptos::prelude::*;

use super::AppError;
use crate::domain::{ApiKeySummary, CreatedApiKey};

/// The signed-in partner's keys, newest first (admins only: keys are settings).
#[server(endpoint = "api_keys/list")]
pub async fn list_api_keys() -> Result<Vec<ApiKeySummary>, AppError> {
    let (user, state) = super::require_admin().await?;
    Ok(crate::store::api_keys::list(&state.db, &user.partner_id).await?)
}

/// Makes a key for the signed-in partner. The answer is the only place the key ever appears.
#[server(endpoint = "api_keys/create")]
pub async fn create_api_key(
    name: String,
    role: Option<String>,
    environment: Option<String>,
) -> Result<CreatedApiKey, AppError> {
    use crate::domain::{ApiKeyName, Counted, Role};

    let (user, state) = super::require_admin_in(environment).await?;
    let name = ApiKeyName::parse(&name)?;
    let role = role.as_deref().map(Role::parse).transpose()?.unwrap_or_default();
    let quotas = &state.settings.quotas;
    crate::service::accounts::create_api_key(
        &state.db,
        &user.partner_id,
        user.environment,
        &user.actor(),
        &name,
        role,
        quotas.api_keys,
    )
    .await?
    .ok_or_else(|| AppError::LimitReached(Counted::ApiKeys.refusal(quotas)))
}

/// Revokes one of the signed-in partner's keys; it stops working at once.
#[server(endpoint = "api_keys/revoke")]
pub async fn revoke_api_key(id: String) -> Result<ApiKeySummary, AppError> {
    use crate::domain::ApiKeyId;

    let (user, state) = super::require_admin().await?;
    // A malformed id is treated like a missing key: neither exists for this partner.
    let id = ApiKeyId::parse(&id).map_err(|_| AppError::NotFound)?;
    crate::service::accounts::revoke_api_key(&state.db, &user.partner_id, &user.actor(), &id)
        .await?
        .ok_or(AppError::NotFound)
}
