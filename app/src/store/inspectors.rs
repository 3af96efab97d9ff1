//! Request inspectors and what they captured. Partner-scoped functions take the partner first;
//! [`owner`] and [`capture`] serve the capture URL, which strangers may call.

use anyhow::Context;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Db, from_ms, now_ms};
use crate::domain::{
    CaptureVerdict, CapturedId, CapturedRequest, Counted, INSPECTOR_KEEPS, INSPECTOR_LIFETIME_HOURS, InspectorId,
    InspectorView, PartnerId, capture_url,
};

const LIFETIME_MS: i64 = INSPECTOR_LIFETIME_HOURS * 3600 * 1000;

const COLUMNS: &str = "i.id, i.created_at, i.expires_at, \
    (SELECT COUNT(*) FROM inspector_requests r WHERE r.inspector_id = i.id) AS request_count";

fn view(row: &AnyRow, public: &url::Url) -> anyhow::Result<InspectorView> {
    let id = InspectorId::parse(&row.try_get::<String, _>("id")?)?;
    Ok(InspectorView {
        url: capture_url(public, &id),
        id,
        created_at: from_ms(row.try_get("created_at")?),
        expires_at: from_ms(row.try_get("expires_at")?),
        request_count: u32::try_from(row.try_get::<i64, _>("request_count")?).unwrap_or(u32::MAX),
        expired: row.try_get::<i64, _>("expires_at")? <= now_ms(),
    })
}

/// A new inspector for 24 hours, or `None` when the partner already has `limit` (its expired
/// ones are deleted first, so they never count).
#[tracing::instrument(skip_all, fields(partner = %partner))]
pub async fn create(
    db: &Db,
    partner: &PartnerId,
    public: &url::Url,
    limit: u32,
) -> anyhow::Result<Option<InspectorView>> {
    let id = InspectorId::generate();
    let now = now_ms();
    let mut tx = db.begin_write().await?;
    sqlx::query("DELETE FROM inspectors WHERE partner_id = $1 AND expires_at <= $2")
        .bind(partner.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await
        .context("could not delete the partner's expired inspectors")?;
    if !super::quotas::has_room(&mut tx, db.backend(), partner, Counted::Inspectors, limit).await? {
        return Ok(None);
    }
    sqlx::query("INSERT INTO inspectors (id, partner_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
        .bind(id.as_str())
        .bind(partner.as_str())
        .bind(now)
        .bind(now + LIFETIME_MS)
        .execute(&mut *tx)
        .await
        .context("could not store the inspector")?;
    tx.commit().await.context("could not commit the inspector")?;
    Ok(Some(InspectorView {
        url: capture_url(public, &id),
        id,
        created_at: from_ms(now),
        expires_at: from_ms(now + LIFETIME_MS),
        request_count: 0,
        expired: false,
    }))
}

/// The partner's inspectors, newest first (expired ones too, until they are pruned).
pub async fn list(db: &Db, partner: &PartnerId, public: &url::Url) -> anyhow::Result<Vec<InspectorView>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM inspectors i WHERE i.partner_id = $1 ORDER BY i.created_at DESC, i.id DESC"
    ))
    .bind(partner.as_str())
    .fetch_all(db.pool())
    .await
    .context("could not list the inspectors")?;
    rows.iter().map(|row| view(row, public)).collect()
}

/// One of the partner's inspectors.
pub async fn get(
    db: &Db,
    partner: &PartnerId,
    id: &InspectorId,
    public: &url::Url,
) -> anyhow::Result<Option<InspectorView>> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM inspectors i WHERE i.partner_id = $1 AND i.id = $2"))
        .bind(partner.as_str())
        .bind(id.as_str())
        .fetch_optional(db.pool())
        .await
        .context("could not load the inspector")?;
    row.as_ref().map(|row| view(row, public)).transpose()
}

/// Deletes one of the partner's inspectors and what it captured; `false` when there is none.
pub async fn delete(db: &Db, partner: &PartnerId, id: &InspectorId) -> anyhow::Result<bool> {
    let done = sqlx::query("DELETE FROM inspectors WHERE partner_id = $1 AND id = $2")
        .bind(partner.as_str())
        .bind(id.as_str())
        .execute(db.writer())
        .await
        .context("could not delete the inspector")?;
    Ok(done.rows_affected() > 0)
}

