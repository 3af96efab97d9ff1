//! `GET /api/v1/openapi.json`: the API described from its own handlers and types (utoipa), so
//! the document can't drift from the code.

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{error, events, logs, partner, webhooks};

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
        webhooks::test,
        logs::webhook_attempts,
        logs::attempts,
        logs::attempt,
        logs::resend,
        logs::replay,
        logs::replay_progress,
        events::publish,
    ),
    components(schemas(error::ErrorBody, app::domain::WebhookView, app::domain::Health, app::domain::MaskedAuthHeader)),
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

/// The OpenAPI 3.1 document.
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
