//! Attempts: recording each one (the log, the webhook's counters, the delivery's next step),
//! in batches, and giving up after the last retry (the webhook switched off, an alert).

use anyhow::Context;
use sqlx::Row;

use super::{Backend, BatchSql, Db, batches, flag, now_ms, placeholders, value_rows};
use crate::domain::{AttemptId, DeliveryId, EventBody, Origin, PartnerId, WebhookId};
use crate::domain::{AttemptResult, OutgoingRequest};

pub use crate::domain::Next;

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
    let mut tx = db.begin_write().await?;
    let deactivated = record_in(&mut tx, &[(attempt.clone(), next)], now_ms()).await?;
    tx.commit().await.context("could not commit the attempt")?;
    count_deactivations(deactivated);
    Ok(())
}

/// Logs many attempts in one transaction (what [`record`] does for one): one multi-row insert
/// for the log, one counter update per webhook and minute, then each delivery's next step. A
/// busy dispatcher pays one commit and a few statements per batch. All or nothing.
pub async fn record_many(db: &Db, attempts: &[FinishedAttempt]) -> anyhow::Result<()> {
    if db.backend() == Backend::Sqlite && attempts.iter().all(FinishedAttempt::is_routine) {
        return record_in_one_hop(db, attempts).await;
    }
    let now = now_ms();
    let mut tx = db.begin_write().await?;
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
/// [`record_many`] takes one trip per statement, and the writer waits between them for this
/// task's turn on a busy runtime. The batch goes in as three JSON lists, whatever its size, so
/// the script's text never changes: the attempts' rows, each webhook's share (its minute's
/// counts, its newest attempt, failures in a row) and each delivery's next step; each statement
/// reads its list with `json_each`, and they come to what the batch statements write.
async fn record_in_one_hop(db: &Db, attempts: &[FinishedAttempt]) -> anyhow::Result<()> {
    use serde_json::{Value, json};
    // $1 now, $2 its minute, $3 the attempts, $4 the webhooks' shares, $5 the deliveries' steps.
    const SCRIPT: &str = "BEGIN IMMEDIATE; \
        INSERT INTO attempts (id, partner_id, webhook_id, delivery_id, event_id, event_type, attempt_number, \
        outcome, status_code, latency_ms, error, request_headers, request_body, response_body, test, origin, \
        created_at) SELECT a.value ->> 0, a.value ->> 1, a.value ->> 2, a.value ->> 3, a.value ->> 4, \
        a.value ->> 5, a.value ->> 6, a.value ->> 7, a.value ->> 8, a.value ->> 9, a.value ->> 10, \
        a.value ->> 11, a.value ->> 12, a.value ->> 13, a.value ->> 14, a.value ->> 15, $1 \
        FROM json_each($3) AS a ORDER BY a.key; \
        INSERT INTO webhook_minutes (webhook_id, partner_id, minute, attempts, failures) \
        SELECT t.value ->> 0, t.value ->> 1, $2, t.value ->> 2, t.value ->> 3 FROM json_each($4) AS t WHERE true \
        ON CONFLICT (webhook_id, minute) DO UPDATE SET attempts = webhook_minutes.attempts + excluded.attempts, \
        failures = webhook_minutes.failures + excluded.failures; \
        UPDATE webhooks SET last_attempt_at = $1, last_attempt_ok = t.value ->> 4, failures_in_a_row = \
        CASE WHEN t.value ->> 5 = 1 THEN t.value ->> 6 ELSE failures_in_a_row + (t.value ->> 6) END \
        FROM json_each($4) AS t WHERE webhooks.id = t.value ->> 0; \
        UPDATE deliveries SET state = s.value ->> 1, attempts = s.value ->> 2, next_attempt_at = s.value ->> 3, \
        locked_until = NULL, locked_by = NULL, updated_at = $1 FROM json_each($5) AS s \
        WHERE deliveries.id = s.value ->> 0; \
        COMMIT";
    let now = now_ms();
    let mut rows = Vec::with_capacity(attempts.len());
    let mut steps = Vec::with_capacity(attempts.len());
    for attempt in attempts {
        let record = attempt.as_record();
        rows.push(serde_json::to_value(attempt_columns(&record)?)?);
        let (state, next_at) = match attempt.next {
            Next::RetryAt(at) => ("pending", at),
            _ => ("succeeded", now),
        };
        steps.push(json!([record.delivery.map(DeliveryId::as_str), state, record.number, next_at]));
    }
    let counted: Vec<(&PartnerId, &WebhookId, bool)> =
        attempts.iter().map(|a| (&a.partner, &a.webhook, a.result.success)).collect();
    let shares: Vec<Value> = super::log::tally(&counted)
        .iter()
        .map(|t| {
            // The newest attempt succeeded when no failure followed the batch's last success.
            json!([
                t.webhook.as_str(),
                t.partner.as_str(),
                t.attempts,
                t.failures,
                i64::from(t.trailing == 0),
                i64::from(t.any_success),
                t.trailing
            ])
        })
        .collect();
    let script = sqlx::query(SCRIPT)
        .bind(now)
        .bind(now / super::log::MINUTE_MS)
        .bind(Value::Array(rows).to_string())
        .bind(Value::Array(shares).to_string())
        .bind(Value::Array(steps).to_string());
    let mut conn = db.writer().acquire().await.context("could not reach the database")?;
    let result = script.execute(&mut *conn).await.map(drop).context("could not log the attempts");
    super::roll_back_on_error(&mut conn, result).await
}

/// One logged column of an attempt, as bound to a statement or written into the JSON list of
/// [`record_in_one_hop`] (text or a number, either of them possibly null).
#[derive(serde::Serialize)]
#[serde(untagged)]
enum Column<'a> {
    Text(Option<std::borrow::Cow<'a, str>>),
    Number(Option<i64>),
}

/// An attempt's columns of the `attempts` table but its time, in the table's order: the one
/// list both ways of writing an attempt use.
fn attempt_columns<'a>(attempt: &AttemptRecord<'a>) -> anyhow::Result<[Column<'a>; ATTEMPT_COLUMNS - 1]> {
    use Column::{Number, Text};
    let text = |s: &'a str| Text(Some(s.into()));
    let headers = attempt.request.map(|r| r.logged_headers()).unwrap_or_default();
    Ok([
        Text(Some(AttemptId::generate().as_str().to_owned().into())),
        text(attempt.partner.as_str()),
        text(attempt.webhook.as_str()),
        Text(attempt.delivery.map(|d| d.as_str().into())),
        text(attempt.event.id.as_str()),
        text(attempt.event.event_type.as_str()),
        Number(Some(attempt.number)),
        text(if attempt.result.success { "success" } else { "failure" }),
        Number(attempt.result.status_code.map(i64::from)),
        Number(Some(attempt.result.latency_ms)),
        Text(attempt.result.error.as_deref().map(Into::into)),
        Text(Some(serde_json::to_string(&headers)?.into())),
        text(attempt.request.map(|r| r.body.as_str()).unwrap_or_default()),
        Text(attempt.result.response_body.as_deref().map(Into::into)),
        Number(Some(flag(attempt.origin == Origin::Test))),
        text(attempt.origin.as_str()),
    ])
}

