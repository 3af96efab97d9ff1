//! Deliveries again: a resend of one delivery, and a replay of the events a webhook never
//! received (planned by a count, queued in chunks).

use anyhow::Context;
use sqlx::Row;

use crate::domain::{DeliveryId, EventFilter, PartnerId, ReplayId, ReplayView, WebhookId};
use crate::store::log::replay_view;
use crate::store::sql::Sql;
use crate::store::{Backend, Db, get_flag, now_ms, webhooks};

/// What asking to resend a delivery did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resent {
    /// A new delivery of the same event is queued, due now.
    Queued(DeliveryId),
    /// The partner has no such delivery.
    NotFound,
    /// Its webhook is switched off; activate it first.
    WebhookInactive,
}

/// Queues a new delivery of a delivery's event to the same webhook, marked as a resend.
#[tracing::instrument(skip_all, fields(partner = %partner, delivery = %delivery))]
pub async fn resend(db: &Db, partner: &PartnerId, delivery: &DeliveryId) -> anyhow::Result<Resent> {
    let row = sqlx::query(
        "SELECT d.webhook_id, d.event_id, w.active FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id \
         WHERE d.partner_id = $1 AND d.id = $2",
    )
    .bind(partner.as_str())
    .bind(delivery.as_str())
    .fetch_optional(db.pool())
    .await
    .context("could not load the delivery")?;
    let Some(row) = row else { return Ok(Resent::NotFound) };
    if !get_flag(&row, "active")? {
        return Ok(Resent::WebhookInactive);
    }
    let id = DeliveryId::generate();
    let mut tx = db.begin_write().await?;
    sqlx::query(
        "INSERT INTO deliveries (id, partner_id, webhook_id, event_id, state, attempts, next_attempt_at, created_at, \
         updated_at, origin) VALUES ($1, $2, $3, $4, 'pending', 0, $5, $5, $5, 'resend')",
    )
    .bind(id.as_str())
    .bind(partner.as_str())
    .bind(row.try_get::<String, _>("webhook_id")?)
    .bind(row.try_get::<String, _>("event_id")?)
    .bind(now_ms())
    .execute(&mut *tx)
    .await
    .context("could not queue the resend")?;
    db.announce_work(&mut tx).await?;
    tx.commit().await.context("could not commit the resend")?;
    Ok(Resent::Queued(id))
}

/// What a replay would send, or did.
#[derive(Debug, Clone, PartialEq)]
pub enum Replay {
    /// Started: this many deliveries queued.
    Started(ReplayView),
    /// The partner has no such webhook.
    NotFound,
    /// The webhook is switched off; activate it first.
    WebhookInactive,
}

/// The webhook's state as replay needs it: active, its filter, when it was last switched off.
async fn replay_target(
    conn: &mut sqlx::AnyConnection,
    partner: &PartnerId,
    webhook: &WebhookId,
) -> anyhow::Result<Option<(bool, EventFilter, Option<i64>)>> {
    let row =
        sqlx::query("SELECT active, event_types, last_deactivated_at FROM webhooks WHERE partner_id = $1 AND id = $2")
            .bind(partner.as_str())
            .bind(webhook.as_str())
            .fetch_optional(conn)
            .await
            .context("could not load the webhook")?;
    row.map(|row| {
        let filter = webhooks::event_filter_of(row.try_get("event_types")?)?;
        Ok((get_flag(&row, "active")?, filter, row.try_get("last_deactivated_at")?))
    })
    .transpose()
}

/// Most events one transaction of a replay queues: a replay of a million events holds the
/// writer a chunk at a time, and other partners' writes go in between.
const REPLAY_CHUNK: i64 = 500;

/// The events a replay since `since` (until `until`) would send: the partner's events of the
/// webhook's types that were never queued for this webhook. Appends `FROM … WHERE …` to `sql`.
fn missed_events(
    sql: &mut Sql,
    partner: &PartnerId,
    webhook: &WebhookId,
    filter: &EventFilter,
    since: i64,
    until: i64,
) {
    sql.push(" FROM events e WHERE e.partner_id = ").text(partner.as_str());
    sql.push(" AND e.created_at >= ").int(since).push(" AND e.created_at <= ").int(until);
    sql.push(" AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.webhook_id = ").text(webhook.as_str());
    sql.push(" AND d.event_id = e.id)");
    if let Some(names) = filter.names() {
        sql.push(" AND e.type IN (");
        for (i, name) in names.iter().enumerate() {
            sql.push(if i == 0 { "" } else { ", " }).text(name);
        }
        sql.push(")");
    }
}

/// How many events a replay since `since` would send; `None` when the partner has no such
/// webhook. Counted by the database, not by loading every id.
pub async fn count_missed(
    db: &Db,
    partner: &PartnerId,
    webhook: &WebhookId,
    since: i64,
) -> anyhow::Result<Option<i64>> {
    let mut conn = db.pool().acquire().await?;
    let Some((_, filter, _)) = replay_target(&mut conn, partner, webhook).await? else { return Ok(None) };
    let mut sql = Sql::default();
    sql.push("SELECT COUNT(*) AS n");
    missed_events(&mut sql, partner, webhook, &filter, since, now_ms());
    let row = sql.query().fetch_one(&mut *conn).await.context("could not count the missed events")?;
    Ok(Some(row.try_get("n")?))
}

