//! Events: publishing one stores it and queues a delivery for each of the partner's active
//! webhooks that take its type, in one transaction; the dispatcher reads their bodies back.

use std::collections::{HashMap, HashSet};

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
/// one's partner that takes its type; answers what became of each, in order. An id published
/// before, or twice in the batch, makes nothing new; an unknown partner's event stores nothing.
///
/// On SQLite the transaction is two trips to the writer's thread ([`publish_in_two_hops`]);
/// on PostgreSQL a few batch statements ([`publish_in_batches`]). Events that arrive together
/// are published together, so a busy API pays one transaction per batch, not one per event.
#[tracing::instrument(skip_all, fields(events = events.len()))]
pub async fn publish_many(db: &Db, events: &[NewEvent]) -> anyhow::Result<Vec<Published>> {
    let now = now_ms();
    let (plan, written) = match db.backend() {
        super::Backend::Sqlite => publish_in_two_hops(db, events, now).await?,
        super::Backend::Postgres => publish_in_batches(db, events, now).await?,
    };
    let mut answers = Vec::with_capacity(events.len());
    for (i, event) in events.iter().enumerate() {
        let id = event.id.as_str();
        answers.push(if !plan.in_its_environment(event) {
            Published::UnknownPartner
        } else if plan.first.get(id) == Some(&i) && written.stored.contains(id) {
            Published::New { deliveries: written.queued.get(id).copied().unwrap_or(0) }
        } else {
            published_before(db.pool(), event).await?
        });
    }
    metrics::counter!("portal_events_published_total").increment(written.stored.len() as u64);
    Ok(answers)
}

/// What a batch of events comes to once its partners are known.
struct Plan<'a> {
    /// Each known partner's environment: an event is only stored in a row of its own
    /// environment (a production event named with a sandbox row's id is an unknown partner's).
    known: HashMap<String, String>,
    /// Each id's first event of a known partner: the one stored, unless the id is taken.
    first: HashMap<&'a str, usize>,
    events: &'a [NewEvent],
}

/// The active webhooks of each partner, with their filters.
type Targets = HashMap<String, Vec<(String, crate::domain::EventFilter)>>;

/// What a publish wrote: the ids of the events stored and the deliveries queued for each.
struct Written {
    stored: HashSet<String>,
    queued: HashMap<String, i64>,
}

impl<'a> Plan<'a> {
    fn new(events: &'a [NewEvent], known: HashMap<String, String>) -> Self {
        let mut plan = Self { known, first: HashMap::new(), events };
        for (i, event) in events.iter().enumerate() {
            if plan.in_its_environment(event) {
                plan.first.entry(event.id.as_str()).or_insert(i);
            }
        }
        plan
    }

    fn in_its_environment(&self, event: &NewEvent) -> bool {
        self.known.get(event.partner.as_str()).is_some_and(|env| env == event.environment.as_str())
    }

    /// The events to store, but those whose id is in `taken`, in id order (not the map's):
    /// processes publishing at once on PostgreSQL then take the events' index entries in the
    /// same order, and wait for one another instead of deadlocking.
    fn fresh(&self, taken: &HashSet<String>) -> Vec<&'a NewEvent> {
        let mut fresh: Vec<&NewEvent> =
            self.first.values().map(|&i| &self.events[i]).filter(|e| !taken.contains(e.id.as_str())).collect();
        fresh.sort_unstable_by_key(|e| e.id.as_str());
        fresh
    }
}

/// One delivery per event of `stored` and active webhook of its partner that takes its type:
/// its new id, partner, webhook and event; with what it comes to per event.
fn deliveries<'e>(stored: &[&'e NewEvent], targets: &'e Targets) -> (Vec<(String, [&'e str; 3])>, Written) {
    let mut rows = Vec::new();
    let mut written = Written { stored: HashSet::new(), queued: HashMap::new() };
    for event in stored {
        let count = written.queued.entry(event.id.as_str().to_owned()).or_default();
        written.stored.insert(event.id.as_str().to_owned());
        for (webhook, filter) in targets.get(event.partner.as_str()).map(Vec::as_slice).unwrap_or_default() {
            if filter.accepts(event.event_type) {
                let id = DeliveryId::generate().as_str().to_owned();
                rows.push((id, [event.partner.as_str(), webhook.as_str(), event.id.as_str()]));
                *count += 1;
            }
        }
    }
    (rows, written)
}

/// A webhook row of a partner's active webhooks into `targets`.
fn add_target(targets: &mut Targets, row: &sqlx::any::AnyRow, id_column: &str) -> anyhow::Result<()> {
    let filter = super::webhooks::event_filter_of(row.try_get("event_types")?)?;
    targets.entry(row.try_get("partner_id")?).or_default().push((row.try_get(id_column)?, filter));
    Ok(())
}