/// Binds an attempt's columns ([`attempt_columns`]) to a statement.
fn bind_attempt<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    attempt: &AttemptRecord<'q>,
) -> anyhow::Result<sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>> {
    use std::borrow::Cow;
    for column in attempt_columns(attempt)? {
        query = match column {
            // Borrowed text is bound borrowed, as the statement's lifetime allows.
            Column::Text(Some(Cow::Borrowed(text))) => query.bind(text),
            Column::Text(text) => query.bind(text.map(Cow::into_owned)),
            Column::Number(number) => query.bind(number),
        };
    }
    Ok(query)
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
    super::queue::hold_waiting(&mut *conn, &webhooks, now).await?;
    super::alerts::record(&mut *conn, &switched_off, now).await?;
    Ok(switched_off.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{EventId, EventType, NewEvent};
    use crate::store::events::{Published, event_body, publish};
    use proptest::prelude::*;

    /// What a batch leaves behind for one webhook: its minute counters, its newest attempt and
    /// failures in a row, its log rows, and its deliveries' states.
    #[derive(Debug, PartialEq)]
    struct Left {
        attempts: i64,
        failures: i64,
        last_ok: Option<i64>,
        failures_in_a_row: i64,
        /// Each log row in the order written (SQLite's rowid): number, outcome, status, error, latency, headers, body,
        /// test flag, origin.
        logged: Vec<LogRow>,
        deliveries: Vec<(String, i64, bool)>,
    }

    type LogRow = (i64, String, Option<i64>, Option<String>, i64, String, String, i64, String);

    async fn left(db: &Db, webhook: &WebhookId) -> Left {
        let one = |sql: &'static str| sqlx::query(sql).bind(webhook.as_str().to_owned()).fetch_one(db.pool());
        let minutes = one("SELECT CAST(COALESCE(SUM(attempts), 0) AS BIGINT) AS a, CAST(COALESCE(SUM(failures), 0) AS BIGINT) AS f FROM webhook_minutes WHERE webhook_id = $1").await.unwrap();
        let hook = one("SELECT last_attempt_ok, failures_in_a_row FROM webhooks WHERE id = $1").await.unwrap();
        let logged = sqlx::query(
            "SELECT attempt_number, outcome, status_code, error, latency_ms, request_headers, request_body, test, \
             origin FROM attempts WHERE webhook_id = $1 ORDER BY rowid",
        )
        .bind(webhook.as_str().to_owned())
        .fetch_all(db.pool())
        .await
        .unwrap()
        .iter()
        .map(|r| {
            (
                r.get("attempt_number"),
                r.get("outcome"),
                r.get("status_code"),
                r.get("error"),
                r.get("latency_ms"),
                r.get("request_headers"),
                r.get("request_body"),
                r.get("test"),
                r.get("origin"),
            )
        })
        .collect();
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
            logged,
            deliveries,
        }
    }

    /// A partner with `n` webhooks and one event, published so each webhook has a delivery,
    /// `events` times over; answers the webhooks and, for each, its deliveries and the events.
    async fn world(db: &Db, n: usize, events: usize) -> (PartnerId, Vec<(WebhookId, Vec<(DeliveryId, EventBody)>)>) {
        let (partner, hooks) = crate::store::test_partner_with_webhooks(db, n).await;
        for i in 0..events {
            let event = NewEvent {
                id: EventId::parse(&format!("evt_{}_{i}", partner.as_str())).unwrap(),
                partner: partner.clone(),
                environment: crate::domain::Environment::Production,
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
                let body = event_body(db, &partner, &EventId::parse(&event_id).unwrap()).await.unwrap().unwrap();
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
        let mut tx = db.begin_write().await.unwrap();
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
        let (db, dir) = runtime.block_on(crate::store::test_database("one-hop"));
        // Past BATCH_ROWS, so the batch statements take more than one statement each.
        let steps = proptest::collection::vec((0..3usize, any::<bool>()), 1..=40);
        let mut runner =
            proptest::test_runner::TestRunner::new(ProptestConfig { cases: 24, ..ProptestConfig::default() });
        let result = runner.run(&steps, |steps| {
            for (hook, (one_hop, batch)) in runtime.block_on(both_ways(&db, &steps)).into_iter().enumerate() {
                prop_assert_eq!(&one_hop, &batch, "webhook {} after {:?}", hook, steps);
                let mine: Vec<bool> = steps.iter().filter(|(h, _)| *h == hook).map(|(_, ok)| *ok).collect();
                prop_assert_eq!(one_hop.attempts, mine.len() as i64);
                prop_assert_eq!(one_hop.logged.len(), mine.len());
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
