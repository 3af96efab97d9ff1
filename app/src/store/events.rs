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
    /// The id belongs to another partner's event (or another environment's).
    Conflict,
    /// No partner has the event's partner id; nothing was stored.
    UnknownPartner,
}

/// Stores an event and, in the same transaction, one pending delivery per active webhook of
/// its partner that takes its type ([`publish_many`] with one).
pub async fn publish(db: &Db, event: &NewEvent) -> anyhow::Result<Published> {
    let mut answers = publish_many(db, std::slice::from_ref(event)).await?;
    Ok(answers.pop().expect("one answer per event"))
}

/// Stores events and, in the same transaction, one pending delivery per active webhook of each
/// one's partner that takes its type; answers what became of each, in order. A batch costs a
/// few statements whatever its size (partners, events, webhooks, deliveries, each in batch
/// statements), where one transaction per event took five trips to the writer: events that
/// arrive together are published together. An id published before, or twice in the batch,
/// makes nothing new; an unknown partner's event stores nothing.
#[tracing::instrument(skip_all, fields(events = events.len()))]
pub async fn publish_many(db: &Db, events: &[NewEvent]) -> anyhow::Result<Vec<Published>> {
    use std::collections::{HashMap, HashSet};
    let now = now_ms();
    let mut tx = db.begin_write().await?;
    let mut partners: Vec<&str> = events.iter().map(|e| e.partner.as_str()).collect();
    partners.sort_unstable();
    partners.dedup();
    static PARTNERS: BatchSql =
        BatchSql::new(|n| format!("SELECT id, environment FROM partners WHERE id IN ({})", placeholders(1, n)));
    // Each partner row and its environment: an event is only stored in a row of its own
    // environment (a production event named with a sandbox row's id is an unknown partner's).
    let mut known: HashMap<String, String> = HashMap::new();
    for batch in batches(&partners) {
        let mut query = sqlx::query(PARTNERS.get(batch.len()));
        for partner in batch {
            query = query.bind(*partner);
        }
        for row in query.fetch_all(&mut *tx).await.context("could not look the partners up")? {
            known.insert(row.try_get("id")?, row.try_get("environment")?);
        }
    }
    // Each id's first event of a known partner is stored, unless the id was published before.
    let in_its_environment =
        |event: &NewEvent| known.get(event.partner.as_str()).is_some_and(|env| env == event.environment.as_str());
    let mut first: HashMap<&str, usize> = HashMap::new();
    for (i, event) in events.iter().enumerate() {
        if in_its_environment(event) {
            first.entry(event.id.as_str()).or_insert(i);
        }
    }
    let mut fresh: Vec<&NewEvent> = first.values().map(|&i| &events[i]).collect();
    // In id order, not the map's: processes publishing at once on PostgreSQL then take the
    // events' index entries in the same order, and wait for one another instead of deadlocking.
    fresh.sort_unstable_by_key(|e| e.id.as_str());
    // $1 now, then each event's id, partner, type, status and data.
    static EVENTS: BatchSql = BatchSql::new(|n| {
        let rows: Vec<String> = (0..n)
            .map(|i| {
                let p = |k: usize| 2 + 7 * i + k;
                format!("(${}, ${}, ${}, ${}, ${}, ${}, ${}, $1, NULL)", p(0), p(1), p(2), p(3), p(4), p(5), p(6))
            })
            .collect();
        // `unkeyed` NULL: its search values are in (the column's default, 1, marks the rows
        // of older binaries for the background pass).
        format!(
            "INSERT INTO events (id, partner_id, type, status, data, verification_id, session_id, created_at, unkeyed) \
             VALUES {} \
             ON CONFLICT (id) DO NOTHING RETURNING id",
            rows.join(", ")
        )
    });
    let mut stored: HashSet<String> = HashSet::new();
    for batch in batches(&fresh) {
        let mut insert = sqlx::query(EVENTS.get(batch.len())).bind(now);
        for event in batch {
            let (verification, session) = event.search_values();
            insert = insert
                .bind(event.id.as_str())
                .bind(event.partner.as_str())
                .bind(event.event_type.as_str())
                .bind(&event.status)
                .bind(event.data.to_string())
                .bind(verification)
                .bind(session);
        }
        for row in insert.fetch_all(&mut *tx).await.context("could not store the events")? {
            stored.insert(row.try_get("id")?);
        }
    }
    // The active webhooks of the partners whose events were stored, and their filters.
    let mut targets_of: HashMap<String, Vec<(String, crate::domain::EventFilter)>> = HashMap::new();
    let mut with_new: Vec<&str> =
        fresh.iter().filter(|e| stored.contains(e.id.as_str())).map(|e| e.partner.as_str()).collect();
    with_new.sort_unstable();
    with_new.dedup();
    static WEBHOOKS: BatchSql = BatchSql::new(|n| {
        format!(
            "SELECT id, partner_id, event_types FROM webhooks WHERE active = 1 AND partner_id IN ({})",
            placeholders(1, n)
        )
    });
    for batch in batches(&with_new) {
        let mut query = sqlx::query(WEBHOOKS.get(batch.len()));
        for partner in batch {
            query = query.bind(*partner);
        }
        for row in query.fetch_all(&mut *tx).await.context("could not list the partners' webhooks")? {
            let filter = super::webhooks::event_filter_of(row.try_get("event_types")?)?;
            targets_of.entry(row.try_get("partner_id")?).or_default().push((row.try_get("id")?, filter));
        }
    }
    // One delivery per stored event and webhook that takes its type.
    let mut rows: Vec<(String, &NewEvent, &str)> = Vec::new();
    let mut queued: HashMap<&str, i64> = HashMap::new();
    for event in fresh.iter().filter(|e| stored.contains(e.id.as_str())) {
        let count = queued.entry(event.id.as_str()).or_default();
        for (webhook, filter) in targets_of.get(event.partner.as_str()).map(Vec::as_slice).unwrap_or_default() {
            if filter.accepts(event.event_type) {
                rows.push((DeliveryId::generate().as_str().to_owned(), event, webhook));
                *count += 1;
            }
        }
    }
    // $1 now, then each delivery's id, partner, webhook and event.
    static QUEUE: BatchSql = BatchSql::new(|n| {
        let rows: Vec<String> = (0..n)
            .map(|i| {
                format!("(${}, ${}, ${}, ${}, 'pending', 0, $1, $1, $1)", 2 + 4 * i, 3 + 4 * i, 4 + 4 * i, 5 + 4 * i)
            })
            .collect();
        format!(
            "INSERT INTO deliveries (id, partner_id, webhook_id, event_id, state, attempts, next_attempt_at, created_at, \
             updated_at) VALUES {}",
            rows.join(", ")
        )
    });
    if db.backend() == super::Backend::Sqlite {
        // SQLite: every delivery in one statement, read from one JSON list (one trip to the
        // writer's thread, one parameter to bind, where the batch statements took one trip per
        // 32 deliveries and bound four parameters each).
        if !rows.is_empty() {
            let list: Vec<serde_json::Value> = rows
                .iter()
                .map(|(id, event, webhook)| serde_json::json!([id, event.partner.as_str(), webhook, event.id.as_str()]))
                .collect();
            sqlx::query(
                "INSERT INTO deliveries (id, partner_id, webhook_id, event_id, state, attempts, next_attempt_at, \
                 created_at, updated_at) SELECT d.value ->> 0, d.value ->> 1, d.value ->> 2, d.value ->> 3, \
                 'pending', 0, $1, $1, $1 FROM json_each($2) AS d ORDER BY d.key",
            )
            .bind(now)
            .bind(serde_json::Value::Array(list).to_string())
            .execute(&mut *tx)
            .await
            .context("could not queue the deliveries")?;
        }
    } else {
        for batch in batches(&rows) {
            let mut insert = sqlx::query(QUEUE.get(batch.len())).bind(now);
            for (id, event, webhook) in batch {
                insert = insert.bind(id.as_str()).bind(event.partner.as_str()).bind(*webhook).bind(event.id.as_str());
            }
            insert.execute(&mut *tx).await.context("could not queue the deliveries")?;
        }
    }
    let mut answers = Vec::with_capacity(events.len());
    for (i, event) in events.iter().enumerate() {
        let id = event.id.as_str();
        answers.push(if !in_its_environment(event) {
            Published::UnknownPartner
        } else if first.get(id) == Some(&i) && stored.contains(id) {
            Published::New { deliveries: queued.get(id).copied().unwrap_or(0) }
        } else {
            published_before(&mut tx, event).await?
        });
    }
    if !rows.is_empty() {
        db.announce_work(&mut tx).await?;
    }
    tx.commit().await.context("could not commit the events")?;
    metrics::counter!("portal_events_published_total").increment(queued.len() as u64);
    Ok(answers)
}

