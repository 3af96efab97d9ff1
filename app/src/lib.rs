//! The partner webhook portal's application: domain types, server functions, store and UI.
//! Built twice: with `ssr` into the server, with `hydrate` into the browser's wasm.

#![recursion_limit = "256"]

pub mod api;
pub mod components;
pub mod domain;
pub mod error;
pub mod pages;

#[cfg(feature = "ssr")]
pub mod auth;
#[cfg(feature = "ssr")]
pub mod crypto;
#[cfg(feature = "ssr")]
pub mod delivery;
#[cfg(feature = "ssr")]
pub mod sandbox;
#[cfg(feature = "ssr")]
pub mod service;
#[cfg(feature = "ssr")]
pub mod state;
#[cfg(feature = "ssr")]
pub mod store;

use leptos::prelude::*;
use leptos_meta::{HashedStylesheet, MetaTags, Title, provide_meta_context};
use leptos_router::components::{Redirect, Route, Router, Routes};
use leptos_router::{SsrMode, path};

/// The name of the built site's files (`pkg/portal.js`, `.wasm`, `.css`): the `name` of the
/// workspace's `[[workspace.metadata.leptos]]`.
pub const SITE_NAME: &str = "portal";

/// The product's name as pages and request headers show it.
pub const PRODUCT_NAME: &str = "Partner Webhook Portal";

/// The HTML document around the app, rendered on the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    set_content_security_policy(&options);
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <link rel="icon" href="/favicon.svg" type="image/svg+xml" />
                <AutoReload options=options.clone() />
                <HashedStylesheet options=options.clone() id="leptos" />
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

/// The page's Content-Security-Policy, with this response's nonce (Leptos puts it on each of
/// its inline scripts): scripts only from this site or with the nonce, the wasm allowed to
/// compile, styles, images and calls only from this site, no plugins, no framing, forms only
/// to this site. Anything injected into a page can't run.
#[cfg(feature = "ssr")]
fn set_content_security_policy(options: &LeptosOptions) {
    use axum::http::{HeaderValue, header::CONTENT_SECURITY_POLICY};
    let (Some(nonce), Some(response)) = (leptos::nonce::use_nonce(), use_context::<leptos_axum::ResponseOptions>())
    else {
        return;
    };
    // `cargo leptos watch` reloads the page over a websocket.
    let connect = if options.env == leptos::config::Env::DEV { "'self' ws:" } else { "'self'" };
    let policy = format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; style-src 'self'; \
         img-src 'self' data:; connect-src {connect}; object-src 'none'; base-uri 'none'; \
         form-action 'self'; frame-ancestors 'none'"
    );
    if let Ok(value) = HeaderValue::from_str(&policy) {
        response.insert_header(CONTENT_SECURITY_POLICY, value);
    }
}

/// The app: its routes and the pages behind them.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    provide_context(components::AlertsRefresh(RwSignal::new(0)));
    view! {
        <Title formatter=|page: String| format!("{page} · {PRODUCT_NAME}") />
        <Router>
            <Routes fallback=pages::NotFound>
                // Async: the server waits for a page's data and sends it whole, so every page
                // reads right without JavaScript (streamed chunks would need it to fall in place).
                <Route path=path!("/") view=|| view! { <Redirect path="/webhooks" /> } ssr=SsrMode::Async />
                <Route path=path!("/login") view=pages::LoginPage ssr=SsrMode::Async />
                <Route path=path!("/webhooks") view=pages::WebhooksPage ssr=SsrMode::Async />
                <Route path=path!("/webhooks/new") view=pages::NewWebhookPage ssr=SsrMode::Async />
                <Route path=path!("/webhooks/:id") view=pages::WebhookDetailPage ssr=SsrMode::Async />
                <Route path=path!("/webhooks/:id/integrate") view=pages::IntegrationGuidePage ssr=SsrMode::Async />
                <Route path=path!("/webhooks/:id/edit") view=pages::EditWebhookPage ssr=SsrMode::Async />
                <Route path=path!("/webhooks/:id/logs") view=pages::WebhookLogsPage ssr=SsrMode::Async />
                <Route path=path!("/webhooks/:id/logs/:attempt") view=pages::AttemptPage ssr=SsrMode::Async />
                <Route path=path!("/logs") view=pages::LogsPage ssr=SsrMode::Async />
                <Route path=path!("/events") view=pages::EventsPage ssr=SsrMode::Async />
                <Route path=path!("/events/:id") view=pages::EventPage ssr=SsrMode::Async />
                <Route path=path!("/event-types") view=pages::EventTypesPage ssr=SsrMode::Async />
                <Route path=path!("/tools/signature") view=pages::SignatureCheckerPage ssr=SsrMode::Async />
                <Route path=path!("/inspectors") view=pages::InspectorsPage ssr=SsrMode::Async />
                <Route path=path!("/inspectors/:id") view=pages::InspectorPage ssr=SsrMode::Async />
                <Route path=path!("/settings/api-keys") view=pages::ApiKeysPage ssr=SsrMode::Async />
                <Route path=path!("/settings/team") view=pages::TeamPage ssr=SsrMode::Async />
                <Route path=path!("/settings/account") view=pages::AccountPage ssr=SsrMode::Async />
                <Route path=path!("/settings/audit") view=pages::AuditPage ssr=SsrMode::Async />
                <Route path=path!("/set-password") view=pages::SetPasswordPage ssr=SsrMode::Async />
            </Routes>
        </Router>
    }
}
