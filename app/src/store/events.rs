//! Events: publishing one stores it and queues a delivery for each of the partner's active
//! webhooks that take its type, in one transaction; the dispatcher reads their bodies back.

use anyhow::Context;
use sqlx::Row;

use super::{BatchSql, Db, batches, now_ms, placeholders};
use crate::domain::{DeliveryId, EventBody, EventId, EventType, NewEvent, PartnerId};

/// What publishing did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Published {
    /// Stored now, with this many deliveries.
    New { deliveries: i64 },
    /// The id was published before for this partner; nothing new was made.
    Again { deliveries: i64 },
    /// The id belongs to another partner's event.
    Conflict,
    /// No partner has the event's partner id; nothing was stored.
    UnknownPartner,
}

/// Stores an event and, in the same transaction, one pending delivery per active webhook of
/// its partner that takes its type. The partner is checked by the event's reference to it
/// (no query of its own on the way of every event).
#[tracing::instrument(skip_all, fields(partner = %event.partner, event = %event.id))]
pub async fn publish(db: &Db, event: &NewEvent) -> anyhow::Result<Published> {
    let now = now_ms();
    let mut tx = db.begin_write().await?;
    let inserted = sqlx::query(
        "INSERT INTO events (id, partner_id, type, status, data, created_at) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(event.id.as_str())
    .bind(event.partner.as_str())
    .bind(event.event_type.as_str())
    .bind(&event.status)
    .bind(event.data.to_string())
    .bind(now)
    .execute(&mut *tx)
    .await;
    let inserted = match inserted {
        Ok(done) => done.rows_affected(),
        Err(e) if super::is_foreign_key_violation(&e) => return Ok(Published::UnknownPartner),
        Err(e) => return Err(e).context("could not store the event"),
    };
    if inserted == 0 {
        let owner: String = sqlx::query("SELECT partner_id FROM events WHERE id = $1")
            .bind(event.id.as_str())
            .fetch_one(&mut *tx)
            .await?
            .try_get("partner_id")?;
        if owner != event.partner.as_str() {
            let known = sqlx::query("SELECT 1 AS known FROM partners WHERE id = $1")
                .bind(event.partner.as_str())
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
            return Ok(if known { Published::Conflict } else { Published::UnknownPartner });
        }
        let count: i64 = sqlx::query("SELECT COUNT(*) AS n FROM deliveries WHERE event_id = $1")
            .bind(event.id.as_str())
            .fetch_one(&mut *tx)
            .await?
            .try_get("n")?;
        return Ok(Published::Again { deliveries: count });
    }
    let webhooks = sqlx::query("SELECT id, event_types FROM webhooks WHERE partner_id = $1 AND active = 1")
        .bind(event.partner.as_str())
        .fetch_all(&mut *tx)
        .await
        .context("could not list the partner's webhooks")?;
    let mut targets: Vec<String> = Vec::with_capacity(webhooks.len());
    for webhook in webhooks {
        let filter = super::webhooks::event_filter_of(webhook.try_get("event_types")?)?;
        if filter.accepts(event.event_type) {
            targets.push(webhook.try_get("id")?);
        }
    }
    let deliveries = targets.len() as i64;
    // $1 partner, $2 event, $3 now, then each delivery's id and webhook.
    static QUEUE: BatchSql = BatchSql::new(|n| {
        let rows: Vec<String> =
            (0..n).map(|i| format!("(${}, $1, ${}, $2, 'pending', 0, $3, $3, $3)", 4 + 2 * i, 5 + 2 * i)).collect();
        format!(
            "INSERT INTO deliveries (id, partner_id, webhook_id, event_id, state, attempts, next_attempt_at, created_at, \
             updated_at) VALUES {}",
            rows.join(", ")
        )
    });
    for batch in batches(&targets) {
        let mut insert =
            sqlx::query(QUEUE.get(batch.len())).bind(event.partner.as_str()).bind(event.id.as_str()).bind(now);
        for webhook in batch {
            insert = insert.bind(DeliveryId::generate().as_str().to_owned()).bind(webhook.as_str());
        }
        insert.execute(&mut *tx).await.context("could not queue the deliveries")?;
    }
    if deliveries > 0 {
        db.announce_work(&mut tx).await?;
    }
    tx.commit().await.context("could not commit the event")?;
    metrics::counter!("portal_events_published_total").increment(1);
    Ok(Published::New { deliveries })
}

/// The event a delivery carries, as receivers see it.
pub async fn event_body(db: &Db, partner: &PartnerId, event_id: &EventId) -> anyhow::Result<Option<EventBody>> {
    let row = sqlx::query("SELECT id, type, status, data, created_at FROM events WHERE partner_id = $1 AND id = $2")
        .bind(partner.as_str())
        .bind(event_id.as_str())
        .fetch_optional(db.pool())
        .await
        .context("could not load the event")?;
    row.as_ref().map(body_of).transpose()
}

/// The events with these ids, as receivers see them, by id (one query for a claimed batch).
pub async fn event_bodies(
    db: &Db,
    ids: &[&EventId],
) -> anyhow::Result<std::collections::HashMap<EventId, (PartnerId, EventBody)>> {
    if ids.is_empty() {
        return Ok(Default::default());
    }
    static SQL: BatchSql = BatchSql::new(|n| {
        format!(
            "SELECT id, partner_id, type, status, data, created_at FROM events WHERE id IN ({})",
            placeholders(1, n)
        )
    });
    let mut bodies = std::collections::HashMap::with_capacity(ids.len());
    for batch in batches(ids) {
        let mut query = sqlx::query(SQL.get(batch.len()));
        for id in batch {
            query = query.bind(id.as_str());
        }
        for row in query.fetch_all(db.pool()).await.context("could not load the events")? {
            let partner = PartnerId::parse(&row.try_get::<String, _>("partner_id")?)?;
            let body = body_of(&row)?;
            bodies.insert(body.id.clone(), (partner, body));
        }
    }
    Ok(bodies)
}

/// An `events` row as receivers see it.
fn body_of(row: &sqlx::any::AnyRow) -> anyhow::Result<EventBody> {
    Ok(EventBody {
        id: EventId::from_trusted(row.try_get("id")?),
        event_type: EventType::parse(&row.try_get::<String, _>("type")?).map_err(|e| anyhow::anyhow!("stored {e}"))?,
        status: row.try_get("status")?,
        created_at: super::from_ms(row.try_get("created_at")?),
        data: serde_json::from_str(&row.try_get::<String, _>("data")?)?,
    })
}
