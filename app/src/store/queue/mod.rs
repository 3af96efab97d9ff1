//! The dispatcher's queue: deliveries, and every way one is claimed, held, deferred or released.
//!
//! A delivery is `pending` (due at `next_attempt_at`), `held` (its webhook is inactive),
//! `succeeded` or `failed`. A process claims a due pending delivery by writing a lease
//! (`locked_until`, `locked_by`) and committing before it sends, so a crash leaves a lease that
//! expires and the delivery is sent again: at least once, never lost.

mod again;
mod recover;

pub use again::{Replay, Resent, count_missed, resend, start_replay};
pub use recover::{Recovery, count_failed, recovery_view, start_recovery};

use anyhow::Context;
use sqlx::Row;

use super::{Backend, BatchSql, Db, batches, now_ms, placeholders};
use crate::domain::{DeliveryId, EventId, Origin, PartnerId, WebhookId};

/// A delivery this process holds a lease on.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// The delivery.
    pub id: DeliveryId,
    /// Its partner.
    pub partner: PartnerId,
    /// Its webhook.
    pub webhook: WebhookId,
    /// Its event.
    pub event_id: EventId,
    /// Attempts made before this one.
    pub attempts: i64,
    /// Why it exists: event, resend or replay.
    pub origin: Origin,
    /// When it falls due (ms): it is sent then, not before.
    pub due_at: i64,
}

/// One webhook's places in this process: how many requests it has under way and how many it
/// may have (the dispatcher adapts that to how its receiver answers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookPlaces {
    /// The webhook.
    pub webhook: WebhookId,
    /// Requests under way to it.
    pub taken: usize,
    /// Most it may have under way at once (the partner's cap, read by the claim, can be lower).
    pub limit: usize,
}

/// What a process has in flight, and the places a claim shares out.
#[derive(Debug, Clone, Copy)]
pub struct Places<'a> {
    /// Requests under way and places per webhook, for the webhooks this process knows.
    pub per_webhook: &'a [WebhookPlaces],
    /// Requests under way per partner.
    pub per_partner: &'a [(PartnerId, usize)],
    /// Most requests at once to a webhook not in `per_webhook`.
    pub webhook_places: usize,
    /// Every place of the process.
    pub total: usize,
    /// Places no partner may take while others have none: what a partner that starts sending
    /// finds free, however long the others' receivers take to answer.
    pub reserve: usize,
}

/// Leases up to `limit` deliveries due by `horizon` (ms; now or a little later, so that one
/// claim serves the deliveries falling due over the next few milliseconds) to `worker` until
/// `lease_ms` from now, sharing `places` fairly. On PostgreSQL rows another process is
/// claiming are skipped (`FOR UPDATE SKIP LOCKED`); SQLite has one writer anyway.
///
/// Fairness, partners first: the partners with deliveries due or under way share the places
/// but the reserve, `(total - reserve) / partners` each (all of them for a partner alone), and the
/// places free go round the partners by how many each holds, fewest first; within a partner
/// round its webhooks the same way, each webhook holding at most `webhook_places`. A partner
/// whose receivers are slow fills its own share and waits; another partner's deliveries find
/// the reserve and the rest of the places free.
#[tracing::instrument(skip_all, fields(limit))]
pub async fn claim_due(
    db: &Db,
    worker: &str,
    limit: i64,
    horizon: i64,
    lease_ms: i64,
    places: &Places<'_>,
) -> anyhow::Result<Vec<Claimed>> {
    if limit <= 0 {
        return Ok(Vec::new());
    }
    let now = now_ms();
    // The in-flight counts go in as JSON parameters, so the statement's text never changes
    // and is prepared once per connection: the webhooks at their limit (skipped before the
    // window is cut, so they can't fill it), the places the others have taken and may take,
    // and the places partners have taken.
    let (full, open): (Vec<&WebhookPlaces>, Vec<&WebhookPlaces>) =
        places.per_webhook.iter().partition(|w| w.taken >= w.limit);
    let full: Vec<&str> = full.iter().map(|w| w.webhook.as_str()).collect();
    let counts = |pairs: &mut dyn Iterator<Item = (&str, usize)>| {
        serde_json::Value::Object(pairs.map(|(k, n)| (k.to_owned(), serde_json::Value::from(n))).collect()).to_string()
    };
    let busy = counts(&mut open.iter().filter(|w| w.taken > 0).map(|w| (w.webhook.as_str(), w.taken)));
    let limits =
        counts(&mut open.iter().filter(|w| w.limit != places.webhook_places).map(|w| (w.webhook.as_str(), w.limit)));
    // The window per webhook: as many due rows as the most places a webhook may take.
    let window = open.iter().map(|w| w.limit).fold(places.webhook_places, usize::max);
    let partners_busy = counts(&mut places.per_partner.iter().map(|(p, n)| (p.as_str(), *n)));
    static SQLITE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    static POSTGRES: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let text = match db.backend() {
        Backend::Sqlite => SQLITE.get_or_init(|| claim_sql(Backend::Sqlite)),
        Backend::Postgres => POSTGRES.get_or_init(|| claim_sql(Backend::Postgres)),
    };
    let rows = sqlx::query(text)
        .bind(now + lease_ms)
        .bind(worker)
        .bind(now)
        .bind(limit)
        .bind(window as i64)
        .bind(serde_json::to_string(&full)?)
        .bind(busy)
        .bind(places.webhook_places as i64)
        .bind(horizon.max(now))
        .bind(partners_busy)
        .bind(places.total as i64)
        .bind(places.reserve.min(places.total.saturating_sub(1)) as i64)
        .bind(limits)
        .fetch_all(db.writer())
        .await
        .context("could not claim deliveries")?;
    rows.into_iter()
        .map(|row| {
            Ok(Claimed {
                id: DeliveryId::parse(&row.try_get::<String, _>("id")?)?,
                partner: PartnerId::parse(&row.try_get::<String, _>("partner_id")?)?,
                webhook: WebhookId::parse(&row.try_get::<String, _>("webhook_id")?)?,
                event_id: EventId::from_trusted(row.try_get("event_id")?),
                attempts: row.try_get("attempts")?,
                origin: Origin::from_stored(&row.try_get::<String, _>("origin")?),
                due_at: row.try_get("next_attempt_at")?,
            })
        })
        .collect()
}

