//! A partner's API keys: only their hashes are kept.

use anyhow::Context;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Db, from_ms, now_ms};
use crate::domain::{Actor, ApiKeyId, ApiKeyName, ApiKeySummary, PartnerId, Role};

const COLUMNS: &str = "id, name, prefix, role, created_at, last_used_at, revoked_at, created_by";

fn summary(row: &AnyRow) -> anyhow::Result<ApiKeySummary> {
    Ok(ApiKeySummary {
        id: ApiKeyId::parse(&row.try_get::<String, _>("id")?)?,
        name: row.try_get("name")?,
        prefix: row.try_get("prefix")?,
        role: Role::parse(&row.try_get::<String, _>("role")?).unwrap_or(Role::Viewer),
        created_at: from_ms(row.try_get("created_at")?),
        last_used_at: row.try_get::<Option<i64>, _>("last_used_at")?.map(from_ms),
        revoked_at: row.try_get::<Option<i64>, _>("revoked_at")?.map(from_ms),
        created_by: row.try_get("created_by")?,
    })
}

/// A key to store: what lists show of it, its hash, and who made it.
pub struct NewApiKey<'a> {
    /// The partner's label.
    pub name: &'a ApiKeyName,
    /// What it may do.
    pub role: Role,
    /// `whp_` and the next characters, to tell keys apart.
    pub prefix: &'a str,
    /// SHA-256 of the key.
    pub key_hash: &'a str,
    /// Who made it, as the audit log names them.
    pub created_by: &'a str,
}

/// Records a new key for `partner`, given its hash and display prefix; `None` when the
/// partner already has `limit` keys in use.
#[tracing::instrument(skip_all, fields(partner = %partner))]
pub async fn create(
    db: &Db,
    partner: &PartnerId,
    key: &NewApiKey<'_>,
    limit: u32,
) -> anyhow::Result<Option<ApiKeySummary>> {
    let id = ApiKeyId::generate();
    let mut tx = db.begin_write().await?;
    if !super::quotas::has_room(&mut tx, db.backend(), partner, crate::domain::Counted::ApiKeys, limit).await? {
        return Ok(None);
    }
    let row = sqlx::query(&format!(
        "INSERT INTO api_keys (id, partner_id, name, prefix, key_hash, created_at, role, created_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {COLUMNS}"
    ))
    .bind(id.as_str())
    .bind(partner.as_str())
    .bind(key.name.as_str())
    .bind(key.prefix)
    .bind(key.key_hash)
    .bind(now_ms())
    .bind(key.role.as_str())
    .bind(key.created_by)
    .fetch_one(&mut *tx)
    .await
    .context("could not store the API key")?;
    tx.commit().await.context("could not commit the API key")?;
    summary(&row).map(Some)
}

/// The partner's keys, newest first, revoked ones included.
#[tracing::instrument(skip_all, fields(partner = %partner))]
pub async fn list(db: &Db, partner: &PartnerId) -> anyhow::Result<Vec<ApiKeySummary>> {
    let rows =
        sqlx::query(&format!("SELECT {COLUMNS} FROM api_keys WHERE partner_id = $1 ORDER BY created_at DESC, id DESC"))
            .bind(partner.as_str())
            .fetch_all(db.pool())
            .await
            .context("could not list API keys")?;
    rows.iter().map(summary).collect()
}

/// Revokes one of the partner's keys. `None` when the partner has no such key (another
/// partner's key looks exactly like a missing one); revoking twice keeps the first time.
#[tracing::instrument(skip_all, fields(partner = %partner, key = %id))]
pub async fn revoke(db: &Db, partner: &PartnerId, id: &ApiKeyId) -> anyhow::Result<Option<ApiKeySummary>> {
    let row = sqlx::query(&format!(
        "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $1) \
         WHERE partner_id = $2 AND id = $3 RETURNING {COLUMNS}"
    ))
    .bind(now_ms())
    .bind(partner.as_str())
    .bind(id.as_str())
    .fetch_optional(db.writer())
    .await
    .context("could not revoke the API key")?;
    row.as_ref().map(summary).transpose()
}

/// How stale `last_used_at` may get before a request writes it again: a busy client must not
/// turn every API read into a database write.
const LAST_USED_RESOLUTION_MS: i64 = 60_000;

/// The partner a live key belongs to, the key's role and the key as the audit log names it,
/// by the key's hash; notes the time of use (to the minute).
#[tracing::instrument(skip_all)]
pub async fn authenticate(db: &Db, key_hash: &str) -> anyhow::Result<Option<(PartnerId, Role, Actor)>> {
    let row = sqlx::query(
        "SELECT id, partner_id, role, name, prefix, last_used_at FROM api_keys \
         WHERE key_hash = $1 AND revoked_at IS NULL",
    )
    .bind(key_hash)
    .fetch_optional(db.pool())
    .await
    .context("could not check the API key")?;
    let Some(row) = row else { return Ok(None) };
    let partner = PartnerId::parse(&row.try_get::<String, _>("partner_id")?)?;
    let role = Role::parse(&row.try_get::<String, _>("role")?).unwrap_or(Role::Viewer);
    let now = now_ms();
    let last_used: Option<i64> = row.try_get("last_used_at")?;
    if last_used.is_none_or(|t| now - t >= LAST_USED_RESOLUTION_MS) {
        sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE id = $2")
            .bind(now)
            .bind(row.try_get::<String, _>("id")?)
            .execute(db.writer())
            .await
            .context("could not note the API key's use")?;
    }
    let actor = Actor::ApiKey { name: row.try_get("name")?, prefix: row.try_get("prefix")? };
    Ok(Some((partner, role, actor)))
}