/// What publishing `event` again comes to, its id being taken: the same partner's event again,
/// or another partner's.
async fn published_before(tx: &mut sqlx::AnyConnection, event: &NewEvent) -> anyhow::Result<Published> {
    let owner: String = sqlx::query("SELECT partner_id FROM events WHERE id = $1")
        .bind(event.id.as_str())
        .fetch_one(&mut *tx)
        .await?
        .try_get("partner_id")?;
    if owner != event.partner.as_str() {
        return Ok(Published::Conflict);
    }
    let count: i64 = sqlx::query("SELECT COUNT(*) AS n FROM deliveries WHERE event_id = $1")
        .bind(event.id.as_str())
        .fetch_one(&mut *tx)
        .await?
        .try_get("n")?;
    Ok(Published::Again { deliveries: count })
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

/// Most events one transaction of the [`Publisher`] takes.
pub const MAX_BATCH: usize = 64;

/// Publishes the events handed to it by one task ([`write_grouped`](super::grouped::write_grouped)):
/// each batch of whatever has queued up (up to [`MAX_BATCH`]) with [`publish_many`], and each
/// caller hears back once its batch is committed, so only when its event is stored. When a
/// batch fails, its events are published one by one, so one bad event can't fail the others.
#[derive(Clone, Debug)]
pub struct Publisher {
    jobs: tokio::sync::mpsc::Sender<super::grouped::Job<NewEvent, Published>>,
}

impl Publisher {
    /// Starts the task, on the current runtime; it ends when the last handle is dropped.
    pub fn start(db: Db) -> Self {
        let (jobs, queue) = tokio::sync::mpsc::channel(MAX_BATCH * 4);
        tokio::spawn(async move {
            super::grouped::write_grouped(queue, MAX_BATCH, "events", |events| {
                let db = db.clone();
                Box::pin(async move { publish_many(&db, events).await })
            })
            .await;
        });
        Self { jobs }
    }

    /// Publishes `event` with whatever else is being published now.
    pub async fn publish(&self, event: NewEvent) -> anyhow::Result<Published> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.jobs.send((event, reply)).await.map_err(|_| anyhow::anyhow!("the publisher stopped"))?;
        answer.await.map_err(|_| anyhow::anyhow!("the publisher stopped"))?
    }
}
