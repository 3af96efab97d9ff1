//! Events, deliveries (the dispatcher's queue) and attempts (the log).
//!
//! A delivery is `pending` (due at `next_attempt_at`), `held` (its webhook is inactive),
//! `succeeded` or `failed`. A process claims a due pending delivery by writing a lease
//! (`locked_until`, `locked_by`) and committing before it sends, so a crash leaves a lease that
//! expires and the delivery is sent again: at least once, never lost.

use anyhow::Context;
use sqlx::Row;

use super::{Backend, BatchSql, Db, batches, flag, now_ms, placeholders, value_rows};
use crate::delivery::{AttemptResult, OutgoingRequest};
use crate::domain::{AttemptId, DeliveryId, EventBody, EventFilter, EventType, NewEvent, Origin, PartnerId, WebhookId};

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
    let mut tx = db.writer().begin().await.context("could not start a transaction")?;
    let inserted = sqlx::query(
        "INSERT INTO events (id, partner_id, type, status, data, created_at) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(&event.id)
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
            .bind(&event.id)
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
            .bind(&event.id)
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
        let types: Option<String> = webhook.try_get("event_types")?;
        let filter = match types {
            None => EventFilter::All,
            Some(json) => EventFilter::parse(Some(&serde_json::from_str::<Vec<String>>(&json)?)).unwrap_or_default(),
        };
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
        let mut insert = sqlx::query(QUEUE.get(batch.len())).bind(event.partner.as_str()).bind(&event.id).bind(now);
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
    pub event_id: String,
    /// Attempts made before this one.
    pub attempts: i64,
    /// Why it exists: event, resend or replay.
    pub origin: Origin,
    /// When it falls due (ms): it is sent then, not before.
    pub due_at: i64,
}

/// What a process has in flight, and the places a claim shares out.
#[derive(Debug, Clone, Copy)]
pub struct Places<'a> {
    /// Requests under way per webhook.
    pub per_webhook: &'a [(WebhookId, usize)],
    /// Requests under way per partner.
    pub per_partner: &'a [(PartnerId, usize)],
    /// Most requests to one webhook at once.
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
    // window is cut, so they can't fill it), and the places webhooks and partners have taken.
    let full: Vec<&str> =
        places.per_webhook.iter().filter(|(_, n)| *n >= places.webhook_places).map(|(w, _)| w.as_str()).collect();
    let counts = |pairs: &mut dyn Iterator<Item = (&str, usize)>| {
        serde_json::Value::Object(pairs.map(|(k, n)| (k.to_owned(), serde_json::Value::from(n))).collect()).to_string()
    };
    let busy = counts(
        &mut places.per_webhook.iter().filter(|(_, n)| *n < places.webhook_places).map(|(w, n)| (w.as_str(), *n)),
    );
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
        .bind(limit * 2)
        .bind(serde_json::to_string(&full)?)
        .bind(busy)
        .bind(places.webhook_places as i64)
        .bind(horizon.max(now))
        .bind(partners_busy)
        .bind(places.total as i64)
        .bind(places.reserve.min(places.total.saturating_sub(1)) as i64)
        .fetch_all(db.writer())
        .await
        .context("could not claim deliveries")?;
    rows.into_iter()
        .map(|row| {
            Ok(Claimed {
                id: DeliveryId::parse(&row.try_get::<String, _>("id")?)?,
                partner: PartnerId::parse(&row.try_get::<String, _>("partner_id")?)?,
                webhook: WebhookId::parse(&row.try_get::<String, _>("webhook_id")?)?,
                event_id: row.try_get("event_id")?,
                attempts: row.try_get("attempts")?,
                origin: Origin::from_stored(&row.try_get::<String, _>("origin")?),
                due_at: row.try_get("next_attempt_at")?,
            })
        })
        .collect()
}

