//! The delivery log, read: pages of attempts (keyset, never OFFSET), one attempt's detail, the
//! running counters behind success rate and the chart, a replay's progress; and retention.

use std::collections::HashMap;

use anyhow::Context;
use chrono::{DurationRound, TimeDelta};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::sql::Sql;
use super::{BatchSql, Db, batches, from_ms, get_flag, now_ms, value_rows};
use crate::domain::{
    AttemptDetail, AttemptId, AttemptPage, AttemptSummary, DeliveryId, EventId, HourBar, LogRequest, Origin, Outcome,
    PartnerId, ReplayId, ReplayView, WebhookId,
};

/// A minute as the counters key it.
pub const MINUTE_MS: i64 = 60_000;
/// The success rate's window: the last 24 hours, counted by the minute.
pub const WINDOW_MINUTES: i64 = 24 * 60;
/// Counters older than this are pruned (the window and the chart need one day).
const KEEP_COUNTERS_MINUTES: i64 = 2 * WINDOW_MINUTES;

pub(super) const SUMMARY_COLUMNS: &str = "a.id, a.webhook_id, a.delivery_id, a.event_id, a.event_type, a.attempt_number, \
    a.outcome, a.status_code, a.latency_ms, a.error, a.test, a.origin, a.created_at";

pub(super) fn summary(row: &AnyRow) -> anyhow::Result<AttemptSummary> {
    let test = get_flag(row, "test")?;
    Ok(AttemptSummary {
        id: AttemptId::parse(&row.try_get::<String, _>("id")?)?,
        webhook_id: WebhookId::parse(&row.try_get::<String, _>("webhook_id")?)?,
        delivery_id: row.try_get::<Option<String>, _>("delivery_id")?.map(|d| DeliveryId::parse(&d)).transpose()?,
        event_id: EventId::from_trusted(row.try_get("event_id")?),
        event_type: row.try_get("event_type")?,
        attempt: row.try_get("attempt_number")?,
        outcome: if row.try_get::<String, _>("outcome")? == "success" { Outcome::Success } else { Outcome::Failure },
        status_code: row.try_get::<Option<i64>, _>("status_code")?.and_then(|c| u16::try_from(c).ok()),
        latency_ms: row.try_get("latency_ms")?,
        error: row.try_get("error")?,
        test,
        origin: if test { Origin::Test } else { Origin::from_stored(&row.try_get::<String, _>("origin")?) },
        created_at: from_ms(row.try_get("created_at")?),
    })
}

/// A page of the partner's attempts, newest first, that match the request. The page after a
/// cursor holds the rows strictly older than it in (time, id) order, read off an index, so
/// every page costs the same however long the log is.
#[tracing::instrument(skip_all, fields(partner = %partner))]
pub async fn page(db: &Db, partner: &PartnerId, request: &LogRequest) -> anyhow::Result<AttemptPage> {
    let filter = &request.filter;
    let mut sql = Sql::default();
    sql.push(&format!("SELECT {SUMMARY_COLUMNS} FROM attempts a WHERE a.partner_id = ")).text(partner.as_str());
    if let Some(webhook) = &filter.webhook {
        sql.push(" AND a.webhook_id = ").text(webhook.as_str());
    }
    if let Some(outcome) = filter.outcome {
        sql.push(" AND a.outcome = ").text(outcome.as_str());
    }
    if let Some(event_type) = filter.event_type {
        sql.push(" AND a.event_type = ").text(event_type.as_str());
    }
    if let Some(from) = filter.from {
        sql.push(" AND a.created_at >= ").int(from.timestamp_millis());
    }
    if let Some(to) = filter.to {
        sql.push(" AND a.created_at < ").int(to.timestamp_millis());
    }
    if let Some(cursor) = &request.cursor {
        sql.push(" AND (a.created_at < ").int(cursor.at);
        sql.push(" OR (a.created_at = ").int(cursor.at).push(" AND a.id < ").text(cursor.id.as_str()).push("))");
    }
    sql.push(" ORDER BY a.created_at DESC, a.id DESC LIMIT ").int(request.limit + 1);
    let rows = sql.fetch_all(db).await.context("could not read the delivery log")?;
    let mut data = rows.iter().map(summary).collect::<anyhow::Result<Vec<_>>>()?;
    let more = data.len() as i64 > request.limit;
    data.truncate(request.limit as usize);
    let next = if more { data.last().map(|last| last.cursor().encode()) } else { None };
    Ok(AttemptPage { data, next })
}