/// The partner an inspector that has not expired belongs to, for a request arriving at its
/// capture URL.
pub async fn owner(db: &Db, id: &InspectorId) -> anyhow::Result<Option<PartnerId>> {
    let row = sqlx::query("SELECT partner_id FROM inspectors WHERE id = $1 AND expires_at > $2")
        .bind(id.as_str())
        .bind(now_ms())
        .fetch_optional(db.pool())
        .await
        .context("could not load the inspector")?;
    row.map(|row| Ok(PartnerId::parse(&row.try_get::<String, _>("partner_id")?)?)).transpose()
}

/// A request that arrived at an inspector's capture URL.
#[derive(Debug)]
pub struct NewCapture<'a> {
    /// Its HTTP method.
    pub method: &'a str,
    /// Its headers, names in lower case.
    pub headers: &'a [(String, String)],
    /// Its body as text.
    pub body: &'a str,
    /// The signature checks, when a webhook of the partner points at the inspector.
    pub verdict: Option<&'a CaptureVerdict>,
}

/// Keeps a request an inspector received, and drops its requests beyond the newest
/// [`INSPECTOR_KEEPS`]; `None` when the inspector was deleted meanwhile.
pub async fn capture(db: &Db, inspector: &InspectorId, request: &NewCapture<'_>) -> anyhow::Result<Option<CapturedId>> {
    let id = CapturedId::generate();
    let mut tx = db.begin_write().await?;
    let inserted = sqlx::query(
        "INSERT INTO inspector_requests (id, inspector_id, seq, received_at, method, headers, body, verdict) \
         SELECT $1, id, (SELECT COALESCE(MAX(seq), 0) + 1 FROM inspector_requests WHERE inspector_id = $7), \
           $2, $3, $4, $5, $6 FROM inspectors WHERE id = $7",
    )
    .bind(id.as_str())
    .bind(now_ms())
    .bind(request.method)
    .bind(serde_json::to_string(request.headers)?)
    .bind(request.body)
    .bind(request.verdict.map(serde_json::to_string).transpose()?)
    .bind(inspector.as_str())
    .execute(&mut *tx)
    .await
    .context("could not keep the captured request")?;
    if inserted.rows_affected() == 0 {
        return Ok(None);
    }
    sqlx::query(
        "DELETE FROM inspector_requests WHERE inspector_id = $1 AND id NOT IN \
         (SELECT id FROM inspector_requests WHERE inspector_id = $1 ORDER BY seq DESC LIMIT $2)",
    )
    .bind(inspector.as_str())
    .bind(INSPECTOR_KEEPS as i64)
    .execute(&mut *tx)
    .await
    .context("could not drop the inspector's oldest requests")?;
    tx.commit().await.context("could not commit the captured request")?;
    Ok(Some(id))
}

/// What one of the partner's inspectors captured, newest first; `None` when it is not the
/// partner's.
pub async fn requests(db: &Db, partner: &PartnerId, id: &InspectorId) -> anyhow::Result<Option<Vec<CapturedRequest>>> {
    let owned = sqlx::query("SELECT id FROM inspectors WHERE partner_id = $1 AND id = $2")
        .bind(partner.as_str())
        .bind(id.as_str())
        .fetch_optional(db.pool())
        .await
        .context("could not load the inspector")?;
    if owned.is_none() {
        return Ok(None);
    }
    let rows = sqlx::query(
        "SELECT id, received_at, method, headers, body, verdict FROM inspector_requests \
         WHERE inspector_id = $1 ORDER BY seq DESC LIMIT $2",
    )
    .bind(id.as_str())
    .bind(INSPECTOR_KEEPS as i64)
    .fetch_all(db.pool())
    .await
    .context("could not load the captured requests")?;
    let captured = rows
        .iter()
        .map(|row| {
            let verdict: Option<String> = row.try_get("verdict")?;
            Ok(CapturedRequest {
                id: CapturedId::parse(&row.try_get::<String, _>("id")?)?,
                received_at: from_ms(row.try_get("received_at")?),
                method: row.try_get("method")?,
                headers: serde_json::from_str(&row.try_get::<String, _>("headers")?)?,
                body: row.try_get("body")?,
                verdict: verdict.as_deref().map(serde_json::from_str).transpose()?,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Some(captured))
}

/// Deletes the inspectors that expired before `now`, with what they captured: one statement.
pub async fn prune(db: &Db, now: i64) -> anyhow::Result<u64> {
    let done = sqlx::query("DELETE FROM inspectors WHERE expires_at <= $1")
        .bind(now)
        .execute(db.writer())
        .await
        .context("could not delete expired inspectors")?;
    Ok(done.rows_affected())
}
