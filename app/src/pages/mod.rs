//! The portal's pages, one file each.

mod account;
mod api_keys;
mod audit;
mod event_types;
mod events;
mod inspectors;
mod integrate;
mod login;
mod logs;
pub(crate) mod signature;
mod team;
mod webhook_detail;
mod webhook_form;
mod webhooks;

pub use account::{AccountPage, SetPasswordPage};
pub use api_keys::ApiKeysPage;
pub use audit::AuditPage;
pub use event_types::EventTypesPage;
pub use events::{EventPage, EventsPage};
pub use inspectors::{InspectorPage, InspectorsPage};
pub use integrate::IntegrationGuidePage;
pub use login::LoginPage;
pub use logs::{AttemptPage, LogsPage, WebhookLogsPage};
pub use signature::SignatureCheckerPage;
pub use team::TeamPage;
pub use webhook_detail::WebhookDetailPage;
pub use webhook_form::{EditWebhookPage, NewWebhookPage};
pub use webhooks::WebhooksPage;

use leptos::prelude::*;
use leptos_meta::Title;

/// Any path the portal does not have.
#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(axum::http::StatusCode::NOT_FOUND);
    }
    view! {
        <Title text="Page not found" />
        <main id="main" class="page narrow">
            <h1>"Page not found"</h1>
            <p>"There is nothing at this address."</p>
            <p>
                <a href="/webhooks">"Go to your webhooks"</a>
            </p>
        </main>
    }
}