/// SQLite: the whole transaction in two trips to the writer's thread, where it took six (and
/// held the writer while this task waited for its turn on the runtime between them). The first
/// script takes the write lock (`BEGIN IMMEDIATE`) and reads the partners, their active
/// webhooks and which of the ids are taken; under the lock none of that can change, so the
/// second stores exactly the fresh events and their deliveries, and commits. Both texts are
/// fixed, reading JSON lists, so each is prepared once.
async fn publish_in_two_hops<'a>(db: &Db, events: &'a [NewEvent], now: i64) -> anyhow::Result<(Plan<'a>, Written)> {
    let mut conn = db.writer().acquire().await.context("could not reach the database")?;
    let result = two_hops(&mut conn, events, now).await;
    super::roll_back_on_error(&mut conn, result).await
}

async fn two_hops<'a>(
    conn: &mut sqlx::AnyConnection,
    events: &'a [NewEvent],
    now: i64,
) -> anyhow::Result<(Plan<'a>, Written)> {
    use serde_json::{Value, json};
    use sqlx::Column;
    // $1 the partners, $2 the event ids.
    const READ: &str = "BEGIN IMMEDIATE; \
        SELECT id AS partner, environment FROM partners WHERE id IN (SELECT value FROM json_each($1)); \
        SELECT id AS webhook, partner_id, event_types FROM webhooks \
        WHERE active = 1 AND partner_id IN (SELECT value FROM json_each($1)); \
        SELECT id AS taken FROM events WHERE id IN (SELECT value FROM json_each($2))";
    // $1 now, $2 the events, $3 the deliveries.
    const WRITE: &str = "INSERT INTO events (id, partner_id, type, status, data, verification_id, session_id, \
        created_at, unkeyed) SELECT e.value ->> 0, e.value ->> 1, e.value ->> 2, e.value ->> 3, e.value ->> 4, \
        e.value ->> 5, e.value ->> 6, $1, NULL FROM json_each($2) AS e ORDER BY e.key; \
        INSERT INTO deliveries (id, partner_id, webhook_id, event_id, state, attempts, next_attempt_at, created_at, \
        updated_at) SELECT d.value ->> 0, d.value ->> 1, d.value ->> 2, d.value ->> 3, 'pending', 0, $1, $1, $1 \
        FROM json_each($3) AS d ORDER BY d.key; \
        COMMIT";
    let partners: Vec<&str> = events.iter().map(|e| e.partner.as_str()).collect();
    let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
    let rows = sqlx::query(READ)
        .bind(serde_json::to_string(&partners)?)
        .bind(serde_json::to_string(&ids)?)
        .fetch_all(&mut *conn)
        .await
        .context("could not look the partners up")?;
    let (mut known, mut targets, mut taken) = (HashMap::new(), Targets::new(), HashSet::new());
    for row in &rows {
        match row.columns().first().map(|c| c.name()) {
            Some("partner") => {
                known.insert(row.try_get("partner")?, row.try_get("environment")?);
            }
            Some("webhook") => add_target(&mut targets, row, "webhook")?,
            Some("taken") => {
                taken.insert(row.try_get("taken")?);
            }
            other => anyhow::bail!("unexpected row while publishing: {other:?}"),
        }
    }
    let plan = Plan::new(events, known);
    let fresh = plan.fresh(&taken);
    let (rows, written) = deliveries(&fresh, &targets);
    let events: Vec<Value> = fresh
        .iter()
        .map(|event| {
            // `unkeyed` NULL: its search values are in (the column's default, 1, marks the
            // rows of older binaries for the background pass).
            let (verification, session) = event.search_values();
            let data = event.data.to_string();
            json!([
                event.id.as_str(),
                event.partner.as_str(),
                event.event_type.as_str(),
                event.status,
                data,
                verification,
                session
            ])
        })
        .collect();
    let queue: Vec<Value> = rows.iter().map(|(id, [p, w, e])| json!([id, p, w, e])).collect();
    sqlx::query(WRITE)
        .bind(now)
        .bind(Value::Array(events).to_string())
        .bind(Value::Array(queue).to_string())
        .execute(&mut *conn)
        .await
        .context("could not store the events")?;
    Ok((plan, written))
}