/// One of the partner's attempts with its request and answer.
#[tracing::instrument(skip_all, fields(partner = %partner, attempt = %id))]
pub async fn detail(db: &Db, partner: &PartnerId, id: &AttemptId) -> anyhow::Result<Option<AttemptDetail>> {
    let row = sqlx::query(&format!(
        "SELECT {SUMMARY_COLUMNS}, a.request_headers, a.request_body, a.response_body, w.url \
         FROM attempts a JOIN webhooks w ON w.id = a.webhook_id WHERE a.partner_id = $1 AND a.id = $2"
    ))
    .bind(partner.as_str())
    .bind(id.as_str())
    .fetch_optional(db.pool())
    .await
    .context("could not read the attempt")?;
    row.map(|row| {
        Ok(AttemptDetail {
            summary: summary(&row)?,
            webhook_url: row.try_get("url")?,
            request_headers: serde_json::from_str(&row.try_get::<String, _>("request_headers")?)
                .context("stored request headers are not a JSON list")?,
            request_body: row.try_get("request_body")?,
            response_body: row.try_get("response_body")?,
        })
    })
    .transpose()
}

/// One webhook's share of a batch of attempts.
pub(super) struct Tally<'a> {
    pub(super) webhook: &'a WebhookId,
    pub(super) partner: &'a PartnerId,
    pub(super) attempts: i64,
    pub(super) failures: i64,
    pub(super) any_success: bool,
    /// Failures since the batch's last success (all of them when none succeeded).
    pub(super) trailing: i64,
}

/// Each webhook's share of `attempts` (in order), in the order the webhooks first appear.
pub(super) fn tally<'a>(attempts: &[(&'a PartnerId, &'a WebhookId, bool)]) -> Vec<Tally<'a>> {
    let mut tallies: Vec<Tally<'a>> = Vec::new();
    for &(partner, webhook, success) in attempts {
        let tally = match tallies.iter().position(|t| t.webhook == webhook) {
            Some(at) => &mut tallies[at],
            None => {
                tallies.push(Tally { webhook, partner, attempts: 0, failures: 0, any_success: false, trailing: 0 });
                tallies.last_mut().expect("just pushed")
            }
        };
        tally.attempts += 1;
        if success {
            tally.any_success = true;
            tally.trailing = 0;
        } else {
            tally.failures += 1;
            tally.trailing += 1;
        }
    }
    tallies
}

/// Counts attempts (in order) in the running counters, inside the caller's transaction: one
/// upsert per webhook and minute, one update per webhook (its newest attempt, and the failures
/// in a row: those after the batch's last success, or added to the count when none succeeded).
pub async fn count_attempts(
    conn: &mut sqlx::AnyConnection,
    attempts: &[(&PartnerId, &WebhookId, bool)],
    at: i64,
) -> anyhow::Result<()> {
    let tallies = tally(attempts);
    // One upsert for the webhooks' minutes, then one update of the webhooks (a VALUES list
    // joined by id; both databases name its columns column1, column2, …), per batch of them.
    static MINUTES: BatchSql = BatchSql::new(|n| {
        format!(
            "INSERT INTO webhook_minutes (webhook_id, partner_id, minute, attempts, failures) VALUES {} \
             ON CONFLICT (webhook_id, minute) DO UPDATE SET attempts = webhook_minutes.attempts + excluded.attempts, \
             failures = webhook_minutes.failures + excluded.failures",
            value_rows(1, n, 5)
        )
    });
    static LATEST: BatchSql = BatchSql::new(|n| {
        format!(
            "UPDATE webhooks SET last_attempt_at = $1, last_attempt_ok = latest.column2, \
             failures_in_a_row = CASE WHEN latest.column3 = 1 THEN latest.column4 \
             ELSE failures_in_a_row + latest.column4 END \
             FROM (VALUES {}) AS latest WHERE webhooks.id = latest.column1",
            value_rows(2, n, 4)
        )
    });
    for batch in batches(&tallies) {
        let mut minutes = sqlx::query(MINUTES.get(batch.len()));
        for tally in batch {
            minutes = minutes
                .bind(tally.webhook.as_str())
                .bind(tally.partner.as_str())
                .bind(at / MINUTE_MS)
                .bind(tally.attempts)
                .bind(tally.failures);
        }
        minutes.execute(&mut *conn).await.context("could not count the attempts")?;
        let mut latest = sqlx::query(LATEST.get(batch.len())).bind(at);
        for tally in batch {
            // The newest attempt succeeded when no failure followed the batch's last success.
            latest = latest
                .bind(tally.webhook.as_str())
                .bind(i64::from(tally.trailing == 0))
                .bind(i64::from(tally.any_success))
                .bind(tally.trailing);
        }
        latest.execute(&mut *conn).await.context("could not note the last attempt")?;
    }
    Ok(())
}