/// The claim's text: `$1` lease end, `$2` worker, `$3` now, `$4` limit, `$5` the window of due
/// rows looked at per partner, `$6` the webhooks at their limit (JSON list), `$7` the places the
/// others have taken (JSON object), `$8` the places a webhook has, `$9` the horizon (due by
/// then), `$10` the places partners have taken (JSON object), `$11` every place, `$12` the
/// reserve.
///
/// `parts` finds the partners with pending deliveries by skipping through the
/// `deliveries_partner_due` index (one seek per partner, however many deliveries each has);
/// the places are shared between the `active` ones, those with deliveries due now or under
/// way here (a partner whose deliveries all wait for a later retry takes no share);
/// `due` takes each one's oldest due deliveries from the same index, so a partner with
/// thousands queued can't fill the window and hide another's. The counts are read from their
/// JSON once (`MATERIALIZED`), not once per row looked at.
fn claim_sql(backend: Backend) -> String {
    // A partner's window: its oldest due deliveries not under way, off the index.
    let window = |columns: &str, full: &str, lock: &str| {
        format!(
            "SELECT {columns} FROM deliveries x \
             WHERE x.state = 'pending' AND x.partner_id = parts.p AND x.next_attempt_at <= $9 \
             AND (x.locked_until IS NULL OR x.locked_until < $3) AND x.webhook_id NOT IN ({full}) \
             ORDER BY x.next_attempt_at LIMIT $5 {lock}"
        )
    };
    let (busy, partners, greatest, due_from) = match backend {
        // SQLite has no LATERAL; it runs the correlated IN once per partner, seeking each id.
        Backend::Sqlite => (
            "SELECT key, value AS taken FROM json_each($7)",
            "SELECT key, value AS taken FROM json_each($10)",
            "MAX",
            format!(
                "SELECT d.id, d.partner_id, d.webhook_id, d.next_attempt_at FROM parts \
                 JOIN deliveries d ON d.id IN ({})",
                window("x.id", "SELECT value FROM json_each($6)", "")
            ),
        ),
        // PostgreSQL would test a correlated IN against every delivery: LATERAL instead.
        Backend::Postgres => (
            "SELECT key, value::bigint AS taken FROM jsonb_each_text($7::jsonb)",
            "SELECT key, value::bigint AS taken FROM jsonb_each_text($10::jsonb)",
            "GREATEST",
            format!(
                "SELECT d.id, d.partner_id, d.webhook_id, d.next_attempt_at FROM parts CROSS JOIN LATERAL ({}) d",
                window(
                    "x.id, x.partner_id, x.webhook_id, x.next_attempt_at",
                    "SELECT jsonb_array_elements_text($6::jsonb)",
                    "FOR UPDATE SKIP LOCKED"
                )
            ),
        ),
    };
    format!(
        "WITH RECURSIVE parts (p) AS ( \
           SELECT MIN(partner_id) FROM deliveries WHERE state = 'pending' \
           UNION ALL \
           SELECT (SELECT MIN(partner_id) FROM deliveries WHERE state = 'pending' AND partner_id > parts.p) \
           FROM parts WHERE parts.p IS NOT NULL), \
         busy AS MATERIALIZED ({busy}), \
         partners_busy AS MATERIALIZED ({partners}), \
         active AS MATERIALIZED ( \
           SELECT p FROM parts WHERE p IS NOT NULL AND EXISTS ( \
             SELECT 1 FROM deliveries y WHERE y.state = 'pending' AND y.partner_id = parts.p \
             AND y.next_attempt_at <= $9 AND (y.locked_until IS NULL OR y.locked_until < $3)) \
           UNION SELECT key FROM partners_busy), \
         share AS MATERIALIZED ( \
           SELECT {greatest}(1, ($11 - $12) / {greatest}(1, COUNT(*))) AS places FROM active), \
         due AS ( \
           {due_from} \
           WHERE parts.p IS NOT NULL AND parts.p NOT IN ( \
             SELECT key FROM partners_busy WHERE taken >= (SELECT places FROM share))), \
         by_webhook AS ( \
           SELECT due.id, due.partner_id, due.next_attempt_at, \
                  ROW_NUMBER() OVER (PARTITION BY due.webhook_id ORDER BY due.next_attempt_at, due.id) \
                  + COALESCE(busy.taken, 0) AS place \
           FROM due LEFT JOIN busy ON busy.key = due.webhook_id), \
         by_partner AS ( \
           SELECT w.id, w.next_attempt_at, \
                  ROW_NUMBER() OVER (PARTITION BY w.partner_id ORDER BY w.place, w.next_attempt_at, w.id) \
                  + COALESCE(pb.taken, 0) AS turn \
           FROM by_webhook w LEFT JOIN partners_busy pb ON pb.key = w.partner_id WHERE w.place <= $8) \
         UPDATE deliveries SET locked_until = $1, locked_by = $2 WHERE id IN ( \
           SELECT id FROM by_partner WHERE turn <= (SELECT places FROM share) \
           ORDER BY turn, next_attempt_at LIMIT $4) \
         RETURNING id, partner_id, webhook_id, event_id, attempts, origin, next_attempt_at"
    )
}

