//! `GET /api/v1/openapi.json`: the API described from its own handlers and types (utoipa), so
//! the document can't drift from the code.

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{error, event_search, event_types, events, inspectors, logs, partner, signatures, webhooks};

#[derive(OpenApi)]
#[openapi(
    info(title = "Partner Webhook Portal API", description = "Manage webhooks with a partner API key: `Authorization: Bearer whp_…`."),
    paths(
        partner::show,
        webhooks::list,
        webhooks::create,
        webhooks::show,
        webhooks::update,
        webhooks::delete,
        webhooks::activate,
        webhooks::deactivate,
        webhooks::secret,
        webhooks::rotate_secret,
        webhooks::end_secret_overlap,
        webhooks::test,
        logs::webhook_attempts,
        logs::attempts,
        logs::attempt,
        logs::resend,
        logs::replay,
        logs::replay_progress,
        logs::recover,
        logs::recovery_progress,
        events::publish,
        event_search::list,
        event_search::show,
        event_types::list,
        signatures::check,
        inspectors::create,
        inspectors::list,
        inspectors::show,
        inspectors::delete,
        inspectors::requests,
    ),
    components(schemas(error::ErrorBody, app::domain::EventTypeDoc, app::domain::WebhookView, app::domain::Health, app::domain::MaskedAuthHeader)),
    modifiers(&BearerKey)
)]
struct ApiDoc;

struct BearerKey;

impl Modify for BearerKey {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "apiKey",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("whp_…").build()),
        );
        components.add_security_scheme(
            "operatorToken",
            SecurityScheme::Http(
                HttpBuilder::new().scheme(HttpAuthScheme::Bearer).description(Some("PORTAL_OPERATOR_TOKEN")).build(),
            ),
        );
    }
}

/// The OpenAPI 3.1 document, with a `webhooks` section (utoipa has none): for each event type,
/// the request the portal sends to a partner's endpoint.
pub async fn document() -> Json<serde_json::Value> {
    let mut document = serde_json::to_value(ApiDoc::openapi()).expect("the OpenAPI document is JSON");
    document["webhooks"] = webhooks_section();
    Json(document)
}

/// The `webhooks` section: one `POST` per event type, its body's schema and example from the
/// catalog, and the headers every delivery carries.
fn webhooks_section() -> serde_json::Value {
    let header = |name: &str, description: &str| serde_json::json!({ "name": name, "in": "header", "required": true, "schema": { "type": "string" }, "description": description });
    let parameters = serde_json::json!([
        header(
            "x-webhook-signature",
            "Lowercase hex HMAC-SHA256 of the exact body bytes, keyed with the signing secret as the portal shows it (`whsec_…`, prefix included)."
        ),
        header("webhook-id", "The event's id, the same on every attempt: use it to drop duplicates."),
        header("webhook-timestamp", "Unix seconds when this attempt was signed."),
        header(
            "webhook-signature",
            "Standard Webhooks v1: space-separated `v1,<base64 HMAC-SHA256>` over `id.timestamp.body`, keyed with the secret's decoded bytes; two during the 24 hours after a rotation."
        ),
    ]);
    let entries = app::domain::catalog().into_iter().map(|doc| {
        let operation = serde_json::json!({
            "post": {
                "summary": doc.event_type,
                "description": doc.description,
                "parameters": parameters,
                "requestBody": {
                    "required": true,
                    "content": { "application/json": { "schema": doc.schema, "example": doc.example } }
                },
                "responses": {
                    "2XX": { "description": "Received. Answer within 10 seconds; anything else is retried after 1, 2, 4, 8 and 16 s." }
                }
            }
        });
        (doc.event_type, operation)
    });
    serde_json::Value::Object(entries.collect())
}
