//! A partner's webhooks. Every function takes the partner first and filters on it, so another
//! partner's webhook reads exactly like a missing one.

use anyhow::Context;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{BatchSql, Db, batches, flag, from_ms, get_flag, log, now_ms, placeholders};
use crate::crypto::SecretBox;
use crate::domain::{
    AuthHeader, DeliveryStats, DeliveryTarget, EventFilter, PartnerId, PayloadTemplate, SigningSecret, WebhookId,
    WebhookInput, WebhookSettings, WebhookUrl, WebhookView,
};

/// How long a rotated-out signing secret still signs deliveries, so receivers can switch over.
pub const PREVIOUS_SECRET_GRACE_MS: i64 = 24 * 3600 * 1000;

const COLUMNS: &str = "id, partner_id, url, active, deactivated_at, deactivated_reason, event_types, \
    auth_header_name, auth_header_value, payload_template, signing_secret, previous_secret, \
    previous_secret_expires_at, created_at, updated_at, last_attempt_at, last_attempt_ok, failures_in_a_row, \
    last_deactivated_at, rate_limit, max_concurrent_requests";

/// A webhook row with its secrets: for the server's own use (delivery, signing), never sent.
#[derive(Debug, Clone)]
pub struct WebhookRecord {
    /// What sending needs (its id, partner, settings and secrets; read through this record
    /// as if they were its own fields).
    pub target: DeliveryTarget,
    /// When it was switched off, if it is.
    pub deactivated_at: Option<i64>,
    /// Why the dispatcher switched it off, when it did.
    pub deactivated_reason: Option<String>,
    /// Creation time (ms).
    pub created_at: i64,
    /// Last change (ms).
    pub updated_at: i64,
    /// Newest non-test attempt: time (ms) and whether it succeeded (a running counter).
    pub last_attempt: Option<(i64, bool)>,
    /// Failed non-test attempts since the last success (a running counter).
    pub failures_in_a_row: i64,
    /// When it was last switched off, kept after reactivation (ms).
    pub last_deactivated_at: Option<i64>,
    /// Until when the rotated-out secret still signs (ms), while it does.
    pub previous_secret_until: Option<i64>,
}

impl std::ops::Deref for WebhookRecord {
    type Target = DeliveryTarget;

    fn deref(&self) -> &DeliveryTarget {
        &self.target
    }
}

/// What a sealed value of a webhook is bound to (the AEAD's associated data): the webhook and
/// the kind of secret. The current and the previous signing secret share a kind, since
/// rotation moves one into the other's column.
fn place(webhook: &str, kind: SecretKind) -> String {
    let kind = match kind {
        SecretKind::Signing => "signing-secret",
        SecretKind::AuthHeader => "auth-header",
    };
    format!("webhooks/{webhook}/{kind}")
}

/// The kinds of secret a webhook keeps sealed.
#[derive(Clone, Copy)]
enum SecretKind {
    Signing,
    AuthHeader,
}