/// When the next pending delivery falls due (ms), counting expired leases; `None` when none wait.
pub async fn next_due(db: &Db) -> anyhow::Result<Option<i64>> {
    let row = sqlx::query(
        "SELECT MIN(CASE WHEN locked_until IS NOT NULL AND locked_until > next_attempt_at THEN locked_until \
         ELSE next_attempt_at END) AS due FROM deliveries WHERE state = 'pending'",
    )
    .fetch_one(db.pool())
    .await
    .context("could not find the next due delivery")?;
    Ok(row.try_get("due")?)
}

/// The event a delivery carries, as receivers see it.
pub async fn event_body(db: &Db, partner: &PartnerId, event_id: &str) -> anyhow::Result<Option<EventBody>> {
    let row = sqlx::query("SELECT id, type, status, data, created_at FROM events WHERE partner_id = $1 AND id = $2")
        .bind(partner.as_str())
        .bind(event_id)
        .fetch_optional(db.pool())
        .await
        .context("could not load the event")?;
    row.as_ref().map(body_of).transpose()
}

/// The events with these ids, as receivers see them, by id (one query for a claimed batch).
pub async fn event_bodies(
    db: &Db,
    ids: &[&str],
) -> anyhow::Result<std::collections::HashMap<String, (PartnerId, EventBody)>> {
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
            query = query.bind(*id);
        }
        for row in query.fetch_all(db.pool()).await.context("could not load the events")? {
            let partner = PartnerId::parse(&row.try_get::<String, _>("partner_id")?)?;
            bodies.insert(row.try_get::<String, _>("id")?, (partner, body_of(&row)?));
        }
    }
    Ok(bodies)
}

/// An `events` row as receivers see it.
fn body_of(row: &sqlx::any::AnyRow) -> anyhow::Result<EventBody> {
    Ok(EventBody {
        id: row.try_get("id")?,
        event_type: EventType::parse(&row.try_get::<String, _>("type")?).map_err(|e| anyhow::anyhow!("stored {e}"))?,
        status: row.try_get("status")?,
        created_at: super::from_ms(row.try_get("created_at")?),
        data: serde_json::from_str(&row.try_get::<String, _>("data")?)?,
    })
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

/// What to do after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Done: it succeeded.
    Succeeded,
    /// Try again at this time (ms).
    RetryAt(i64),
    /// No retries left: the delivery failed and the webhook is switched off for this reason.
    GiveUp { reason: String },
}

/// One attempt to log.
#[derive(Clone)]
pub struct AttemptRecord<'a> {
    /// The delivery it belongs to (`None` for a test).
    pub delivery: Option<&'a DeliveryId>,
    /// Its partner.
    pub partner: &'a PartnerId,
    /// Its webhook.
    pub webhook: &'a WebhookId,
    /// The event sent.
    pub event: &'a EventBody,
    /// 1 for the first attempt.
    pub number: i64,
    /// The request as sent (`None` when it could not be built).
    pub request: Option<&'a OutgoingRequest>,
    /// What happened.
    pub result: &'a AttemptResult,
    /// Why the delivery exists; [`Origin::Test`] for "Test Webhook" (not retried, not counted
    /// in health).
    pub origin: Origin,
}

/// An attempt to log that owns its parts, to hand to another task (the dispatcher's
/// recorder, which writes many in one transaction).
#[derive(Debug, Clone)]
pub struct FinishedAttempt {
    /// The delivery it belongs to (`None` for a test).
    pub delivery: Option<DeliveryId>,
    /// Its partner.
    pub partner: PartnerId,
    /// Its webhook.
    pub webhook: WebhookId,
    /// The event sent.
    pub event: EventBody,
    /// 1 for the first attempt.
    pub number: i64,
    /// The request as sent.
    pub request: Option<OutgoingRequest>,
    /// What happened.
    pub result: AttemptResult,
    /// Why the delivery exists.
    pub origin: Origin,
    /// What comes next.
    pub next: Next,
}

