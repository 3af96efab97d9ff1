//! "Recover failed deliveries": after an outage on their side, a partner queues again every
//! delivery of a webhook that failed in a period. Counted first by the database; queued in
//! chunks, each in its own short write transaction; each failed delivery is queued again in
//! place (pending, attempts from 1), so two runs at once queue it once.

use anyhow::Context;
use sqlx::Row;

use crate::domain::{PartnerId, RecoveryId, RecoveryView, WebhookId};
use crate::store::{Db, from_ms, get_flag, now_ms};

/// What asking to recover did.
#[derive(Debug, Clone, PartialEq)]
pub enum Recovery {
    /// Started: this many deliveries queued again.
    Started(RecoveryView),
    /// The partner has no such webhook.
    NotFound,
    /// The webhook is switched off; activate it first.
    WebhookInactive,
}

/// Most deliveries one transaction of a recovery queues again.
const CHUNK: i64 = 500;

/// The failed deliveries of a period: `FROM … WHERE …` (binds: webhook, since, until).
const FAILED_IN_PERIOD: &str =
    "FROM deliveries WHERE webhook_id = $1 AND state = 'failed' AND updated_at >= $2 AND updated_at < $3";

/// Whether the partner has the webhook, and whether it is active.
async fn webhook_active(db: &Db, partner: &PartnerId, webhook: &WebhookId) -> anyhow::Result<Option<bool>> {
    let row = sqlx::query("SELECT active FROM webhooks WHERE partner_id = $1 AND id = $2")
        .bind(partner.as_str())
        .bind(webhook.as_str())
        .fetch_optional(db.pool())
        .await
        .context("could not load the webhook")?;
    Ok(row.map(|row| get_flag(&row, "active")).transpose()?)
}

/// How many of the webhook's deliveries failed from `since` until `until` (ms); `None` when
/// the partner has no such webhook. Counted by the database.
pub async fn count_failed(
    db: &Db,
    partner: &PartnerId,
    webhook: &WebhookId,
    since: i64,
    until: i64,
) -> anyhow::Result<Option<i64>> {
    if webhook_active(db, partner, webhook).await?.is_none() {
        return Ok(None);
    }
    let n: i64 = sqlx::query(&format!("SELECT COUNT(*) AS n {FAILED_IN_PERIOD}"))
        .bind(webhook.as_str())
        .bind(since)
        .bind(until)
        .fetch_one(db.pool())
        .await
        .context("could not count the failed deliveries")?
        .try_get("n")?;
    Ok(Some(n))
}

/// Queues again every delivery of an active webhook that failed from `since` until `until`
/// (ms), under a new recovery whose progress [`recovery_view`] reads.
#[tracing::instrument(skip_all, fields(partner = %partner, webhook = %webhook))]
pub async fn start_recovery(
    db: &Db,
    partner: &PartnerId,
    webhook: &WebhookId,
    since: i64,
    until: i64,
) -> anyhow::Result<Recovery> {
    match webhook_active(db, partner, webhook).await? {
        None => return Ok(Recovery::NotFound),
        Some(false) => return Ok(Recovery::WebhookInactive),
        Some(true) => {}
    }
    let id = RecoveryId::generate();
    let now = now_ms();
    sqlx::query(
        "INSERT INTO recoveries (id, partner_id, webhook_id, since, until, total, created_at) \
         VALUES ($1, $2, $3, $4, $5, 0, $6)",
    )
    .bind(id.as_str())
    .bind(partner.as_str())
    .bind(webhook.as_str())
    .bind(since)
    .bind(until)
    .bind(now)
    .execute(db.writer())
    .await
    .context("could not note the recovery")?;
    // Each chunk leaves the period (its rows' `updated_at` becomes now, at or after `until`),
    // so the next chunk finds the next ones, and a second run finds none of them. Unsorted: a
    // sort would read every failed row of the webhook for each chunk, on the one writer.
    let until = until.min(now);
    let mut total = 0;
    loop {
        let queued = sqlx::query(&format!(
            "UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at = $4, locked_until = NULL, \
             locked_by = NULL, recovery_id = $5, updated_at = $4 \
             WHERE id IN (SELECT id {FAILED_IN_PERIOD} LIMIT $6)"
        ))
        .bind(webhook.as_str())
        .bind(since)
        .bind(until)
        .bind(now_ms().max(until))
        .bind(id.as_str())
        .bind(CHUNK)
        .execute(db.writer())
        .await
        .context("could not queue failed deliveries again")?
        .rows_affected() as i64;
        total += queued;
        if queued < CHUNK {
            break;
        }
    }
    sqlx::query("UPDATE recoveries SET total = $1 WHERE id = $2")
        .bind(total)
        .bind(id.as_str())
        .execute(db.writer())
        .await
        .context("could not note the recovery's total")?;
    let view = recovery_view(db, partner, webhook).await?.context("the recovery just made is missing")?;
    Ok(Recovery::Started(view))
}

/// The webhook's newest recovery and its progress; `None` when it never had one.
pub async fn recovery_view(db: &Db, partner: &PartnerId, webhook: &WebhookId) -> anyhow::Result<Option<RecoveryView>> {
    let row = sqlx::query(
        "SELECT id, since, until, total, created_at FROM recoveries WHERE partner_id = $1 AND webhook_id = $2 \
         ORDER BY created_at DESC, id DESC LIMIT 1",
    )
    .bind(partner.as_str())
    .bind(webhook.as_str())
    .fetch_optional(db.pool())
    .await
    .context("could not read the recovery")?;
    let Some(row) = row else { return Ok(None) };
    let id: String = row.try_get("id")?;
    let (delivered, failed, waiting) = crate::store::log::run_progress(db, "recovery_id", &id).await?;
    Ok(Some(RecoveryView {
        id: RecoveryId::parse(&id)?,
        since: from_ms(row.try_get("since")?),
        until: from_ms(row.try_get("until")?),
        total: row.try_get("total")?,
        delivered,
        failed,
        waiting,
        created_at: from_ms(row.try_get("created_at")?),
    }))
}
