//! The audit log's words: who acted ([`Actor`]), what they did ([`AuditAction`]), and an entry
//! as `/settings/audit` lists it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Who made a change: a signed-in user, an API key, or the operator at the command line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Actor {
    /// A user of the partner, by sign-in address.
    User(String),
    /// One of the partner's API keys, by its name and prefix.
    ApiKey {
        /// The partner's label for the key.
        name: String,
        /// `whp_` and the next characters.
        prefix: String,
    },
    /// The operator, through `portal …` commands.
    Operator,
}

impl Actor {
    /// How the audit log names the actor.
    pub fn describe(&self) -> String {
        match self {
            Self::User(email) => email.clone(),
            Self::ApiKey { name, prefix } => format!("API key \u{201c}{name}\u{201d} ({prefix}…)"),
            Self::Operator => "the operator (command line)".to_owned(),
        }
    }
}

/// What the audit log records. The list is fixed, so the log reads the same whoever writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditAction {
    /// A webhook was created.
    WebhookCreated,
    /// A webhook's settings changed.
    WebhookChanged,
    /// A webhook was activated.
    WebhookActivated,
    /// A webhook was deactivated.
    WebhookDeactivated,
    /// A webhook was deleted.
    WebhookDeleted,
    /// Test Webhook sent an event.
    WebhookTested,
    /// A signing secret was shown.
    SecretRevealed,
    /// A signing secret was rotated.
    SecretRotated,
    /// A rotation's overlap was ended early: the old secret stopped signing.
    SecretOverlapEnded,
    /// A delivery was sent again.
    DeliveryResent,
    /// Events a webhook missed were queued for it.
    EventsReplayed,
    /// A webhook's failed deliveries of a period were queued again.
    DeliveriesRecovered,
    /// An API key was created.
    ApiKeyCreated,
    /// An API key was revoked.
    ApiKeyRevoked,
    /// A user was added.
    UserAdded,
    /// A user was removed.
    UserRemoved,
    /// A user's role changed.
    RoleChanged,
    /// A user changed their own password.
    PasswordChanged,
    /// A user set their password through a one-time link.
    PasswordSet,
    /// A one-time link to set a password was made.
    PasswordLinkMade,
    /// A request inspector was created.
    InspectorCreated,
    /// A request inspector was deleted.
    InspectorDeleted,
}

impl AuditAction {
    /// The words the log shows and stores.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::WebhookCreated => "created webhook",
            Self::WebhookChanged => "changed webhook",
            Self::WebhookActivated => "activated webhook",
            Self::WebhookDeactivated => "deactivated webhook",
            Self::WebhookDeleted => "deleted webhook",
            Self::WebhookTested => "tested webhook",
            Self::SecretRevealed => "revealed signing secret",
            Self::SecretRotated => "rotated signing secret",
            Self::SecretOverlapEnded => "ended the old signing secret's overlap",
            Self::DeliveryResent => "resent delivery",
            Self::EventsReplayed => "replayed missed events",
            Self::DeliveriesRecovered => "recovered failed deliveries",
            Self::ApiKeyCreated => "created API key",
            Self::ApiKeyRevoked => "revoked API key",
            Self::UserAdded => "added user",
            Self::UserRemoved => "removed user",
            Self::RoleChanged => "changed role",
            Self::PasswordChanged => "changed own password",
            Self::PasswordSet => "set password with a one-time link",
            Self::PasswordLinkMade => "made a one-time password link",
            Self::InspectorCreated => "created request inspector",
            Self::InspectorDeleted => "deleted request inspector",
        }
    }
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    /// The entry's id (a ULID: later entries sort after).
    pub id: String,
    /// When.
    pub at: DateTime<Utc>,
    /// Who, as [`Actor::describe`] names them.
    pub actor: String,
    /// What, as [`AuditAction::as_str`] words it.
    pub action: String,
    /// What it was done to.
    pub subject: String,
    /// In which environment (account changes, such as the team's, are production's).
    pub environment: super::Environment,
}

/// A page of the audit log, newest first, and the cursor to the older entries if there are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct AuditPage {
    /// The entries.
    pub entries: Vec<AuditEntry>,
    /// Pass as `before` for the next page.
    pub older: Option<String>,
}

/// Entries per page of the audit log.
pub const AUDIT_PAGE: usize = 50;
/// How long the audit log keeps an entry (days).
pub const AUDIT_RETENTION_DAYS: i64 = 365;
/// How long a one-time password link works (hours).
pub const PASSWORD_LINK_HOURS: i64 = 72;
