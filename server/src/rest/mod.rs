//! REST API v1: JSON with camelCase fields; partners authenticate with an API key, the
//! operator with its token. Errors are `{"error": {"code", "message"}}`.

mod auth;
mod error;
mod event_search;
mod event_types;
mod events;
mod inspectors;
mod json;
mod logs;
mod openapi;
mod partner;
mod signatures;
mod webhooks;

use std::sync::Arc;

use app::state::AppState;
use axum::routing::{delete, get, post};
use axum::{Extension, Router};

pub use auth::{ApiAdmin, ApiPartner};
pub use error::{ApiError, ErrorBody};
pub use json::ApiJson;

/// What the REST API needs besides the database.
#[derive(Debug)]
pub struct ApiSettings {
    /// Operator token, if the operator set one.
    pub operator_token: Option<crate::config::OperatorToken>,
}

/// The `/api/v1` routes.
pub fn router(settings: Arc<ApiSettings>) -> Router<AppState> {
    Router::new()
        .route("/openapi.json", get(openapi::document))
        .route("/partner", get(partner::show))
        .route("/webhooks", get(webhooks::list).post(webhooks::create))
        .route("/webhooks/{id}", get(webhooks::show).patch(webhooks::update).delete(webhooks::delete))
        .route("/webhooks/{id}/activate", post(webhooks::activate))
        .route("/webhooks/{id}/deactivate", post(webhooks::deactivate))
        .route("/webhooks/{id}/secret", get(webhooks::secret))
        .route("/webhooks/{id}/secret/rotate", post(webhooks::rotate_secret))
        .route("/webhooks/{id}/secret/previous", delete(webhooks::end_secret_overlap))
        .route("/webhooks/{id}/test", post(webhooks::test))
        .route("/webhooks/{id}/attempts", get(logs::webhook_attempts))
        .route("/webhooks/{id}/replay", post(logs::replay).get(logs::replay_progress))
        .route("/webhooks/{id}/recover", post(logs::recover).get(logs::recovery_progress))
        .route("/attempts", get(logs::attempts))
        .route("/attempts/{id}", get(logs::attempt))
        .route("/deliveries/{id}/resend", post(logs::resend))
        .route("/events", get(event_search::list).post(events::publish))
        .route("/events/{id}", get(event_search::show))
        .route("/event-types", get(event_types::list))
        .route("/signatures/check", post(signatures::check))
        .route("/inspectors", get(inspectors::list).post(inspectors::create))
        .route("/inspectors/{id}", get(inspectors::show).delete(inspectors::delete))
        .route("/inspectors/{id}/requests", get(inspectors::requests))
        .fallback(|| async { ApiError::NotFound("no such API route".into()) })
        .layer(Extension(settings))
}
