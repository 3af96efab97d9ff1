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
pub async fn create_api_key(name: String, role: Option<String>) -> Result<CreatedApiKey, AppError> {
    use crate::domain::{ApiKeyName, Role};
    use crate::{auth, store};

    let (user, state) = super::require_admin().await?;
    let name = ApiKeyName::parse(&name)?;
    let role = role.as_deref().map(Role::parse).transpose()?.unwrap_or_default();
    let key = auth::generate_api_key();
    let quotas = &state.settings.quotas;
    let summary = store::api_keys::create(
        &state.db,
        &user.partner_id,
        &name,
        role,
        &key.display_prefix(),
        &auth::hash_api_key(&key),
        quotas.api_keys,
    )
    .await?
    .ok_or_else(|| AppError::LimitReached(crate::domain::Counted::ApiKeys.refusal(quotas)))?;
    tracing::info!(partner = %user.partner_id, key = %summary.id, "API key created");
    Ok(CreatedApiKey { summary, key: key.expose().to_owned() })
}

/// Revokes one of the signed-in partner's keys; it stops working at once.
#[server(endpoint = "api_keys/revoke")]
pub async fn revoke_api_key(id: String) -> Result<ApiKeySummary, AppError> {
    use crate::{domain::ApiKeyId, store};

    let (user, state) = super::require_admin().await?;
    // A malformed id is treated like a missing key: neither exists for this partner.
    let id = ApiKeyId::parse(&id).map_err(|_| AppError::NotFound)?;
    let revoked = store::api_keys::revoke(&state.db, &user.partner_id, &id).await?.ok_or(AppError::NotFound)?;
    tracing::info!(partner = %user.partner_id, key = %id, "API key revoked");
    Ok(revoked)
}
