//! A partner's quotas as the store keeps them: things counted where they are inserted, under
//! a lock on the partner so parallel requests can't pass the limit together; actions counted
//! per partner and minute.

use anyhow::Context;
use sqlx::Row;

use super::{Backend, Db, now_ms};
use crate::domain::{Counted, Metered, PartnerId};

/// Whether `partner` has fewer than `limit` of `counted`, checked inside the transaction that
/// inserts one more. On PostgreSQL the partner's row is locked first, so a parallel insert
/// waits and then counts this one; SQLite's transactions on the writer run one at a time. The
/// lock is `FOR NO KEY UPDATE`: it serialises these checks but not the partner's other writes
/// (publishing an event references the partner's row, and `FOR UPDATE` would hold it up).
pub async fn has_room(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    partner: &PartnerId,
    counted: Counted,
    limit: u32,
) -> anyhow::Result<bool> {
    if backend == Backend::Postgres {
        sqlx::query("SELECT id FROM partners WHERE id = $1 FOR NO KEY UPDATE")
            .bind(partner.as_str())
            .fetch_optional(&mut *conn)
            .await
            .context("could not lock the partner")?;
    }
    let count = match counted {
        Counted::Webhooks => "SELECT COUNT(*) AS n FROM webhooks WHERE partner_id = $1",
        Counted::ApiKeys => "SELECT COUNT(*) AS n FROM api_keys WHERE partner_id = $1 AND revoked_at IS NULL",
        Counted::Users => "SELECT COUNT(*) AS n FROM users WHERE partner_id = $1",
        Counted::Inspectors => "SELECT COUNT(*) AS n FROM inspectors WHERE partner_id = $1",
    };
    let n: i64 = sqlx::query(count)
        .bind(partner.as_str())
        .fetch_one(&mut *conn)
        .await
        .context("could not count against the partner's limit")?
        .try_get("n")?;
    Ok(n < i64::from(limit))
}

/// Counts one `action` of `partner` in this minute: `Ok(())` while it is within
/// `per_minute`, else how many seconds until the next minute starts.
#[tracing::instrument(skip_all, fields(partner = %partner, action = action.as_str()))]
pub async fn take(db: &Db, partner: &PartnerId, action: Metered, per_minute: u32) -> anyhow::Result<Result<(), u64>> {
    let now = now_ms();
    let minute = now - now.rem_euclid(60_000);
    let used: i64 = sqlx::query(
        "INSERT INTO partner_rates (partner_id, action, minute, used) VALUES ($1, $2, $3, 1) \
         ON CONFLICT (partner_id, action) DO UPDATE SET \
           used = CASE WHEN partner_rates.minute < $3 THEN 1 ELSE partner_rates.used + 1 END, \
           minute = CASE WHEN partner_rates.minute < $3 THEN $3 ELSE partner_rates.minute END \
         RETURNING used",
    )
    .bind(partner.as_str())
    .bind(action.as_str())
    .bind(minute)
    .fetch_one(db.writer())
    .await
    .context("could not count the action against the partner's quota")?
    .try_get("used")?;
    if used <= i64::from(per_minute) { Ok(Ok(())) } else { Ok(Err(((minute + 60_000 - now) as u64).div_ceil(1000))) }
}
