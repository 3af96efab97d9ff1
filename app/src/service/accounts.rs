//! A partner's people and keys: add a user, create and revoke API keys. The portal holds
//! partners to the operator's quotas (`limit`); the operator's own commands pass `u32::MAX`.

use crate::auth;
use crate::domain::{
    ApiKeyId, ApiKeyName, ApiKeySummary, CreatedApiKey, EmailAddress, NewPassword, PartnerId, Role, UserId,
};
use crate::store::accounts::{self, CreatePartnerError};
use crate::store::{Db, api_keys};

/// Adds a user with `password` (hashed in one of argon2's few slots) to `partner`, when it
/// has fewer than `limit` users; `None` when there is no such partner.
pub async fn add_user(
    db: &Db,
    partner: &PartnerId,
    email: &EmailAddress,
    role: Role,
    password: &NewPassword,
    limit: u32,
) -> Result<Option<UserId>, CreatePartnerError> {
    let hash = auth::hash_password_off_thread(password).await?;
    let user = accounts::add_user(db, partner, email, role, &hash, limit).await?;
    if let Some(user) = &user {
        tracing::info!(partner = %partner, user = %user, role = role.as_str(), "user added");
    }
    Ok(user)
}

/// A new API key for `partner` (the key itself shown only in this answer; stored hashed), when
/// it has fewer than `limit` keys in use; `None` when it has that many.
pub async fn create_api_key(
    db: &Db,
    partner: &PartnerId,
    name: &ApiKeyName,
    role: Role,
    limit: u32,
) -> anyhow::Result<Option<CreatedApiKey>> {
    let key = auth::generate_api_key();
    let hash = auth::hash_api_key(&key);
    let Some(summary) = api_keys::create(db, partner, name, role, &key.display_prefix(), &hash, limit).await? else {
        return Ok(None);
    };
    tracing::info!(partner = %partner, key = %summary.id, "API key created");
    Ok(Some(CreatedApiKey { summary, key: key.expose().to_owned() }))
}

/// Revokes one of `partner`'s keys; it stops working at once. `None` when it has no such key.
pub async fn revoke_api_key(db: &Db, partner: &PartnerId, id: &ApiKeyId) -> anyhow::Result<Option<ApiKeySummary>> {
    let revoked = api_keys::revoke(db, partner, id).await?;
    if revoked.is_some() {
        tracing::info!(partner = %partner, key = %id, "API key revoked");
    }
    Ok(revoked)
}