impl WebhookRecord {
    /// The row with its secrets opened by `secrets`.
    fn from_row(row: &AnyRow, secrets: &SecretBox) -> anyhow::Result<Self> {
        let id: String = row.try_get("id")?;
        let open = |value: &str, kind| secrets.open(value, &place(&id, kind));
        let event_filter = event_filter_of(row.try_get("event_types")?)?;
        let auth_header = match (
            row.try_get::<Option<String>, _>("auth_header_name")?,
            row.try_get::<Option<String>, _>("auth_header_value")?,
        ) {
            (Some(name), Some(value)) => Some(AuthHeader::from_trusted(name, open(&value, SecretKind::AuthHeader)?)),
            _ => None,
        };
        let now = now_ms();
        let (previous_secret, previous_secret_until) = match (
            row.try_get::<Option<String>, _>("previous_secret")?,
            row.try_get::<Option<i64>, _>("previous_secret_expires_at")?,
        ) {
            (Some(secret), Some(expires)) if expires > now => {
                (Some(SigningSecret::from_trusted(open(&secret, SecretKind::Signing)?)), Some(expires))
            }
            _ => (None, None),
        };
        let target = DeliveryTarget {
            id: WebhookId::parse(&id)?,
            partner_id: PartnerId::parse(&row.try_get::<String, _>("partner_id")?)?,
            settings: WebhookSettings {
                url: WebhookUrl::from_trusted(row.try_get("url")?),
                active: get_flag(row, "active")?,
                auth_header,
                event_filter,
                payload_template: row
                    .try_get::<Option<String>, _>("payload_template")?
                    .map(PayloadTemplate::from_trusted),
                rate_limit: row.try_get::<Option<i64>, _>("rate_limit")?.and_then(|n| u32::try_from(n).ok()),
                max_concurrent_requests: row
                    .try_get::<Option<i64>, _>("max_concurrent_requests")?
                    .and_then(|n| u32::try_from(n).ok()),
            },
            signing_secret: SigningSecret::from_trusted(open(
                &row.try_get::<String, _>("signing_secret")?,
                SecretKind::Signing,
            )?),
            previous_secret,
        };
        Ok(Self {
            target,
            deactivated_at: row.try_get("deactivated_at")?,
            deactivated_reason: row.try_get("deactivated_reason")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
            last_attempt: match (
                row.try_get::<Option<i64>, _>("last_attempt_at")?,
                row.try_get::<Option<i64>, _>("last_attempt_ok")?,
            ) {
                (Some(at), Some(ok)) => Some((at, ok != 0)),
                _ => None,
            },
            failures_in_a_row: row.try_get("failures_in_a_row")?,
            last_deactivated_at: row.try_get("last_deactivated_at")?,
            previous_secret_until,
        })
    }

    /// The settings as a form or a PATCH starts from: the auth value left empty, which keeps it.
    pub fn to_input(&self) -> WebhookInput {
        let s = &self.settings;
        WebhookInput {
            url: s.url.to_string(),
            active: s.active,
            auth_header_name: s.auth_header.as_ref().map(|h| h.name().to_owned()).unwrap_or_default(),
            auth_header_value: String::new(),
            event_types: s.event_filter.names(),
            payload_template: s.payload_template.as_ref().map(|t| t.as_str().to_owned()).unwrap_or_default(),
            rate_limit: s.rate_limit.map(|n| n.to_string()).unwrap_or_default(),
            max_concurrent_requests: s.max_concurrent_requests.map(|n| n.to_string()).unwrap_or_default(),
        }
    }
}

/// The webhook as it may be shown, with its 24-hour success rate (from [`log::success_rates`]).
fn view(record: &WebhookRecord, success_rate: Option<f64>) -> WebhookView {
    let stats =
        DeliveryStats { last_attempt: record.last_attempt, success_rate, failures_in_a_row: record.failures_in_a_row };
    let s = &record.settings;
    WebhookView {
        id: record.id.clone(),
        url: s.url.to_string(),
        active: s.active,
        deactivated_reason: record.deactivated_reason.clone(),
        deactivated_at: record.deactivated_at.map(from_ms),
        event_types: s.event_filter.names(),
        auth_header: s.auth_header.as_ref().map(AuthHeader::masked),
        payload_template: s.payload_template.as_ref().map(|t| t.as_str().to_owned()),
        created_at: from_ms(record.created_at),
        updated_at: from_ms(record.updated_at),
        last_delivery_at: stats.last_attempt.map(|(at, _)| from_ms(at)),
        last_delivery_ok: stats.last_attempt.map(|(_, ok)| ok),
        success_rate: stats.success_rate,
        failures_in_a_row: stats.failures_in_a_row,
        rate_limit: s.rate_limit,
        max_concurrent_requests: s.max_concurrent_requests,
        health: stats.health(s.active, record.deactivated_reason.is_some()),
        old_secret_signs_until: record.previous_secret_until.map(from_ms),
    }
}

/// One webhook's view: its record and one read of its counters.
async fn view_one(db: &Db, record: &WebhookRecord) -> anyhow::Result<WebhookView> {
    let rates = log::success_rates(db, &record.partner_id, Some(&record.id)).await?;
    Ok(view(record, rates.get(record.id.as_str()).copied()))
}

/// The `event_types` column of `filter`: `NULL` for all types, else a JSON list of names.
fn event_types_column(filter: &EventFilter) -> Option<String> {
    filter.names().map(|names| serde_json::to_string(&names).expect("a list of strings serializes"))
}

