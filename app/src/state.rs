//! What every request handler and server function can reach.

use std::sync::Arc;

use axum::extract::FromRef;
use leptos::config::LeptosOptions;

use crate::delivery::Sender;
use crate::domain::{Metered, PartnerId};
use crate::domain::{RetrySchedule, UrlPolicy};
use crate::store::Db;

/// The server's shared state: built once at start, cloned into every request.
#[derive(Clone, Debug, FromRef)]
pub struct AppState {
    /// Where the built site lives and what it is called.
    pub leptos_options: LeptosOptions,
    /// The database.
    pub db: Db,
    /// The operator's settings.
    pub settings: Arc<Settings>,
    /// The HTTP client of deliveries and tests.
    pub sender: Sender,
    /// Wakes the dispatcher when work arrives (an event, a reactivated webhook).
    pub wake: Arc<tokio::sync::Notify>,
    /// Publishes the events the API receives, those that arrive together in one transaction.
    pub publisher: crate::store::events::Publisher,
}

/// The operator's settings that shape what partners may do and how deliveries go.
#[derive(Debug, Clone)]
pub struct Settings {
    /// What webhook URLs may point at.
    pub url_policy: UrlPolicy,
    /// Waits before each retry of a failed delivery.
    pub retry_schedule: RetrySchedule,
    /// Days of delivery logs to keep.
    pub log_retention_days: u32,
    /// How long a receiver has to answer.
    pub delivery_timeout: std::time::Duration,
    /// Take the client's address from the last `X-Forwarded-For` entry (behind a reverse
    /// proxy) rather than the connection's peer, for sign-in throttling.
    pub trust_forwarded_for: bool,
    /// How long a sign-in lasts at most, however active the session.
    pub session_lifetime: std::time::Duration,
    /// What one partner may have and do.
    pub quotas: crate::domain::Quotas,
    /// Where partners reach the portal (`PORTAL_PUBLIC_URL`, else the listen address): the
    /// base of request inspectors' capture URLs.
    pub public_url: url::Url,
}

impl AppState {
    /// Counts one `action` of `partner` against its quota per minute, or refuses it with words
    /// that name the limit and the wait.
    pub async fn meter(&self, partner: &PartnerId, action: Metered) -> Result<(), crate::error::AppError> {
        let quotas = &self.settings.quotas;
        match crate::store::quotas::take(&self.db, partner, action, action.per_minute(quotas)).await? {
            Ok(()) => Ok(()),
            Err(wait) => {
                tracing::info!(partner = %partner, action = action.as_str(), "refused: over the quota per minute");
                Err(crate::error::AppError::RateLimited(action.refusal(quotas, wait)))
            }
        }
    }
}