/// The claim's text: `$1` lease end, `$2` worker, `$3` now, `$4` limit, `$5` the window of due
/// rows looked at per webhook, `$6` the webhooks at their limit (JSON list), `$7` the places the
/// others have taken (JSON object), `$8` the places of a webhook not in `$13`, `$9` the horizon
/// (due by then), `$10` the places partners have taken (JSON object), `$11` every place, `$12`
/// the reserve, `$13` the places of the webhooks whose limit differs from `$8` (JSON object).
/// A webhook's places are the fewer of that and its partner's cap (`max_concurrent_requests`).
///
/// `hooks` finds the webhooks with pending deliveries by skipping through the
/// `deliveries_webhook_due` index (one seek per webhook, however many deliveries each has);
/// `ready` keeps those with a place free and a delivery due and not under way, with their
/// partner. The places are shared between the `active` partners, those with such a webhook or
/// with requests under way here (a partner whose deliveries all wait for a later retry takes no
/// share); `due` takes each ready webhook's oldest due deliveries, a few, from the same index.
/// So the work of a claim follows the number of webhooks with something pending, never the
/// number of deliveries: thousands queued for a webhook that is at its limit (its receiver
/// hangs) are not even looked at, and thousands queued by one partner can't hide another's.
/// The counts are read from their JSON once (`MATERIALIZED`), not once per row looked at.
fn claim_sql(backend: Backend) -> String {
    // A webhook's window: its oldest due deliveries not under way, off the index.
    let window = |columns: &str, lock: &str| {
        format!(
            "SELECT {columns} FROM deliveries x \
             WHERE x.state = 'pending' AND x.webhook_id = ready.w AND x.next_attempt_at <= $9 \
             AND (x.locked_until IS NULL OR x.locked_until < $3) \
             ORDER BY x.next_attempt_at LIMIT $5 {lock}"
        )
    };
    let (full, busy, partners, limits, greatest, least, due_from) = match backend {
        // SQLite has no LATERAL; it runs the correlated IN once per webhook, seeking each id.
        Backend::Sqlite => (
            "SELECT value FROM json_each($6)",
            "SELECT key, value AS taken FROM json_each($7)",
            "SELECT key, value AS taken FROM json_each($10)",
            "SELECT key, value AS places FROM json_each($13)",
            "MAX",
            "MIN",
            format!(
                "SELECT d.id, d.partner_id, d.webhook_id, d.next_attempt_at, ready.cap FROM ready \
                 JOIN deliveries d ON d.id IN ({})",
                window("x.id", "")
            ),
        ),
        // PostgreSQL would test a correlated IN against every delivery: LATERAL instead.
        Backend::Postgres => (
            "SELECT jsonb_array_elements_text($6::jsonb)",
            "SELECT key, value::bigint AS taken FROM jsonb_each_text($7::jsonb)",
            "SELECT key, value::bigint AS taken FROM jsonb_each_text($10::jsonb)",
            "SELECT key, value::bigint AS places FROM jsonb_each_text($13::jsonb)",
            "GREATEST",
            "LEAST",
            format!(
                "SELECT d.id, d.partner_id, d.webhook_id, d.next_attempt_at, ready.cap \
                 FROM ready CROSS JOIN LATERAL ({}) d",
                window("x.id, x.partner_id, x.webhook_id, x.next_attempt_at", "FOR UPDATE SKIP LOCKED")
            ),
        ),
    };
    format!(
        "WITH RECURSIVE hooks (w) AS ( \
           SELECT MIN(webhook_id) FROM deliveries WHERE state = 'pending' \
           UNION ALL \
           SELECT (SELECT MIN(webhook_id) FROM deliveries WHERE state = 'pending' AND webhook_id > hooks.w) \
           FROM hooks WHERE hooks.w IS NOT NULL), \
         busy AS MATERIALIZED ({busy}), \
         partners_busy AS MATERIALIZED ({partners}), \
         limits AS MATERIALIZED ({limits}), \
         ready AS MATERIALIZED ( \
           SELECT w, p, (SELECT max_concurrent_requests FROM webhooks WHERE id = h.w) AS cap FROM ( \
             SELECT hooks.w, ( \
               SELECT y.partner_id FROM deliveries y WHERE y.state = 'pending' AND y.webhook_id = hooks.w \
               AND y.next_attempt_at <= $9 AND (y.locked_until IS NULL OR y.locked_until < $3) \
               ORDER BY y.next_attempt_at LIMIT 1) AS p \
             FROM hooks WHERE hooks.w IS NOT NULL AND hooks.w NOT IN ({full})) h \
           WHERE p IS NOT NULL), \
         active AS MATERIALIZED ( \
           SELECT p FROM ready UNION SELECT key FROM partners_busy), \
         share AS MATERIALIZED ( \
           SELECT {greatest}(1, ($11 - $12) / {greatest}(1, COUNT(*))) AS places FROM active), \
         due AS ( \
           {due_from} \
           WHERE ready.p NOT IN ( \
             SELECT key FROM partners_busy WHERE taken >= (SELECT places FROM share))), \
         by_webhook AS ( \
           SELECT due.id, due.partner_id, due.next_attempt_at, \
                  ROW_NUMBER() OVER (PARTITION BY due.webhook_id ORDER BY due.next_attempt_at, due.id) \
                  + COALESCE(busy.taken, 0) AS place, \
                  {least}(COALESCE(l.places, $8), COALESCE(due.cap, l.places, $8)) AS places \
           FROM due LEFT JOIN busy ON busy.key = due.webhook_id LEFT JOIN limits l ON l.key = due.webhook_id), \
         by_partner AS ( \
           SELECT w.id, w.next_attempt_at, \
                  ROW_NUMBER() OVER (PARTITION BY w.partner_id ORDER BY w.place, w.next_attempt_at, w.id) \
                  + COALESCE(pb.taken, 0) AS turn \
           FROM by_webhook w LEFT JOIN partners_busy pb ON pb.key = w.partner_id WHERE w.place <= w.places) \
         UPDATE deliveries SET locked_until = $1, locked_by = $2 WHERE id IN ( \
           SELECT id FROM by_partner WHERE turn <= (SELECT places FROM share) \
           ORDER BY turn, next_attempt_at LIMIT $4) \
         RETURNING id, partner_id, webhook_id, event_id, attempts, origin, next_attempt_at"
    )
}