/// The filter an `event_types` column holds (see [`event_types_column`]); the one place it is
/// read. A value that is not a list of known types is an error, never "all types".
pub(super) fn event_filter_of(column: Option<String>) -> anyhow::Result<EventFilter> {
    match column {
        None => Ok(EventFilter::All),
        Some(json) => {
            let names: Vec<String> = serde_json::from_str(&json).context("event_types is not a JSON array")?;
            EventFilter::parse(Some(&names)).map_err(|e| anyhow::anyhow!("stored {e}"))
        }
    }
}

/// Creates a webhook with a fresh signing secret; answers it with the secret, shown this once,
/// or `None` when the partner already has `limit` webhooks.
#[tracing::instrument(skip_all, fields(partner = %partner))]
pub async fn create(
    db: &Db,
    partner: &PartnerId,
    settings: &WebhookSettings,
    limit: u32,
) -> anyhow::Result<Option<(WebhookView, SigningSecret)>> {
    let id = WebhookId::generate();
    let secret = SigningSecret::generate();
    let now = now_ms();
    let mut tx = db.begin_write().await?;
    if !super::quotas::has_room(&mut tx, db.backend(), partner, crate::domain::Counted::Webhooks, limit).await? {
        return Ok(None);
    }
    let row = sqlx::query(&format!(
        "INSERT INTO webhooks (id, partner_id, url, active, deactivated_at, event_types, auth_header_name, \
         auth_header_value, payload_template, signing_secret, created_at, updated_at, rate_limit, \
         max_concurrent_requests) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12, $13) RETURNING {COLUMNS}"
    ))
    .bind(id.as_str())
    .bind(partner.as_str())
    .bind(settings.url.as_str())
    .bind(flag(settings.active))
    .bind((!settings.active).then_some(now))
    .bind(event_types_column(&settings.event_filter))
    .bind(settings.auth_header.as_ref().map(|h| h.name().to_owned()))
    .bind(
        settings
            .auth_header
            .as_ref()
            .map(|h| db.secrets().seal(h.expose_value(), &place(id.as_str(), SecretKind::AuthHeader))),
    )
    .bind(settings.payload_template.as_ref().map(|t| t.as_str().to_owned()))
    .bind(db.secrets().seal(secret.expose(), &place(id.as_str(), SecretKind::Signing)))
    .bind(now)
    .bind(settings.rate_limit.map(i64::from))
    .bind(settings.max_concurrent_requests.map(i64::from))
    .fetch_one(&mut *tx)
    .await
    .context("could not store the webhook")?;
    tx.commit().await.context("could not commit the webhook")?;
    let record = WebhookRecord::from_row(&row, db.secrets())?;
    Ok(Some((view(&record, None), secret)))
}

/// The partner's webhooks, newest first.
#[tracing::instrument(skip_all, fields(partner = %partner))]
pub async fn list(db: &Db, partner: &PartnerId) -> anyhow::Result<Vec<WebhookView>> {
    let rows =
        sqlx::query(&format!("SELECT {COLUMNS} FROM webhooks WHERE partner_id = $1 ORDER BY created_at DESC, id DESC"))
            .bind(partner.as_str())
            .fetch_all(db.pool())
            .await
            .context("could not list webhooks")?;
    let rates = log::success_rates(db, partner, None).await?;
    rows.iter()
        .map(|row| {
            let record = WebhookRecord::from_row(row, db.secrets())?;
            Ok(view(&record, rates.get(record.id.as_str()).copied()))
        })
        .collect()
}

/// One of the partner's webhooks, with its secrets.
#[tracing::instrument(skip_all, fields(partner = %partner, webhook = %id))]
pub async fn record(db: &Db, partner: &PartnerId, id: &WebhookId) -> anyhow::Result<Option<WebhookRecord>> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM webhooks WHERE partner_id = $1 AND id = $2"))
        .bind(partner.as_str())
        .bind(id.as_str())
        .fetch_optional(db.pool())
        .await
        .context("could not load the webhook")?;
    row.as_ref().map(|row| WebhookRecord::from_row(row, db.secrets())).transpose()
}

