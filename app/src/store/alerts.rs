//! Alerts: the dispatcher switched a webhook off. Each is written in the same transaction as
//! the deactivation, shown to the partner's users as a banner until dismissed or the webhook is
//! active again, and sent out by the notifier (email, the operator's alert webhook), each
//! channel retried until it goes through.

use anyhow::Context;
use sqlx::Row;

use super::{BatchSql, Db, batches, from_ms, now_ms, value_rows};
use crate::domain::{AlertId, AlertView, Environment, PartnerId, WebhookId};

/// Records that each webhook was just switched off, for its reason (inside the deactivations'
/// transaction): one insert per batch of them.
pub async fn record(conn: &mut sqlx::AnyConnection, switched_off: &[(&str, &str)], now: i64) -> anyhow::Result<()> {
    // $1 now, then each alert's id, webhook and reason; the webhook gives its partner and URL.
    static INSERT: BatchSql = BatchSql::new(|n| {
        format!(
            "INSERT INTO alerts (id, partner_id, webhook_id, url, reason, created_at, next_try_at) \
             SELECT off.column1, w.partner_id, w.id, w.url, off.column3, $1, $1 \
             FROM (VALUES {}) AS off JOIN webhooks w ON w.id = off.column2",
            value_rows(2, n, 3)
        )
    });
    for batch in batches(switched_off) {
        let mut insert = sqlx::query(INSERT.get(batch.len())).bind(now);
        for (webhook, reason) in batch {
            insert = insert.bind(AlertId::generate().as_str().to_owned()).bind(*webhook).bind(*reason);
        }
        insert.execute(&mut *conn).await.context("could not record the alerts")?;
    }
    Ok(())
}

/// The partner's alerts still to show: not dismissed, and their webhook still exists and is
/// still off. Newest first.
pub async fn open(db: &Db, partner: &PartnerId) -> anyhow::Result<Vec<AlertView>> {
    let rows = sqlx::query(
        "SELECT a.id, a.webhook_id, a.url, a.reason, a.created_at FROM alerts a \
         JOIN webhooks w ON w.id = a.webhook_id AND w.partner_id = a.partner_id \
         WHERE a.partner_id = $1 AND a.dismissed_at IS NULL AND w.active = 0 \
         ORDER BY a.created_at DESC, a.id DESC LIMIT 20",
    )
    .bind(partner.as_str())
    .fetch_all(db.pool())
    .await
    .context("could not load the alerts")?;
    rows.iter()
        .map(|row| {
            Ok(AlertView {
                id: AlertId::parse(&row.try_get::<String, _>("id")?)?,
                webhook_id: WebhookId::parse(&row.try_get::<String, _>("webhook_id")?)?,
                url: row.try_get("url")?,
                reason: row.try_get("reason")?,
                deactivated_at: from_ms(row.try_get("created_at")?),
            })
        })
        .collect()
}

/// Hides an alert's banner for the partner's users; `false` when the partner has no such alert.
pub async fn dismiss(db: &Db, partner: &PartnerId, alert: &AlertId) -> anyhow::Result<bool> {
    let done =
        sqlx::query("UPDATE alerts SET dismissed_at = COALESCE(dismissed_at, $1) WHERE id = $2 AND partner_id = $3")
            .bind(now_ms())
            .bind(alert.as_str())
            .bind(partner.as_str())
            .execute(db.writer())
            .await
            .context("could not dismiss the alert")?;
    Ok(done.rows_affected() > 0)
}

/// How far a channel has got with an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// Still to send.
    Pending,
    /// Sent.
    Sent,
    /// Not configured when the notifier reached it.
    Off,
}

impl Channel {
    fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sent => "sent",
            Self::Off => "off",
        }
    }

    fn from_stored(text: &str) -> Self {
        match text {
            "sent" => Self::Sent,
            "off" => Self::Off,
            _ => Self::Pending,
        }
    }
}