/// When the next pending delivery not under way falls due (ms); `None` when none wait. One
/// walk of the `deliveries_due` index from its oldest, past the few rows under way, however
/// many deliveries wait (a minimum over an expression would read every one of them on each
/// turn of the loop). A lease that ends is not a due time here: the dispatcher's idle poll
/// finds it within a second, and the claim takes it.
pub async fn next_due(db: &Db) -> anyhow::Result<Option<i64>> {
    let row = sqlx::query(
        "SELECT MIN(next_attempt_at) AS due FROM deliveries WHERE state = 'pending' \
         AND (locked_until IS NULL OR locked_until < $1)",
    )
    .bind(now_ms())
    .fetch_one(db.pool())
    .await
    .context("could not find the next due delivery")?;
    Ok(row.try_get("due")?)
}

/// Puts a claimed delivery on hold (its webhook is inactive); reactivation releases it.
pub async fn hold(db: &Db, delivery: &DeliveryId) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE deliveries SET state = 'held', locked_until = NULL, locked_by = NULL, updated_at = $1 WHERE id = $2",
    )
    .bind(now_ms())
    .bind(delivery.as_str())
    .execute(db.writer())
    .await
    .context("could not hold the delivery")?;
    Ok(())
}

/// Holds the waiting deliveries of webhooks that were switched off (by id): one statement per
/// batch of them.
pub async fn hold_waiting(conn: &mut sqlx::AnyConnection, webhooks: &[&str], now: i64) -> anyhow::Result<()> {
    static HOLD: BatchSql = BatchSql::new(|n| {
        format!(
            "UPDATE deliveries SET state = 'held', updated_at = $1 WHERE webhook_id IN ({}) \
             AND state = 'pending' AND locked_until IS NULL",
            placeholders(2, n)
        )
    });
    for batch in batches(webhooks) {
        let mut hold = sqlx::query(HOLD.get(batch.len())).bind(now);
        for webhook in batch {
            hold = hold.bind(*webhook);
        }
        hold.execute(&mut *conn).await.context("could not hold the webhooks' deliveries")?;
    }
    Ok(())
}