/// The partner's webhooks (at most `limit`, oldest first) whose URL is exactly `url`, with
/// their secrets: those a request inspector's captures are checked against.
pub async fn records_by_url(db: &Db, partner: &PartnerId, url: &str, limit: u32) -> anyhow::Result<Vec<WebhookRecord>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM webhooks WHERE partner_id = $1 AND url = $2 ORDER BY created_at, id LIMIT $3"
    ))
    .bind(partner.as_str())
    .bind(url)
    .bind(i64::from(limit))
    .fetch_all(db.pool())
    .await
    .context("could not load the webhooks of a URL")?;
    rows.iter().map(|row| WebhookRecord::from_row(row, db.secrets())).collect()
}

/// One of the partner's webhooks, as it may be shown.
pub async fn get(db: &Db, partner: &PartnerId, id: &WebhookId) -> anyhow::Result<Option<WebhookView>> {
    match record(db, partner, id).await? {
        Some(record) => Ok(Some(view_one(db, &record).await?)),
        None => Ok(None),
    }
}

/// Replaces a webhook's settings. Switching it on clears the deactivation and releases its
/// held deliveries; switching it off notes the time (the reason stays empty: the partner did it)
/// and holds its waiting deliveries. Nothing waiting is ever dropped.
#[tracing::instrument(skip_all, fields(partner = %partner, webhook = %id))]
pub async fn update(
    db: &Db,
    partner: &PartnerId,
    id: &WebhookId,
    settings: &WebhookSettings,
) -> anyhow::Result<Option<WebhookView>> {
    let now = now_ms();
    let mut tx = db.begin_write().await?;
    let was_active = sqlx::query("SELECT active FROM webhooks WHERE partner_id = $1 AND id = $2")
        .bind(partner.as_str())
        .bind(id.as_str())
        .fetch_optional(&mut *tx)
        .await
        .context("could not load the webhook")?;
    let Some(was_active) = was_active else { return Ok(None) };
    let was_active = get_flag(&was_active, "active")?;
    let row = sqlx::query(&format!(
        "UPDATE webhooks SET url = $1, event_types = $2, auth_header_name = $3, auth_header_value = $4, \
         payload_template = $5, updated_at = $6, \
         deactivated_at = CASE WHEN $7 = 1 THEN NULL WHEN active = 1 THEN $6 ELSE deactivated_at END, \
         last_deactivated_at = CASE WHEN $7 = 0 AND active = 1 THEN $6 ELSE last_deactivated_at END, \
         deactivated_reason = CASE WHEN $7 = 1 THEN NULL ELSE deactivated_reason END, \
         active = $7, rate_limit = $10, max_concurrent_requests = $11 \
         WHERE partner_id = $8 AND id = $9 RETURNING {COLUMNS}"
    ))
    .bind(settings.url.as_str())
    .bind(event_types_column(&settings.event_filter))
    .bind(settings.auth_header.as_ref().map(|h| h.name().to_owned()))
    .bind(
        settings
            .auth_header
            .as_ref()
            .map(|h| db.secrets().seal(h.expose_value(), &place(id.as_str(), SecretKind::AuthHeader))),
    )
    .bind(settings.payload_template.as_ref().map(|t| t.as_str().to_owned()))
    .bind(now)
    .bind(flag(settings.active))
    .bind(partner.as_str())
    .bind(id.as_str())
    .bind(settings.rate_limit.map(i64::from))
    .bind(settings.max_concurrent_requests.map(i64::from))
    .fetch_one(&mut *tx)
    .await
    .context("could not update the webhook")?;
    match (was_active, settings.active) {
        (false, true) if super::queue::release_held(&mut tx, id, now).await? > 0 => {
            db.announce_work(&mut tx).await?;
        }
        (true, false) => super::queue::hold_waiting(&mut tx, &[id.as_str()], now).await?,
        _ => {}
    }
    tx.commit().await.context("could not commit the webhook")?;
    Ok(Some(view_one(db, &WebhookRecord::from_row(&row, db.secrets())?).await?))
}