/// An alert the notifier holds a lease on.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// The alert.
    pub id: AlertId,
    /// Whose webhook: the account (the partner id the operator knows).
    pub partner: PartnerId,
    /// In which of its environments.
    pub environment: Environment,
    /// The partner's name, for the email.
    pub partner_name: String,
    /// The webhook.
    pub webhook: WebhookId,
    /// Its URL.
    pub url: String,
    /// Why it was switched off.
    pub reason: String,
    /// When (ms).
    pub created_at: i64,
    /// The email's progress.
    pub email: Channel,
    /// The operator webhook's progress.
    pub hook: Channel,
    /// Tries so far.
    pub tries: i64,
    /// Who to email: the partner's users.
    pub recipients: Vec<String>,
}

/// Leases up to `limit` alerts with a channel still pending and due, for `lease_ms`.
pub async fn claim(db: &Db, limit: i64, lease_ms: i64) -> anyhow::Result<Vec<Outgoing>> {
    let now = now_ms();
    let rows = sqlx::query(
        "UPDATE alerts SET locked_until = $1 WHERE id IN ( \
           SELECT id FROM alerts WHERE (email_state = 'pending' OR hook_state = 'pending') \
           AND next_try_at <= $2 AND (locked_until IS NULL OR locked_until < $2) \
           ORDER BY next_try_at LIMIT $3) \
         AND (locked_until IS NULL OR locked_until < $2) \
         RETURNING id, partner_id, webhook_id, url, reason, created_at, email_state, hook_state, tries",
    )
    .bind(now + lease_ms)
    .bind(now)
    .bind(limit)
    .fetch_all(db.writer())
    .await
    .context("could not claim alerts")?;
    let mut claimed = Vec::with_capacity(rows.len());
    for row in rows {
        let row_partner = row.try_get::<String, _>("partner_id")?;
        // A sandbox's alerts go to its account's users, and name the account and the environment.
        let people = sqlx::query(
            "SELECT p.name, p.environment, COALESCE(p.production_id, p.id) AS account, u.email \
             FROM partners p LEFT JOIN users u ON u.partner_id = COALESCE(p.production_id, p.id) \
             WHERE p.id = $1 ORDER BY u.created_at",
        )
        .bind(&row_partner)
        .fetch_all(db.pool())
        .await
        .context("could not load the partner's users")?;
        let first = people.first().context("the alert's partner is gone")?;
        let partner = PartnerId::parse(&first.try_get::<String, _>("account")?)?;
        let partner_name: String = first.try_get("name")?;
        let environment = Environment::parse(&first.try_get::<String, _>("environment")?).unwrap_or_default();
        let recipients =
            people.iter().map(|r| r.try_get::<Option<String>, _>("email")).collect::<Result<Vec<_>, _>>()?;
        claimed.push(Outgoing {
            id: AlertId::parse(&row.try_get::<String, _>("id")?)?,
            partner,
            environment,
            partner_name,
            webhook: WebhookId::parse(&row.try_get::<String, _>("webhook_id")?)?,
            url: row.try_get("url")?,
            reason: row.try_get("reason")?,
            created_at: row.try_get("created_at")?,
            email: Channel::from_stored(&row.try_get::<String, _>("email_state")?),
            hook: Channel::from_stored(&row.try_get::<String, _>("hook_state")?),
            tries: row.try_get("tries")?,
            recipients: recipients.into_iter().flatten().collect(),
        });
    }
    Ok(claimed)
}

/// Stores how far the channels got; with one still pending, the next try is at `retry_at`
/// and `error` says what went wrong.
pub async fn finish_try(
    db: &Db,
    alert: &AlertId,
    email: Channel,
    hook: Channel,
    error: Option<&str>,
    retry_at: i64,
) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE alerts SET email_state = $1, hook_state = $2, tries = tries + 1, last_error = $3, \
         next_try_at = $4, locked_until = NULL WHERE id = $5",
    )
    .bind(email.as_str())
    .bind(hook.as_str())
    .bind(error)
    .bind(retry_at)
    .bind(alert.as_str())
    .execute(db.writer())
    .await
    .context("could not store the alert's progress")?;
    Ok(())
}
