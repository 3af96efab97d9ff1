//! Event search, read: a partner's events newest first (keyset pages, never OFFSET), found by
//! id or by the `verificationId` / `sessionId` indexed when the event was stored; one event with
//! its deliveries and their attempts. And the filling in of search values for events stored
//! before search existed.

use std::collections::HashMap;

use anyhow::Context;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::log::{SUMMARY_COLUMNS, summary};
use super::sql::Sql;
use super::{Db, from_ms};
use crate::domain::{
    AttemptSummary, DeliveryId, EVENT_ATTEMPTS, EVENT_DELIVERIES, EVENT_PAGE, EventCursor, EventDelivery, EventDetail,
    EventId, EventPage, EventSearch, EventSummary, PartnerId, WebhookId, search_values,
};

const COLUMNS: &str = "e.id, e.type, e.status, e.created_at, e.verification_id, e.session_id";

fn event_summary(row: &AnyRow) -> anyhow::Result<EventSummary> {
    Ok(EventSummary {
        id: EventId::from_trusted(row.try_get("id")?),
        event_type: row.try_get("type")?,
        status: row.try_get("status")?,
        created_at: from_ms(row.try_get("created_at")?),
        verification_id: row.try_get("verification_id")?,
        session_id: row.try_get("session_id")?,
    })
}

/// A page of `partner`'s events that match `search`, newest first. A search text is looked up
/// as an id, a `verificationId` and a `sessionId`, each on its own index; the rest filter what
/// those find, or walk the index on (partner, type, time) / (partner, time): the cost of a page
/// does not grow with the number of events.
#[tracing::instrument(skip_all, fields(partner = %partner))]
pub async fn page(db: &Db, partner: &PartnerId, search: &EventSearch) -> anyhow::Result<EventPage> {
    let mut sql = Sql::default();
    sql.push(&format!("SELECT {COLUMNS} FROM events e WHERE e.partner_id = ")).text(partner.as_str());
    if let Some(text) = &search.search {
        sql.push(" AND e.id IN (SELECT id FROM events WHERE id = ").text(text);
        sql.push(" AND partner_id = ").text(partner.as_str());
        sql.push(" UNION SELECT id FROM events WHERE partner_id = ").text(partner.as_str());
        sql.push(" AND verification_id = ").text(text);
        sql.push(" UNION SELECT id FROM events WHERE partner_id = ").text(partner.as_str());
        sql.push(" AND session_id = ").text(text).push(")");
    }
    if let Some(event_type) = search.event_type {
        sql.push(" AND e.type = ").text(event_type.as_str());
    }
    if let Some(since) = search.since {
        sql.push(" AND e.created_at >= ").int(since);
    }
    if let Some(until) = search.until {
        sql.push(" AND e.created_at < ").int(until);
    }
    if let Some(cursor) = &search.cursor {
        // The first bound lets the index seek straight to the cursor; the second breaks ties.
        sql.push(" AND e.created_at <= ").int(cursor.at);
        sql.push(" AND (e.created_at < ").int(cursor.at);
        sql.push(" OR (e.created_at = ").int(cursor.at).push(" AND e.id < ").text(&cursor.id).push("))");
    }
    sql.push(" ORDER BY e.created_at DESC, e.id DESC LIMIT ").int(EVENT_PAGE as i64 + 1);
    let rows = sql.fetch_all(db).await.context("could not search the events")?;
    let mut data = rows.iter().map(event_summary).collect::<anyhow::Result<Vec<_>>>()?;
    let more = data.len() > EVENT_PAGE;
    data.truncate(EVENT_PAGE);
    let next = if more {
        data.last().map(|last| EventCursor { at: last.created_at.timestamp_millis(), id: last.id.to_string() }.encode())
    } else {
        None
    };
    Ok(EventPage { data, next })
}