/// Switches a webhook on or off, keeping its other settings.
#[tracing::instrument(skip_all, fields(partner = %partner, webhook = %id, active))]
pub async fn set_active(
    db: &Db,
    partner: &PartnerId,
    id: &WebhookId,
    active: bool,
) -> anyhow::Result<Option<WebhookView>> {
    let Some(record) = record(db, partner, id).await? else { return Ok(None) };
    let settings = WebhookSettings { active, ..record.settings.clone() };
    update(db, partner, id, &settings).await
}

/// Deletes a webhook with its deliveries and log. `false` when the partner has no such webhook.
#[tracing::instrument(skip_all, fields(partner = %partner, webhook = %id))]
pub async fn delete(db: &Db, partner: &PartnerId, id: &WebhookId) -> anyhow::Result<bool> {
    let done = sqlx::query("DELETE FROM webhooks WHERE partner_id = $1 AND id = $2")
        .bind(partner.as_str())
        .bind(id.as_str())
        .execute(db.writer())
        .await
        .context("could not delete the webhook")?;
    Ok(done.rows_affected() > 0)
}

/// Gives a webhook a new signing secret; the old one keeps signing for 24 hours beside it.
/// Rotated again while an overlap is in force, the secret that was rotated out first stays the
/// old one, until its own time: receivers still on it keep working, and the secret in between
/// (which never signed `x-webhook-signature`) is dropped. The new secret and when the old one
/// stops signing (ms).
#[tracing::instrument(skip_all, fields(partner = %partner, webhook = %id))]
pub async fn rotate_secret(
    db: &Db,
    partner: &PartnerId,
    id: &WebhookId,
) -> anyhow::Result<Option<(SigningSecret, i64)>> {
    let secret = SigningSecret::generate();
    let now = now_ms();
    let until = sqlx::query(
        "UPDATE webhooks SET \
           previous_secret = CASE WHEN previous_secret_expires_at > $1 THEN previous_secret ELSE signing_secret END, \
           previous_secret_expires_at = CASE WHEN previous_secret_expires_at > $1 THEN previous_secret_expires_at \
             ELSE $2 END, \
           signing_secret = $3, updated_at = $1 WHERE partner_id = $4 AND id = $5 \
         RETURNING previous_secret_expires_at",
    )
    .bind(now)
    .bind(now + PREVIOUS_SECRET_GRACE_MS)
    .bind(db.secrets().seal(secret.expose(), &place(id.as_str(), SecretKind::Signing)))
    .bind(partner.as_str())
    .bind(id.as_str())
    .fetch_optional(db.writer())
    .await
    .context("could not rotate the signing secret")?;
    Ok(until.map(|row| row.try_get::<i64, _>("previous_secret_expires_at")).transpose()?.map(|until| (secret, until)))
}

/// Ends a rotation's overlap now (after the old secret leaked, say): only the current secret
/// signs from here on. Whether the partner has the webhook.
#[tracing::instrument(skip_all, fields(partner = %partner, webhook = %id))]
pub async fn end_secret_overlap(db: &Db, partner: &PartnerId, id: &WebhookId) -> anyhow::Result<bool> {
    let done = sqlx::query(
        "UPDATE webhooks SET previous_secret = NULL, previous_secret_expires_at = NULL, updated_at = $1 \
         WHERE partner_id = $2 AND id = $3",
    )
    .bind(now_ms())
    .bind(partner.as_str())
    .bind(id.as_str())
    .execute(db.writer())
    .await
    .context("could not end the secret's overlap")?;
    Ok(done.rows_affected() > 0)
}

/// Takes the webhook's next send slot under its rate limit of `per_second`: `Ok(())` when this
/// send may go now (the next slot moves one interval on), `Err(at)` with the time (ms) the next
/// slot opens. One statement, so dispatchers in several processes share the limit.
pub async fn take_send_slot(db: &Db, id: &WebhookId, per_second: u32) -> anyhow::Result<Result<(), i64>> {
    let now = now_ms();
    let interval = (1000 / i64::from(per_second.max(1))).max(1);
    let taken = sqlx::query(
        "UPDATE webhooks SET rate_next_at = $1 WHERE id = $2 AND (rate_next_at IS NULL OR rate_next_at <= $3)",
    )
    .bind(now + interval)
    .bind(id.as_str())
    .bind(now)
    .execute(db.writer())
    .await
    .context("could not take a send slot")?
    .rows_affected();
    if taken > 0 {
        return Ok(Ok(()));
    }
    let next: Option<i64> = sqlx::query("SELECT rate_next_at FROM webhooks WHERE id = $1")
        .bind(id.as_str())
        .fetch_optional(db.pool())
        .await
        .context("could not read the send slot")?
        .map(|row| row.try_get::<Option<i64>, _>("rate_next_at"))
        .transpose()?
        .flatten();
    Ok(Err(next.unwrap_or(now + interval)))
}

