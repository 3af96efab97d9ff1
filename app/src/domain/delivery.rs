//! What a delivery attempt works with: its target (what sending needs of a webhook) and the
//! request it sends.

use super::{PartnerId, SigningSecret, WebhookId, WebhookSettings};

/// What sending needs of a webhook: where and how (its settings), and the secrets that sign;
/// none of the row's bookkeeping (counters, deactivation, times).
#[derive(Debug, Clone)]
pub struct DeliveryTarget {
    /// The webhook.
    pub id: WebhookId,
    /// Its owner.
    pub partner_id: PartnerId,
    /// Checked settings.
    pub settings: WebhookSettings,
    /// The current signing secret.
    pub signing_secret: SigningSecret,
    /// The rotated-out secret, while it is still valid.
    pub previous_secret: Option<SigningSecret>,
}

/// A request ready to send: exactly these bytes, these headers.
#[derive(Debug, Clone)]
pub struct OutgoingRequest {
    /// Where it goes.
    pub url: String,
    /// Headers in order, the auth header's real value included.
    pub headers: Vec<(String, String)>,
    /// The body, as signed.
    pub body: String,
    /// The auth header's name, so the log can mask its value.
    pub auth_header_name: Option<String>,
}

impl OutgoingRequest {
    /// The headers as the log keeps them: the auth header's value masked.
    pub fn logged_headers(&self) -> Vec<(String, String)> {
        self.headers
            .iter()
            .map(|(name, value)| {
                if self.auth_header_name.as_deref().is_some_and(|auth| auth.eq_ignore_ascii_case(name)) {
                    (name.clone(), super::mask(value))
                } else {
                    (name.clone(), value.clone())
                }
            })
            .collect()
    }
}
