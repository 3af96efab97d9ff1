//! `GET /api/v1/event-types`: the event catalog, for partners writing their receivers.

use app::domain::EventTypeDoc;
use axum::Json;

use super::{ApiPartner, ErrorBody};

/// Each event type: when it fires, a JSON Schema of the body a receiver gets, and an example.
#[utoipa::path(get, path = "/api/v1/event-types", tag = "events", security(("apiKey" = [])), responses((status = 200, body = Vec<EventTypeDoc>), (status = 401, body = ErrorBody)))]
pub async fn list(_: ApiPartner) -> Json<Vec<EventTypeDoc>> {
    Json(app::domain::catalog())
}