/// Seals again, bound to their webhook, every secret an older version stored (in the clear,
/// or sealed bound to nothing); answers how many webhooks it changed.
pub async fn seal_plain_secrets(db: &Db) -> anyhow::Result<u64> {
    let rows = sqlx::query(&format!(
        "SELECT id, signing_secret, previous_secret, auth_header_value FROM webhooks \
         WHERE signing_secret NOT LIKE '{bound}%' OR previous_secret NOT LIKE '{bound}%' \
         OR auth_header_value NOT LIKE '{bound}%'",
        bound = crate::crypto::SEALED_PREFIX
    ))
    .fetch_all(db.pool())
    .await
    .context("could not look for secrets sealed by an older version")?;
    let mut changed = 0;
    for row in &rows {
        let id: String = row.try_get("id")?;
        let old = |column: &str| row.try_get::<Option<String>, _>(column);
        let reseal = |column: &str, kind| -> anyhow::Result<Option<String>> {
            let Some(value) = old(column)? else { return Ok(None) };
            Ok(Some(db.secrets().reseal(&value, &place(&id, kind))?.unwrap_or(value)))
        };
        let sealed = (|| {
            anyhow::Ok((
                reseal("signing_secret", SecretKind::Signing)?,
                reseal("previous_secret", SecretKind::Signing)?,
                reseal("auth_header_value", SecretKind::AuthHeader)?,
            ))
        })();
        // One webhook whose old values don't open (another key) must not keep the portal down;
        // reading it says so.
        let (signing, previous, auth) = match sealed {
            Ok(sealed) => sealed,
            Err(e) => {
                tracing::error!(webhook = %id, error = format!("{e:#}"), "could not seal a webhook's old secrets again");
                continue;
            }
        };
        // Only if nothing changed them since they were read (another process rotating a secret).
        let done = sqlx::query(
            "UPDATE webhooks SET signing_secret = $1, previous_secret = $2, auth_header_value = $3 WHERE id = $4 \
             AND signing_secret = $5 AND COALESCE(previous_secret, '') = COALESCE($6, '') \
             AND COALESCE(auth_header_value, '') = COALESCE($7, '')",
        )
        .bind(signing)
        .bind(previous)
        .bind(auth)
        .bind(&id)
        .bind(old("signing_secret")?)
        .bind(old("previous_secret")?)
        .bind(old("auth_header_value")?)
        .execute(db.writer())
        .await
        .context("could not seal a webhook's secrets")?;
        changed += done.rows_affected();
    }
    Ok(changed)
}

/// The webhooks with these ids, with their secrets, by id (the dispatcher loads a claimed
/// batch's webhooks in one query; each delivery then checks the partner matches).
pub async fn records_by_id(
    db: &Db,
    ids: &[&WebhookId],
) -> anyhow::Result<std::collections::HashMap<WebhookId, WebhookRecord>> {
    if ids.is_empty() {
        return Ok(Default::default());
    }
    static SQL: BatchSql =
        BatchSql::new(|n| format!("SELECT {COLUMNS} FROM webhooks WHERE id IN ({})", placeholders(1, n)));
    let mut records = std::collections::HashMap::with_capacity(ids.len());
    for batch in batches(ids) {
        let mut query = sqlx::query(SQL.get(batch.len()));
        for id in batch {
            query = query.bind(id.as_str());
        }
        for row in query.fetch_all(db.pool()).await.context("could not load the webhooks")? {
            let record = WebhookRecord::from_row(&row, db.secrets())?;
            records.insert(record.id.clone(), record);
        }
    }
    Ok(records)
}
