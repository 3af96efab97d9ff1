//! The audit log as use cases write and read it.

use crate::domain::{Actor, AuditAction, AuditPage, PartnerId};
use crate::error::AppError;
use crate::store::audit::Repeats;
use crate::store::{self, Db};

/// Notes that `by` did `action` to `subject`, after the change is made. A log that can't be
/// written is reported in the server's log and does not undo or refuse the change.
pub(crate) async fn note(db: &Db, partner: &PartnerId, by: &Actor, action: AuditAction, subject: &str) {
    write(db, partner, by, action, subject, Repeats::Always).await;
}

/// Like [`note`], for actions a script may repeat in a loop (showing a secret): one entry per
/// actor, action and subject a minute.
pub(crate) async fn note_once_a_minute(db: &Db, partner: &PartnerId, by: &Actor, action: AuditAction, subject: &str) {
    write(db, partner, by, action, subject, Repeats::OnceAMinute).await;
}

async fn write(db: &Db, partner: &PartnerId, by: &Actor, action: AuditAction, subject: &str, repeats: Repeats) {
    if let Err(e) = store::audit::record(db, partner, by, action, subject, repeats).await {
        tracing::error!(error = format!("{e:#}"), partner = %partner, action = action.as_str(), "could not write the audit log");
    }
}

/// A page of the partner's audit log, newest first; `before` is the cursor a previous page
/// gave. Refused, naming it, when the cursor is not one.
pub async fn page(db: &Db, partner: &PartnerId, before: Option<&str>) -> Result<AuditPage, AppError> {
    let before = before.map(str::trim).filter(|b| !b.is_empty());
    if let Some(cursor) = before
        && ulid::Ulid::from_string(cursor).is_err()
    {
        return Err(crate::domain::FieldError::new("before", "is not a cursor this log gave").into());
    }
    Ok(store::audit::page(db, partner, before).await?)
}

/// How the log names a webhook: its URL and id.
pub(crate) fn webhook_subject(url: &str, id: &crate::domain::WebhookId) -> String {
    format!("{url} ({id})")
}
