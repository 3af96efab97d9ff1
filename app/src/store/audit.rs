//! The audit log: one row per change, written after the change succeeds, read newest first a
//! page at a time, pruned after [`AUDIT_RETENTION_DAYS`](crate::domain::AUDIT_RETENTION_DAYS).

use anyhow::Context;
use sqlx::Row;

use super::{Db, from_ms, now_ms};
use crate::domain::{AUDIT_PAGE, Actor, AuditAction, AuditEntry, AuditPage, Environment, PartnerId};

/// Entry ids: ULIDs that go up within a millisecond too, so entries written one after the
/// other by this process list in that order.
static IDS: std::sync::Mutex<ulid::Generator> = std::sync::Mutex::new(ulid::Generator::new());

fn next_id() -> String {
    let mut ids = IDS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    ids.generate().unwrap_or_else(|_| ulid::Ulid::new()).to_string()
}

/// How often the same entry may be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repeats {
    /// Every time.
    Always,
    /// Not again while `by` did the same `action` to the same `subject` within the last
    /// minute: a loop of reveals (a script reading a secret over the API) writes one entry a
    /// minute, not one a call. Ids are ULIDs, so "the last minute" is a range of the
    /// partner's index.
    OnceAMinute,
}

/// Writes one entry: `by` did `action` to `subject`, now (see [`Repeats`]). Subjects are cut
/// at 300 characters (a URL can be longer; the log names things, it doesn't keep them).
pub async fn record(
    db: &Db,
    partner: &PartnerId,
    by: &Actor,
    action: AuditAction,
    subject: &str,
    repeats: Repeats,
) -> anyhow::Result<()> {
    let subject: String = subject.chars().take(300).collect();
    let now = now_ms();
    let statement = match repeats {
        Repeats::Always => {
            "INSERT INTO audit_log (id, partner_id, at, actor, action, subject) VALUES ($1, $2, $3, $4, $5, $6)"
        }
        Repeats::OnceAMinute => {
            "INSERT INTO audit_log (id, partner_id, at, actor, action, subject) \
             SELECT $1, $2, $3, $4, $5, $6 WHERE NOT EXISTS (SELECT 1 FROM audit_log \
               WHERE partner_id = $2 AND id > $7 AND actor = $4 AND action = $5 AND subject = $6)"
        }
    };
    let mut query = sqlx::query(statement)
        .bind(next_id())
        .bind(partner.as_str())
        .bind(now)
        .bind(by.describe())
        .bind(action.as_str())
        .bind(subject);
    if repeats == Repeats::OnceAMinute {
        query = query.bind(ulid::Ulid::from_parts(u64::try_from(now - 60_000).unwrap_or(0), 0).to_string());
    }
    query.execute(db.writer()).await.context("could not write the audit log")?;
    Ok(())
}

/// A page of the log of `partner` (an account: with its sandbox's entries), newest first, older than the entry `before` when given.
pub async fn page(db: &Db, partner: &PartnerId, before: Option<&str>) -> anyhow::Result<AuditPage> {
    let rows = sqlx::query(
        "SELECT a.id, a.at, a.actor, a.action, a.subject, p.environment FROM audit_log a \
         JOIN partners p ON p.id = a.partner_id \
         WHERE a.partner_id IN (SELECT id FROM partners WHERE id = $1 OR production_id = $1) \
           AND ($2 = '' OR a.id < $2) ORDER BY a.id DESC LIMIT $3",
    )
    .bind(partner.as_str())
    .bind(before.unwrap_or(""))
    .bind((AUDIT_PAGE + 1) as i64)
    .fetch_all(db.pool())
    .await
    .context("could not read the audit log")?;
    let mut entries = rows
        .iter()
        .map(|row| {
            Ok(AuditEntry {
                id: row.try_get("id")?,
                at: from_ms(row.try_get("at")?),
                actor: row.try_get("actor")?,
                action: row.try_get("action")?,
                subject: row.try_get("subject")?,
                environment: Environment::parse(&row.try_get::<String, _>("environment")?).unwrap_or_default(),
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let older = (entries.len() > AUDIT_PAGE).then(|| {
        entries.truncate(AUDIT_PAGE);
        entries[AUDIT_PAGE - 1].id.clone()
    });
    Ok(AuditPage { entries, older })
}

/// Deletes entries older than `cutoff` (ms); how many went.
pub async fn prune(db: &Db, cutoff: i64) -> anyhow::Result<u64> {
    let done = sqlx::query("DELETE FROM audit_log WHERE at < $1")
        .bind(cutoff)
        .execute(db.writer())
        .await
        .context("could not prune the audit log")?;
    Ok(done.rows_affected())
}