/// Releases a webhook's held deliveries, due now (it was switched on).
pub async fn release_held(conn: &mut sqlx::AnyConnection, webhook: &WebhookId, now: i64) -> anyhow::Result<u64> {
    let done = sqlx::query("UPDATE deliveries SET state = 'pending', next_attempt_at = $1, updated_at = $1 WHERE webhook_id = $2 AND state = 'held'")
        .bind(now)
        .bind(webhook.as_str())
        .execute(conn)
        .await
        .context("could not release the webhook's deliveries")?;
    Ok(done.rows_affected())
}

/// The queue at a glance, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Pending deliveries due now (or overdue).
    pub due: i64,
    /// Pending deliveries waiting for a later attempt.
    pub scheduled: i64,
    /// Deliveries held because their webhook is inactive.
    pub held: i64,
    /// How long the oldest due delivery has waited past its time (ms; 0 when none is due).
    pub oldest_due_ms: i64,
}

/// Counts the deliveries that wait, by kind, and how late the oldest due one is.
pub async fn backlog(db: &Db) -> anyhow::Result<Backlog> {
    let now = now_ms();
    let row = sqlx::query(
        "SELECT \
           COALESCE(SUM(CASE WHEN state = 'pending' AND next_attempt_at <= $1 THEN 1 ELSE 0 END), 0) AS due, \
           COALESCE(SUM(CASE WHEN state = 'pending' AND next_attempt_at > $1 THEN 1 ELSE 0 END), 0) AS scheduled, \
           COALESCE(SUM(CASE WHEN state = 'held' THEN 1 ELSE 0 END), 0) AS held, \
           MIN(CASE WHEN state = 'pending' AND next_attempt_at <= $1 THEN next_attempt_at END) AS oldest \
         FROM deliveries WHERE state IN ('pending', 'held')",
    )
    .bind(now)
    .fetch_one(db.pool())
    .await
    .context("could not count the waiting deliveries")?;
    let oldest: Option<i64> = row.try_get("oldest")?;
    Ok(Backlog {
        due: row.try_get("due")?,
        scheduled: row.try_get("scheduled")?,
        held: row.try_get("held")?,
        oldest_due_ms: oldest.map_or(0, |at| (now - at).max(0)),
    })
}

/// Gives a claimed delivery back, due at `at`, without counting an attempt: its webhook's rate
/// limit asked it to wait.
pub async fn defer(db: &Db, delivery: &DeliveryId, at: i64) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE deliveries SET next_attempt_at = $1, locked_until = NULL, locked_by = NULL, updated_at = $2 WHERE id = $3",
    )
    .bind(at)
    .bind(now_ms())
    .bind(delivery.as_str())
    .execute(db.writer())
    .await
    .context("could not defer the delivery")?;
    Ok(())
}
