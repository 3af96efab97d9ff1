//! REST API v1: JSON with camelCase fields; partners authenticate with an API key, the
//! operator with its token. Errors are `{"error": {"code", "message"}}`.

mod auth;
mod error;
mod partner;

use std::sync::Arc;

use app::state::AppState;
use axum::routing::get;
use axum::{Extension, Router};

pub use auth::ApiPartner;
pub use error::ApiError;

use crate::startup::ApiSettings;

/// The `/api/v1` routes.
pub fn router(settings: Arc<ApiSettings>) -> Router<AppState> {
    Router::new()
        .route("/partner", get(partner::show))
        .fallback(|| async { ApiError::NotFound("no such API route".into()) })
        .layer(Extension(settings))
}