/// PostgreSQL: one transaction of batch statements: the partners, the events (those whose id
/// is taken skipped), the webhooks of the partners with events stored, their deliveries.
async fn publish_in_batches<'a>(db: &Db, events: &'a [NewEvent], now: i64) -> anyhow::Result<(Plan<'a>, Written)> {
    let mut tx = db.begin_write().await?;
    let mut partners: Vec<&str> = events.iter().map(|e| e.partner.as_str()).collect();
    partners.sort_unstable();
    partners.dedup();
    static PARTNERS: BatchSql =
        BatchSql::new(|n| format!("SELECT id, environment FROM partners WHERE id IN ({})", placeholders(1, n)));
    let mut known = HashMap::new();
    for batch in batches(&partners) {
        let mut query = sqlx::query(PARTNERS.get(batch.len()));
        for partner in batch {
            query = query.bind(*partner);
        }
        for row in query.fetch_all(&mut *tx).await.context("could not look the partners up")? {
            known.insert(row.try_get("id")?, row.try_get("environment")?);
        }
    }
    let plan = Plan::new(events, known);
    let fresh = plan.fresh(&HashSet::new());
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
    let mut stored_ids: HashSet<String> = HashSet::new();
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
            stored_ids.insert(row.try_get("id")?);
        }
    }
    let stored: Vec<&NewEvent> = fresh.into_iter().filter(|e| stored_ids.contains(e.id.as_str())).collect();
    let mut with_new: Vec<&str> = stored.iter().map(|e| e.partner.as_str()).collect();
    with_new.sort_unstable();
    with_new.dedup();
    static WEBHOOKS: BatchSql = BatchSql::new(|n| {
        format!(
            "SELECT id, partner_id, event_types FROM webhooks WHERE active = 1 AND partner_id IN ({})",
            placeholders(1, n)
        )
    });
    let mut targets = Targets::new();
    for batch in batches(&with_new) {
        let mut query = sqlx::query(WEBHOOKS.get(batch.len()));
        for partner in batch {
            query = query.bind(*partner);
        }
        for row in query.fetch_all(&mut *tx).await.context("could not list the partners' webhooks")? {
            add_target(&mut targets, &row, "id")?;
        }
    }
    let (rows, written) = deliveries(&stored, &targets);
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
    for batch in batches(&rows) {
        let mut insert = sqlx::query(QUEUE.get(batch.len())).bind(now);
        for (id, [partner, webhook, event]) in batch {
            insert = insert.bind(id.as_str()).bind(*partner).bind(*webhook).bind(*event);
        }
        insert.execute(&mut *tx).await.context("could not queue the deliveries")?;
    }
    if !rows.is_empty() {
        db.announce_work(&mut tx).await?;
    }
    tx.commit().await.context("could not commit the events")?;
    Ok((plan, written))
}

/// What publishing `event` again comes to, its id being taken: the same partner's event again,
/// or another partner's.
async fn published_before(db: &sqlx::AnyPool, event: &NewEvent) -> anyhow::Result<Published> {
    let owner: String = sqlx::query("SELECT partner_id FROM events WHERE id = $1")
        .bind(event.id.as_str())
        .fetch_one(db)
        .await?
        .try_get("partner_id")?;
    if owner != event.partner.as_str() {
        return Ok(Published::Conflict);
    }
    let count: i64 = sqlx::query("SELECT COUNT(*) AS n FROM deliveries WHERE event_id = $1")
        .bind(event.id.as_str())
        .fetch_one(db)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Environment;

    fn event(partner: &PartnerId, id: &str) -> NewEvent {
        NewEvent {
            id: EventId::parse(id).unwrap(),
            partner: partner.clone(),
            environment: Environment::Production,
            event_type: EventType::VerificationCompleted,
            status: "success".into(),
            data: serde_json::json!({}),
        }
    }

    /// SQLite's publish is a transaction over two trips: when the second fails part way (here
    /// a trigger refuses the delivery, after the event went in), nothing of it stays, and the
    /// writer's connection comes back out of the transaction, so the same event publishes
    /// afterwards.
    #[tokio::test]
    async fn a_publish_that_fails_part_way_leaves_nothing_and_the_next_one_goes_through() {
        let (db, dir) = crate::store::test_database("publish-fails").await;
        let (partner, _) = crate::store::test_partner_with_webhooks(&db, 1).await;
        sqlx::query("CREATE TRIGGER refuse BEFORE INSERT ON deliveries BEGIN SELECT RAISE(ABORT, 'refused'); END")
            .execute(db.writer())
            .await
            .unwrap();
        let first = event(&partner, "evt_refused_once");
        let refused = publish(&db, &first).await.unwrap_err();
        assert!(format!("{refused:#}").contains("refused"), "{refused:#}");
        let stored: i64 = sqlx::query("SELECT COUNT(*) AS n FROM events WHERE id = $1")
            .bind("evt_refused_once")
            .fetch_one(db.pool())
            .await
            .unwrap()
            .get("n");
        assert_eq!(stored, 0, "the event of a failed publish is not kept");
        sqlx::query("DROP TRIGGER refuse").execute(db.writer()).await.unwrap();
        assert_eq!(publish(&db, &first).await.unwrap(), Published::New { deliveries: 1 });
        assert_eq!(publish(&db, &first).await.unwrap(), Published::Again { deliveries: 1 });
        drop(db);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