impl FinishedAttempt {
    /// The attempt as [`record`] takes it.
    pub fn as_record(&self) -> AttemptRecord<'_> {
        AttemptRecord {
            delivery: self.delivery.as_ref(),
            partner: &self.partner,
            webhook: &self.webhook,
            event: &self.event,
            number: self.number,
            request: self.request.as_ref(),
            result: &self.result,
            origin: self.origin,
        }
    }
}

/// Logs an attempt and moves its delivery on, in one transaction: done, retry later, or failed
/// (then the webhook is deactivated with the reason and its other waiting deliveries held).
#[tracing::instrument(skip_all, fields(webhook = %attempt.webhook))]
pub async fn record(db: &Db, attempt: &AttemptRecord<'_>, next: &Next) -> anyhow::Result<()> {
    let mut tx = db.writer().begin().await.context("could not start a transaction")?;
    let deactivated = record_in(&mut tx, &[(attempt.clone(), next)], now_ms()).await?;
    tx.commit().await.context("could not commit the attempt")?;
    count_deactivations(deactivated);
    Ok(())
}

/// Logs many attempts in one transaction (what [`record`] does for one): one multi-row insert
/// for the log, one counter update per webhook and minute, then each delivery's next step. A
/// busy dispatcher pays one commit and a few statements per batch. All or nothing.
pub async fn record_many(db: &Db, attempts: &[FinishedAttempt]) -> anyhow::Result<()> {
    if db.backend() == Backend::Sqlite
        && attempts.len() <= ONE_HOP_MAX
        && attempts.iter().all(FinishedAttempt::is_routine)
    {
        return record_in_one_hop(db, attempts).await;
    }
    let now = now_ms();
    let mut tx = db.writer().begin().await.context("could not start a transaction")?;
    if db.backend() == super::Backend::Postgres {
        // The commit needn't wait for the disk: if a crash loses it, the deliveries are still
        // pending under their lease and are sent again (at least once), as with a crash just
        // before the commit. Publishing an event, which the API acknowledges, still waits.
        sqlx::query("SET LOCAL synchronous_commit = off")
            .execute(&mut *tx)
            .await
            .context("could not relax the commit")?;
    }
    let records: Vec<(AttemptRecord<'_>, &Next)> = attempts.iter().map(|a| (a.as_record(), &a.next)).collect();
    let deactivated = record_in(&mut tx, &records, now).await?;
    tx.commit().await.context("could not commit the attempts")?;
    count_deactivations(deactivated);
    Ok(())
}

/// Most attempts [`record_in_one_hop`] writes: a quiet dispatcher's batches are this small,
/// and each size is one more script text for the connection's statement cache.
const ONE_HOP_MAX: usize = 8;

/// Parameters of one attempt in a one-hop script: the attempt's columns but its time (16),
/// then whether it succeeded, the delivery's next state and its next due time.
const ONE_HOP_WIDTH: usize = 19;

impl FinishedAttempt {
    /// An attempt of a delivery that succeeded or will be retried: it only adds rows and moves
    /// counters (no test, no webhook to switch off).
    fn is_routine(&self) -> bool {
        self.delivery.is_some() && self.origin != Origin::Test && !matches!(self.next, Next::GiveUp { .. })
    }
}

/// Writes a batch of routine attempts ([`FinishedAttempt::is_routine`]) on SQLite as one script,
/// `BEGIN IMMEDIATE; …; COMMIT`, which the driver runs in one trip to the connection's thread
/// (numbered parameters hold across the script's statements), where the transaction of
/// [`record_many`] takes six. Each attempt has its own four statements: the log row, its
/// minute's counter, its webhook's newest attempt and failures in a row, and its delivery's
/// next step; applied in order they come to what the batch statements write.
async fn record_in_one_hop(db: &Db, attempts: &[FinishedAttempt]) -> anyhow::Result<()> {
    static SCRIPTS: [std::sync::OnceLock<String>; ONE_HOP_MAX] = [const { std::sync::OnceLock::new() }; ONE_HOP_MAX];
    let text = SCRIPTS[attempts.len() - 1].get_or_init(|| {
        // $1 now, $2 its minute; then each attempt's ONE_HOP_WIDTH parameters.
        let blocks: String = (0..attempts.len())
            .map(|i| {
                let p = |k: usize| format!("${}", 3 + i * ONE_HOP_WIDTH + k);
                format!(
                    "INSERT INTO attempts (id, partner_id, webhook_id, delivery_id, event_id, event_type, \
                     attempt_number, outcome, status_code, latency_ms, error, request_headers, request_body, \
                     response_body, test, origin, created_at) VALUES ({}, $1); \
                     INSERT INTO webhook_minutes (webhook_id, partner_id, minute, attempts, failures) \
                     VALUES ({w}, {partner}, $2, 1, 1 - {ok}) ON CONFLICT (webhook_id, minute) DO UPDATE SET \
                     attempts = webhook_minutes.attempts + 1, failures = webhook_minutes.failures + excluded.failures; \
                     UPDATE webhooks SET last_attempt_at = $1, last_attempt_ok = {ok}, failures_in_a_row = \
                     CASE WHEN {ok} = 1 THEN 0 ELSE failures_in_a_row + 1 END WHERE id = {w}; \
                     UPDATE deliveries SET state = {state}, attempts = {number}, next_attempt_at = {next}, \
                     locked_until = NULL, locked_by = NULL, updated_at = $1 WHERE id = {delivery}; ",
                    (0..16).map(p).collect::<Vec<_>>().join(", "),
                    partner = p(1),
                    w = p(2),
                    delivery = p(3),
                    number = p(6),
                    ok = p(16),
                    state = p(17),
                    next = p(18),
                )
            })
            .collect();
        format!("BEGIN IMMEDIATE; {blocks}COMMIT")
    });
    let now = now_ms();
    let mut script = sqlx::query(text).bind(now).bind(now / super::log::MINUTE_MS);
    for attempt in attempts {
        let (state, next_at) = match attempt.next {
            Next::RetryAt(at) => ("pending", at),
            _ => ("succeeded", now),
        };
        script = bind_attempt(script, &attempt.as_record())?
            .bind(i64::from(attempt.result.success))
            .bind(state)
            .bind(next_at);
    }
    let mut conn = db.writer().acquire().await.context("could not reach the database")?;
    if let Err(e) = script.execute(&mut *conn).await {
        // The script stopped at the failing statement, inside its transaction: end it, so the
        // connection goes back to the pool as it came.
        let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
        return Err(e).context("could not log the attempts");
    }
    Ok(())
}

/// Binds an attempt's columns of the `attempts` table but its time, in the table's order.
fn bind_attempt<'q>(
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    attempt: &AttemptRecord<'q>,
) -> anyhow::Result<sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>> {
    let headers = attempt.request.map(|r| r.logged_headers()).unwrap_or_default();
    Ok(query
        .bind(AttemptId::generate().as_str().to_owned())
        .bind(attempt.partner.as_str())
        .bind(attempt.webhook.as_str())
        .bind(attempt.delivery.map(|d| d.as_str().to_owned()))
        .bind(&attempt.event.id)
        .bind(attempt.event.event_type.as_str())
        .bind(attempt.number)
        .bind(if attempt.result.success { "success" } else { "failure" })
        .bind(attempt.result.status_code.map(i64::from))
        .bind(attempt.result.latency_ms)
        .bind(attempt.result.error.clone())
        .bind(serde_json::to_string(&headers)?)
        .bind(attempt.request.map(|r| r.body.clone()).unwrap_or_default())
        .bind(attempt.result.response_body.clone())
        .bind(flag(attempt.origin == Origin::Test))
        .bind(attempt.origin.as_str()))
}