/// Queues a replay's chunk of `events` (found on a reader) in one write transaction and counts
/// it into the replay; answers how many were queued. An event queued for the webhook since it
/// was found (by another replay at once: two tabs, two processes) is left out, so no event is
/// queued twice. On PostgreSQL the chunk first takes the webhook's advisory lock, so two
/// replays' chunks see each other's; SQLite's writer is one at a time anyway.
async fn queue_chunk(
    db: &Db,
    partner: &PartnerId,
    webhook: &WebhookId,
    replay: &ReplayId,
    events: &[(i64, String)],
    now: i64,
) -> anyhow::Result<i64> {
    let mut tx = db.begin_write().await?;
    if db.backend() == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
            .bind(webhook.as_str())
            .execute(&mut *tx)
            .await
            .context("could not take the webhook's replay lock")?;
    }
    let mut queued = 0;
    // Several rows per statement: a chunk is a few round trips. `VALUES` names its columns
    // `column1`, `column2` on both databases.
    for chunk in events.chunks(200) {
        let mut sql = Sql::default();
        sql.push(
            "INSERT INTO deliveries (id, partner_id, webhook_id, event_id, state, attempts, next_attempt_at, \
             created_at, updated_at, origin, replay_id) SELECT v.column1, ",
        );
        sql.text(partner.as_str()).push(", ").text(webhook.as_str()).push(", v.column2, 'pending', 0, ");
        sql.int(now).push(", ").int(now).push(", ").int(now).push(", 'replay', ").text(replay.as_str());
        sql.push(" FROM (VALUES ");
        for (i, (_, event)) in chunk.iter().enumerate() {
            sql.push(if i == 0 { "(" } else { ", (" });
            sql.text(DeliveryId::generate().as_str()).push(", ").text(event).push(")");
        }
        sql.push(") AS v WHERE NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.webhook_id = ").text(webhook.as_str());
        sql.push(" AND d.event_id = v.column2)");
        let done = sql.query().execute(&mut *tx).await.context("could not queue the replay")?;
        queued += done.rows_affected() as i64;
    }
    sqlx::query("UPDATE replays SET total = total + $1 WHERE id = $2")
        .bind(queued)
        .bind(replay.as_str())
        .execute(&mut *tx)
        .await
        .context("could not count the replay")?;
    if queued > 0 {
        db.announce_work(&mut tx).await?;
    }
    tx.commit().await.context("could not commit the replay")?;
    Ok(queued)
}

/// Queues a delivery of every missed event since `since` to an active webhook under a new
/// replay whose progress [`replay_view`](crate::store::log::replay_view) reads. The events are queued oldest first, a chunk
/// per transaction; the replay's total is what was queued.
#[tracing::instrument(skip_all, fields(partner = %partner, webhook = %webhook))]
pub async fn start_replay(db: &Db, partner: &PartnerId, webhook: &WebhookId, since: i64) -> anyhow::Result<Replay> {
    let now = now_ms();
    let mut conn = db.pool().acquire().await?;
    let Some((active, filter, _)) = replay_target(&mut conn, partner, webhook).await? else {
        return Ok(Replay::NotFound);
    };
    drop(conn);
    if !active {
        return Ok(Replay::WebhookInactive);
    }
    let replay = ReplayId::generate();
    sqlx::query(
        "INSERT INTO replays (id, partner_id, webhook_id, since, total, created_at) VALUES ($1, $2, $3, $4, 0, $5)",
    )
    .bind(replay.as_str())
    .bind(partner.as_str())
    .bind(webhook.as_str())
    .bind(since)
    .bind(now)
    .execute(db.writer())
    .await
    .context("could not note the replay")?;
    let mut after: Option<(i64, String)> = None;
    loop {
        // The chunk is looked for on a reader, outside the writer's transaction: a search over a
        // partner's million events holds up no one's writes.
        let mut sql = Sql::default();
        sql.push("SELECT e.id, e.created_at");
        missed_events(&mut sql, partner, webhook, &filter, since, now);
        if let Some((at, id)) = &after {
            sql.push(" AND (e.created_at > ").int(*at).push(" OR (e.created_at = ").int(*at);
            sql.push(" AND e.id > ").text(id).push("))");
        }
        sql.push(" ORDER BY e.created_at, e.id LIMIT ").int(REPLAY_CHUNK);
        let rows = sql.query().fetch_all(db.pool()).await.context("could not find the missed events")?;
        let events: Vec<(i64, String)> =
            rows.iter().map(|r| Ok((r.try_get("created_at")?, r.try_get("id")?))).collect::<anyhow::Result<_>>()?;
        if !events.is_empty() {
            queue_chunk(db, partner, webhook, &replay, &events, now).await?;
        }
        after = events.last().cloned();
        if (events.len() as i64) < REPLAY_CHUNK {
            break;
        }
    }
    let view = replay_view(db, partner, webhook, Some(&replay)).await?.context("the replay just made is missing")?;
    Ok(Replay::Started(view))
}