/// The success rate (0 to 100) of each of the partner's webhooks that had attempts in the last
/// 24 hours, from the counters: at most 1,440 rows a webhook, whatever the log's size.
pub async fn success_rates(
    db: &Db,
    partner: &PartnerId,
    webhook: Option<&WebhookId>,
) -> anyhow::Result<HashMap<String, f64>> {
    let since = now_ms() / MINUTE_MS - WINDOW_MINUTES + 1;
    let mut sql = Sql::default();
    sql.push(
        "SELECT webhook_id, CAST(SUM(attempts) AS BIGINT) AS total, CAST(SUM(failures) AS BIGINT) AS failed \
         FROM webhook_minutes WHERE partner_id = ",
    )
    .text(partner.as_str());
    if let Some(webhook) = webhook {
        sql.push(" AND webhook_id = ").text(webhook.as_str());
    }
    sql.push(" AND minute >= ").int(since).push(" GROUP BY webhook_id");
    let rows = sql.fetch_all(db).await.context("could not read the success rates")?;
    let mut rates = HashMap::with_capacity(rows.len());
    for row in rows {
        let total: i64 = row.try_get("total")?;
        let failed: i64 = row.try_get("failed")?;
        if total > 0 {
            rates.insert(row.try_get("webhook_id")?, (total - failed) as f64 * 100.0 / total as f64);
        }
    }
    Ok(rates)
}

/// Attempts and failures per hour over the last 24 hours (the current hour last), for the chart.
pub async fn hourly(db: &Db, partner: &PartnerId, webhook: &WebhookId) -> anyhow::Result<Vec<HourBar>> {
    let now = from_ms(now_ms());
    let this_hour = now.duration_trunc(TimeDelta::hours(1)).unwrap_or(now);
    let first = this_hour - TimeDelta::hours(23);
    let rows = sqlx::query(
        "SELECT minute / 60 AS hour, CAST(SUM(attempts) AS BIGINT) AS total, CAST(SUM(failures) AS BIGINT) AS failed \
         FROM webhook_minutes WHERE partner_id = $1 AND webhook_id = $2 AND minute >= $3 GROUP BY minute / 60",
    )
    .bind(partner.as_str())
    .bind(webhook.as_str())
    .bind(first.timestamp_millis() / MINUTE_MS)
    .fetch_all(db.pool())
    .await
    .context("could not read the hourly counts")?;
    let mut by_hour = HashMap::new();
    for row in rows {
        by_hour.insert(row.try_get::<i64, _>("hour")?, (row.try_get::<i64, _>("total")?, row.try_get("failed")?));
    }
    Ok((0..24)
        .map(|i| {
            let hour = first + TimeDelta::hours(i);
            let (attempts, failures) =
                by_hour.get(&(hour.timestamp_millis() / MINUTE_MS / 60)).copied().unwrap_or((0, 0));
            HourBar { hour, attempts, failures }
        })
        .collect())
}

/// The webhook's newest replay and how far it got.
pub async fn latest_replay(db: &Db, partner: &PartnerId, webhook: &WebhookId) -> anyhow::Result<Option<ReplayView>> {
    replay_view(db, partner, webhook, None).await
}

/// The webhook's replay `id` (the newest one when `None`) with its progress.
pub async fn replay_view(
    db: &Db,
    partner: &PartnerId,
    webhook: &WebhookId,
    id: Option<&ReplayId>,
) -> anyhow::Result<Option<ReplayView>> {
    let sql = match id {
        None => {
            "SELECT id, since, total, created_at FROM replays WHERE partner_id = $1 AND webhook_id = $2 \
             ORDER BY created_at DESC, id DESC LIMIT 1"
        }
        Some(_) => {
            "SELECT id, since, total, created_at FROM replays WHERE partner_id = $1 AND webhook_id = $2 AND id = $3"
        }
    };
    let mut query = sqlx::query(sql).bind(partner.as_str()).bind(webhook.as_str());
    if let Some(id) = id {
        query = query.bind(id.as_str());
    }
    let row = query.fetch_optional(db.pool()).await.context("could not read the replay")?;
    let Some(row) = row else { return Ok(None) };
    let id: String = row.try_get("id")?;
    let (delivered, failed, waiting) = run_progress(db, "replay_id", &id).await?;
    Ok(Some(ReplayView {
        id: ReplayId::parse(&id)?,
        since: from_ms(row.try_get("since")?),
        total: row.try_get("total")?,
        delivered,
        failed,
        waiting,
        created_at: from_ms(row.try_get("created_at")?),
    }))
}