fn count_deactivations(n: u64) {
    if n > 0 {
        metrics::counter!("portal_webhooks_deactivated_total").increment(n);
    }
}

/// Columns of one attempt row.
const ATTEMPT_COLUMNS: usize = 17;

/// The statements of a batch of attempts, inside the caller's transaction; answers how many
/// webhooks they switched off.
async fn record_in(
    conn: &mut sqlx::AnyConnection,
    attempts: &[(AttemptRecord<'_>, &Next)],
    now: i64,
) -> anyhow::Result<u64> {
    if attempts.is_empty() {
        return Ok(0);
    }
    static INSERT: BatchSql = BatchSql::new(|n| {
        format!(
            "INSERT INTO attempts (id, partner_id, webhook_id, delivery_id, event_id, event_type, attempt_number, \
             outcome, status_code, latency_ms, error, request_headers, request_body, response_body, test, origin, \
             created_at) VALUES {}",
            value_rows(1, n, ATTEMPT_COLUMNS)
        )
    });
    for batch in batches(attempts) {
        let mut insert = sqlx::query(INSERT.get(batch.len()));
        for (attempt, _) in batch {
            insert = bind_attempt(insert, attempt)?.bind(now);
        }
        insert.execute(&mut *conn).await.context("could not log the attempts")?;
    }
    let counted: Vec<(&PartnerId, &WebhookId, bool)> = attempts
        .iter()
        .filter(|(a, _)| a.origin != Origin::Test)
        .map(|(a, _)| (a.partner, a.webhook, a.result.success))
        .collect();
    super::log::count_attempts(&mut *conn, &counted, now).await?;
    // Succeeded deliveries finish together (one statement per attempt number, nearly always
    // just the first); retries and give-ups move together; a webhook given up on is switched
    // off once, with the first reason the batch has for it.
    let mut succeeded: Vec<(i64, Vec<&str>)> = Vec::new();
    let mut moves: Vec<(&str, i64, i64, &str)> = Vec::new();
    let mut given_up: Vec<(&str, &str)> = Vec::new();
    for (attempt, next) in attempts {
        let Some(delivery) = attempt.delivery else { continue };
        match next {
            Next::Succeeded => match succeeded.iter_mut().find(|(n, _)| *n == attempt.number) {
                Some((_, ids)) => ids.push(delivery.as_str()),
                None => succeeded.push((attempt.number, vec![delivery.as_str()])),
            },
            Next::RetryAt(at) => moves.push((delivery.as_str(), attempt.number, *at, "pending")),
            Next::GiveUp { reason } => {
                moves.push((delivery.as_str(), attempt.number, now, "failed"));
                if !given_up.iter().any(|(w, _)| *w == attempt.webhook.as_str()) {
                    given_up.push((attempt.webhook.as_str(), reason));
                }
            }
        }
    }
    static FINISH: BatchSql = BatchSql::new(|n| {
        format!(
            "UPDATE deliveries SET state = 'succeeded', attempts = $1, next_attempt_at = $2, locked_until = NULL, \
             locked_by = NULL, updated_at = $2 WHERE id IN ({})",
            placeholders(3, n)
        )
    });
    for (number, ids) in succeeded {
        for batch in batches(&ids) {
            let mut update = sqlx::query(FINISH.get(batch.len())).bind(number).bind(now);
            for id in batch {
                update = update.bind(*id);
            }
            update.execute(&mut *conn).await.context("could not finish the delivered deliveries")?;
        }
    }
    // A VALUES list joined by id (both databases name its columns column1, column2, …).
    static MOVE: BatchSql = BatchSql::new(|n| {
        format!(
            "UPDATE deliveries SET state = step.column4, attempts = step.column2, next_attempt_at = step.column3, \
             locked_until = NULL, locked_by = NULL, updated_at = $1 FROM (VALUES {}) AS step \
             WHERE deliveries.id = step.column1",
            value_rows(2, n, 4)
        )
    });
    for batch in batches(&moves) {
        let mut update = sqlx::query(MOVE.get(batch.len())).bind(now);
        for (id, number, at, state) in batch {
            update = update.bind(*id).bind(*number).bind(*at).bind(*state);
        }
        update.execute(&mut *conn).await.context("could not move the deliveries on")?;
    }
    give_up(conn, &given_up, now).await
}

/// Switches off the webhooks given up on (those still on, each with its reason), holds their
/// waiting deliveries and records an alert for each one switched off now; answers how many.
async fn give_up(conn: &mut sqlx::AnyConnection, given_up: &[(&str, &str)], now: i64) -> anyhow::Result<u64> {
    static OFF: BatchSql = BatchSql::new(|n| {
        format!(
            "UPDATE webhooks SET active = 0, deactivated_at = $1, last_deactivated_at = $1, \
             deactivated_reason = off.column2, updated_at = $1 FROM (VALUES {}) AS off \
             WHERE webhooks.id = off.column1 AND webhooks.active = 1 RETURNING webhooks.id",
            value_rows(2, n, 2)
        )
    });
    let mut switched_off: Vec<(&str, &str)> = Vec::new();
    for batch in batches(given_up) {
        let mut off = sqlx::query(OFF.get(batch.len())).bind(now);
        for (webhook, reason) in batch {
            off = off.bind(*webhook).bind(*reason);
        }
        for row in off.fetch_all(&mut *conn).await.context("could not deactivate the webhooks")? {
            let id: String = row.try_get("id")?;
            switched_off.extend(batch.iter().find(|(w, _)| *w == id).copied());
        }
    }
    let webhooks: Vec<&str> = given_up.iter().map(|(w, _)| *w).collect();
    hold_waiting(&mut *conn, &webhooks, now).await?;
    super::alerts::record(&mut *conn, &switched_off, now).await?;
    Ok(switched_off.len() as u64)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{EmailAddress, PartnerName, UrlPolicy, WebhookSettings, WebhookUrl};
    use proptest::prelude::*;

    /// What a batch leaves behind for one webhook: its minute counters, its newest attempt and
    /// failures in a row, its log rows, and its deliveries' states.
    #[derive(Debug, PartialEq)]
    struct Left {
        attempts: i64,
        failures: i64,
        last_ok: Option<i64>,
        failures_in_a_row: i64,
        logged: i64,
        deliveries: Vec<(String, i64, bool)>,
    }

    async fn left(db: &Db, webhook: &WebhookId) -> Left {
        let one = |sql: &'static str| sqlx::query(sql).bind(webhook.as_str().to_owned()).fetch_one(db.pool());
        let minutes = one("SELECT CAST(COALESCE(SUM(attempts), 0) AS BIGINT) AS a, CAST(COALESCE(SUM(failures), 0) AS BIGINT) AS f FROM webhook_minutes WHERE webhook_id = $1").await.unwrap();
        let hook = one("SELECT last_attempt_ok, failures_in_a_row FROM webhooks WHERE id = $1").await.unwrap();
        let logged = one("SELECT COUNT(*) AS n FROM attempts WHERE webhook_id = $1").await.unwrap();
        let deliveries = sqlx::query(
            "SELECT state, attempts, locked_until IS NULL AS free FROM deliveries WHERE webhook_id = $1 ORDER BY created_at, id",
        )
        .bind(webhook.as_str().to_owned())
        .fetch_all(db.pool())
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get("state"), r.get("attempts"), r.get::<i64, _>("free") == 1))
        .collect();
        Left {
            attempts: minutes.get("a"),
            failures: minutes.get("f"),
            last_ok: hook.get("last_attempt_ok"),
            failures_in_a_row: hook.get("failures_in_a_row"),
            logged: logged.get("n"),
            deliveries,
        }
    }

    /// A partner with `n` webhooks and one event, published so each webhook has a delivery,
    /// `events` times over; answers the webhooks and, for each, its deliveries and the events.
    async fn world(db: &Db, n: usize, events: usize) -> (PartnerId, Vec<(WebhookId, Vec<(DeliveryId, EventBody)>)>) {
        let email = format!("{}@example.test", crate::domain::UserId::generate().as_str().to_lowercase());
        let (partner, _) = crate::store::accounts::create_partner_with_user(
            db,
            &PartnerName::parse("Acme").unwrap(),
            &EmailAddress::parse(&email).unwrap(),
            "not a hash",
        )
        .await
        .unwrap();
        let settings = WebhookSettings {
            url: WebhookUrl::parse("https://example.com/hook", UrlPolicy { allow_private: false }).unwrap(),
            active: true,
            auth_header: None,
            event_filter: EventFilter::default(),
            payload_template: None,
            rate_limit: None,
        };
        let mut hooks = Vec::new();
        for _ in 0..n {
            hooks.push(crate::store::webhooks::create(db, &partner, &settings, u32::MAX).await.unwrap().unwrap().0.id);
        }
        for i in 0..events {
            let event = NewEvent {
                id: format!("evt_{}_{i}", partner.as_str()),
                partner: partner.clone(),
                event_type: EventType::VerificationCompleted,
                status: "success".into(),
                data: serde_json::json!({"n": i}),
            };
            assert_eq!(publish(db, &event).await.unwrap(), Published::New { deliveries: n as i64 });
        }
        let mut out = Vec::new();
        for hook in hooks {
            let rows = sqlx::query("SELECT id, event_id FROM deliveries WHERE webhook_id = $1 ORDER BY created_at, id")
                .bind(hook.as_str().to_owned())
                .fetch_all(db.pool())
                .await
                .unwrap();
            let mut deliveries = Vec::new();
            for row in rows {
                let event_id: String = row.get("event_id");
                let body = event_body(db, &partner, &event_id).await.unwrap().unwrap();
                deliveries.push((DeliveryId::parse(row.get::<&str, _>("id")).unwrap(), body));
            }
            out.push((hook, deliveries));
        }
        (partner, out)
    }

    /// Records `steps` (which webhook, whether it succeeded) for each world's webhooks, one
    /// world by the one-hop script and one by the batch statements, and answers what each left.
    async fn both_ways(db: &Db, steps: &[(usize, bool)]) -> Vec<(Left, Left)> {
        const HOOKS: usize = 3;
        let (a_partner, a) = world(db, HOOKS, steps.len()).await;
        let (b_partner, b) = world(db, HOOKS, steps.len()).await;
        let attempts = |partner: &PartnerId, hooks: &[(WebhookId, Vec<(DeliveryId, EventBody)>)]| {
            steps
                .iter()
                .enumerate()
                .map(|(i, &(hook, success))| {
                    let (webhook, deliveries) = &hooks[hook];
                    let (delivery, event) = &deliveries[i];
                    FinishedAttempt {
                        delivery: Some(delivery.clone()),
                        partner: partner.clone(),
                        webhook: webhook.clone(),
                        event: event.clone(),
                        number: 1,
                        request: None,
                        result: AttemptResult {
                            success,
                            status_code: Some(if success { 200 } else { 500 }),
                            latency_ms: 3,
                            response_body: None,
                            error: (!success).then(|| "HTTP 500".to_owned()),
                            cause: None,
                            retry_after_secs: None,
                        },
                        origin: Origin::Event,
                        next: if success { Next::Succeeded } else { Next::RetryAt(now_ms() + 1_000) },
                    }
                })
                .collect::<Vec<_>>()
        };
        let one_hop = attempts(&a_partner, &a);
        assert!(one_hop.iter().all(FinishedAttempt::is_routine));
        record_in_one_hop(db, &one_hop).await.unwrap();
        let batch = attempts(&b_partner, &b);
        let records: Vec<(AttemptRecord<'_>, &Next)> = batch.iter().map(|a| (a.as_record(), &a.next)).collect();
        let mut tx = db.writer().begin().await.unwrap();
        assert_eq!(record_in(&mut tx, &records, now_ms()).await.unwrap(), 0);
        tx.commit().await.unwrap();
        let mut out = Vec::new();
        for ((a, _), (b, _)) in a.iter().zip(&b) {
            out.push((left(db, a).await, left(db, b).await));
        }
        out
    }

    #[test]
    fn the_one_hop_script_and_the_batch_statements_leave_the_same_counters() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let dir = std::env::temp_dir().join(format!("portal-one-hop-{}", std::process::id()));
        let db = runtime.block_on(async {
            let db = Db::connect(&format!("sqlite://{}/p.db", dir.display())).await.unwrap();
            db.migrate().await.unwrap();
            db
        });
        let steps = proptest::collection::vec((0..3usize, any::<bool>()), 1..=ONE_HOP_MAX);
        let mut runner =
            proptest::test_runner::TestRunner::new(ProptestConfig { cases: 24, ..ProptestConfig::default() });
        let result = runner.run(&steps, |steps| {
            for (hook, (one_hop, batch)) in runtime.block_on(both_ways(&db, &steps)).into_iter().enumerate() {
                prop_assert_eq!(&one_hop, &batch, "webhook {} after {:?}", hook, steps);
                let mine: Vec<bool> = steps.iter().filter(|(h, _)| *h == hook).map(|(_, ok)| *ok).collect();
                prop_assert_eq!(one_hop.attempts, mine.len() as i64);
                let trailing = mine.iter().rev().take_while(|ok| !**ok).count() as i64;
                prop_assert_eq!(one_hop.failures_in_a_row, trailing);
            }
            Ok(())
        });
        drop(db);
        let _ = std::fs::remove_dir_all(&dir);
        result.unwrap();
    }
}
