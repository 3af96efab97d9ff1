//! A webhook as pages and the REST API show it, and the banner of one switched off.

use serde::{Deserialize, Serialize};

use super::*;

/// A webhook as pages and the REST API show it: secrets masked or left out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct WebhookView {
    /// `wh_…`
    #[cfg_attr(feature = "ssr", schema(value_type = String, example = "wh_01KAQ3M7A8Q9XKJ2V5T6N4B0CD"))]
    pub id: crate::domain::WebhookId,
    /// Where deliveries go.
    pub url: String,
    /// Whether events are sent to it.
    pub active: bool,
    /// Why the dispatcher deactivated it, when it did.
    pub deactivated_reason: Option<String>,
    /// When it was deactivated (by the partner or the dispatcher).
    pub deactivated_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The event types it receives; `null` for all.
    #[cfg_attr(feature = "ssr", schema(example = json!(["verification.completed"])))]
    pub event_types: Option<Vec<String>>,
    /// The extra header, its value masked.
    pub auth_header: Option<MaskedAuthHeader>,
    /// The payload template, when it has one.
    pub payload_template: Option<String>,
    /// When it was made.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// When it was last changed.
    pub updated_at: chrono::DateTime<chrono::Utc>,
    /// Time of the newest delivery attempt.
    pub last_delivery_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Whether that attempt succeeded.
    pub last_delivery_ok: Option<bool>,
    /// Share of the last 24 hours' attempts that succeeded, 0 to 100; `null` with none.
    pub success_rate: Option<f64>,
    /// Failed attempts since the last success (tests left out).
    pub failures_in_a_row: i64,
    /// Most requests per second the dispatcher sends it; `null` for no limit.
    pub rate_limit: Option<u32>,
    /// Most requests the dispatcher has under way to it at once, when the partner set a cap;
    /// `null` for the dispatcher's own limit (it adapts to the receiver, up to 64).
    pub max_concurrent_requests: Option<u32>,
    /// The badge.
    pub health: Health,
    /// While a rotation's overlap is in force: until when the rotated-out secret still signs
    /// (`x-webhook-signature` alone, and `webhook-signature` beside the current one).
    #[serde(default)]
    pub old_secret_signs_until: Option<chrono::DateTime<chrono::Utc>>,
}

impl WebhookView {
    /// Why the badge is what it is, in a sentence with this webhook's numbers: the text shown
    /// on hover and focus.
    pub fn health_reason(&self) -> String {
        let rate = self.success_rate.map(|r| format!("{r:.1} %")).unwrap_or_else(|| "–".into());
        match self.health {
            Health::Inactive => "Switched off by your team: no events are sent to it.".into(),
            Health::Red if !self.active => format!(
                "The dispatcher switched it off after a delivery failed every retry{}. Activate it to resume.",
                self.deactivated_at.map(|at| format!(" on {}", at.format("%Y-%m-%d %H:%M UTC"))).unwrap_or_default()
            ),
            Health::Red => format!(
                "The last {} attempts in a row failed (red from 3). Success rate in the last 24 hours: {rate}.",
                self.failures_in_a_row
            ),
            Health::Yellow if self.failures_in_a_row > 0 => format!(
                "The latest attempt failed ({} in a row; red from 3). Success rate in the last 24 hours: {rate}.",
                self.failures_in_a_row
            ),
            Health::Yellow => format!("Success rate in the last 24 hours is {rate}, under 95 %."),
            Health::Green if self.last_delivery_at.is_none() => "No deliveries yet.".into(),
            Health::Green => {
                format!("The latest attempt succeeded and {rate} of the last 24 hours' attempts did (95 % or more).")
            }
        }
    }
}

/// A banner's worth: the dispatcher switched one of the partner's webhooks off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertView {
    /// `alr_…`, to dismiss it.
    pub id: crate::domain::AlertId,
    /// The webhook that was switched off.
    pub webhook_id: crate::domain::WebhookId,
    /// Its URL at the time.
    pub url: String,
    /// Why, with the last error.
    pub reason: String,
    /// When.
    pub deactivated_at: chrono::DateTime<chrono::Utc>,
}