/// Deletes up to `batch` attempts made before `cutoff` (ms), and finished deliveries and
/// counters that nothing reads any more. Answers how many attempts went; call it again while
/// that equals `batch`. The counters are not touched by pruning attempts, so success rates and
/// badges stay right.
pub async fn prune(db: &Db, cutoff: i64, batch: i64) -> anyhow::Result<u64> {
    let attempts = sqlx::query(
        "DELETE FROM attempts WHERE id IN (SELECT id FROM attempts WHERE created_at < $1 ORDER BY created_at LIMIT $2)",
    )
    .bind(cutoff)
    .bind(batch)
    .execute(db.writer())
    .await
    .context("could not prune old attempts")?
    .rows_affected();
    sqlx::query(
        "DELETE FROM deliveries WHERE id IN (SELECT id FROM deliveries WHERE state IN ('succeeded', 'failed') \
         AND next_attempt_at < $1 LIMIT $2)",
    )
    .bind(cutoff)
    .bind(batch)
    .execute(db.writer())
    .await
    .context("could not prune finished deliveries")?;
    sqlx::query("DELETE FROM webhook_minutes WHERE minute < $1")
        .bind(now_ms() / MINUTE_MS - KEEP_COUNTERS_MINUTES)
        .execute(db.writer())
        .await
        .context("could not prune old counters")?;
    Ok(attempts)
}

/// Deletes up to `batch` of `partner`'s events older than `cutoff` (ms) that have no delivery
/// left (finished deliveries go with the log, [`prune`]; a pending or held one keeps its event,
/// so nothing still to be sent is lost); how many went. Per partner, so the search follows the
/// partner's time index.
pub async fn prune_events(db: &Db, partner: &str, cutoff: i64, batch: i64) -> anyhow::Result<u64> {
    let done = sqlx::query(
        "DELETE FROM events WHERE id IN (SELECT e.id FROM events e WHERE e.partner_id = $1 AND e.created_at < $2 \
         AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id) ORDER BY e.created_at LIMIT $3)",
    )
    .bind(partner)
    .bind(cutoff)
    .bind(batch)
    .execute(db.writer())
    .await
    .context("could not prune old events")?;
    Ok(done.rows_affected())
}

/// Every partner's id, for passes that go partner by partner.
pub async fn partner_ids(db: &Db) -> anyhow::Result<Vec<String>> {
    let rows = sqlx::query("SELECT id FROM partners ORDER BY id")
        .fetch_all(db.pool())
        .await
        .context("could not list the partners")?;
    rows.iter().map(|row| Ok(row.try_get("id")?)).collect()
}

/// A run's deliveries by state: `column` is `replay_id` or `recovery_id`, each with an index
/// that holds only the rows of some run.
fn run_progress_sql(column: &str) -> String {
    format!("SELECT state, COUNT(*) AS n FROM deliveries WHERE {column} = $1 GROUP BY state")
}

/// How far a run (a replay, a recovery) got: of the deliveries whose `column` is `id`, how many
/// were delivered, failed, and are still waiting.
pub(crate) async fn run_progress(db: &Db, column: &'static str, id: &str) -> anyhow::Result<(i64, i64, i64)> {
    let states = sqlx::query(&run_progress_sql(column))
        .bind(id)
        .fetch_all(db.pool())
        .await
        .context("could not read the run's progress")?;
    let (mut delivered, mut failed, mut waiting) = (0, 0, 0);
    for state in states {
        let n: i64 = state.try_get("n")?;
        match state.try_get::<String, _>("state")?.as_str() {
            "succeeded" => delivered += n,
            "failed" => failed += n,
            _ => waiting += n,
        }
    }
    Ok((delivered, failed, waiting))
}

#[cfg(test)]
mod run_tests {
    /// A run's progress is read off its own index (the indexes hold only the deliveries of some
    /// run, not the millions of others), on SQLite; PostgreSQL proves the same from `= $1`.
    #[tokio::test]
    async fn a_runs_progress_is_read_from_its_own_index() {
        use sqlx::Row;
        let (db, dir) = crate::store::test_database("run-index").await;
        for (column, index) in [("replay_id", "deliveries_replay"), ("recovery_id", "deliveries_recovery")] {
            let plan: Vec<String> = sqlx::query(&format!("EXPLAIN QUERY PLAN {}", super::run_progress_sql(column)))
                .bind("x")
                .fetch_all(db.pool())
                .await
                .unwrap_or_else(|e| panic!("{column}: {e}"))
                .iter()
                .map(|step| step.try_get::<String, _>("detail").unwrap())
                .collect();
            assert!(plan.iter().any(|step| step.contains(index)), "{column}: {plan:?}");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}