/// One of `partner`'s events with its data and its newest [`EVENT_DELIVERIES`] deliveries, each
/// with its attempts oldest first (of the event's newest [`EVENT_ATTEMPTS`]); `None` when the
/// partner has no such event.
#[tracing::instrument(skip_all, fields(partner = %partner))]
pub async fn detail(db: &Db, partner: &PartnerId, id: &str) -> anyhow::Result<Option<EventDetail>> {
    let Some(row) =
        sqlx::query(&format!("SELECT {COLUMNS}, e.data FROM events e WHERE e.id = $1 AND e.partner_id = $2"))
            .bind(id)
            .bind(partner.as_str())
            .fetch_optional(db.pool())
            .await
            .context("could not read the event")?
    else {
        return Ok(None);
    };
    let event = event_summary(&row)?;
    let data = serde_json::from_str(&row.try_get::<String, _>("data")?).context("a stored event's data is not JSON")?;
    // Bounded, however often the event was resent: the newest deliveries and attempts (the
    // log has the rest).
    let mut deliveries = sqlx::query(
        "SELECT d.id, d.webhook_id, d.state, d.created_at, w.url FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id \
         WHERE d.event_id = $1 AND d.partner_id = $2 ORDER BY d.created_at DESC, d.id DESC LIMIT $3",
    )
    .bind(id)
    .bind(partner.as_str())
    .bind(EVENT_DELIVERIES as i64)
    .fetch_all(db.pool())
    .await
    .context("could not read the event's deliveries")?;
    deliveries.reverse();
    let attempts = sqlx::query(&format!(
        "SELECT {SUMMARY_COLUMNS} FROM attempts a WHERE a.event_id = $1 AND a.partner_id = $2 AND a.test = 0 \
         ORDER BY a.created_at DESC, a.id DESC LIMIT $3"
    ))
    .bind(id)
    .bind(partner.as_str())
    .bind(EVENT_ATTEMPTS as i64)
    .fetch_all(db.pool())
    .await
    .context("could not read the event's attempts")?;
    let mut by_delivery: HashMap<DeliveryId, Vec<AttemptSummary>> = HashMap::new();
    for row in attempts.iter().rev() {
        let attempt = summary(row)?;
        if let Some(delivery) = attempt.delivery_id.clone() {
            by_delivery.entry(delivery).or_default().push(attempt);
        }
    }
    let deliveries = deliveries
        .iter()
        .map(|row| {
            let id = DeliveryId::parse(&row.try_get::<String, _>("id")?)?;
            Ok(EventDelivery {
                attempts: by_delivery.remove(&id).unwrap_or_default(),
                id,
                webhook_id: WebhookId::parse(&row.try_get::<String, _>("webhook_id")?)?,
                webhook_url: row.try_get("url")?,
                state: row.try_get("state")?,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Some(EventDetail { event, data, deliveries }))
}

/// Fills in the search values of up to `limit` events stored before event search; answers how
/// many it did (fewer than `limit`: none are left).
#[tracing::instrument(skip_all)]
pub async fn key_old_events(db: &Db, limit: i64) -> anyhow::Result<usize> {
    let rows = sqlx::query("SELECT id, data FROM events WHERE unkeyed = 1 LIMIT $1")
        .bind(limit)
        .fetch_all(db.pool())
        .await
        .context("could not read events to index")?;
    if rows.is_empty() {
        return Ok(0);
    }
    let mut tx = db.begin_write().await?;
    for row in &rows {
        let data: serde_json::Value =
            serde_json::from_str(&row.try_get::<String, _>("data")?).unwrap_or(serde_json::Value::Null);
        let (verification, session) = search_values(&data);
        sqlx::query("UPDATE events SET verification_id = $1, session_id = $2, unkeyed = NULL WHERE id = $3")
            .bind(verification)
            .bind(session)
            .bind(row.try_get::<String, _>("id")?)
            .execute(&mut *tx)
            .await
            .context("could not index an event")?;
    }
    tx.commit().await.context("could not commit the indexed events")?;
    Ok(rows.len())
}
