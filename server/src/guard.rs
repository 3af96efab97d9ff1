//! The sign-in guard in front of the portal's pages: a page load without a signed-in user
//! goes to `/login`, and `/` goes wherever the visitor belongs. Server functions and the REST
//! API check for themselves, so they pass through.

use app::api::session_user;
use app::state::AppState;
use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use tower_sessions::Session;

/// Paths anyone may load: the login page, the page a one-time password link opens, the built
/// site's files, the APIs and request inspectors' capture URLs.
fn is_public(path: &str) -> bool {
    path == "/login"
        || path == "/set-password"
        || path == "/favicon.svg"
        || path == "/healthz"
        || path == "/readyz"
        || path == "/metrics"
        || path.starts_with("/pkg/")
        || path.starts_with("/api/")
        || path.starts_with("/inspect/")
}

/// Redirects page loads to `/login` when no one is signed in, and `/login` and `/` to the
/// webhooks when someone is.
pub async fn require_sign_in(
    State(state): State<AppState>,
    session: Session,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    let page_load = matches!(*request.method(), Method::GET | Method::HEAD);
    if !page_load || (is_public(path) && path != "/login") {
        return next.run(request).await;
    }
    let signed_in = match session_user(&session, &state.db, state.settings.session_lifetime).await {
        Ok(user) => user.is_some(),
        Err(_) => false,
    };
    match (path, signed_in) {
        ("/login", false) => next.run(request).await,
        ("/login" | "/", true) => Redirect::to("/webhooks").into_response(),
        (_, false) => Redirect::to("/login").into_response(),
        (_, true) => next.run(request).await,
    }
}

#[cfg(test)]
mod tests {
    use super::is_public;

    #[test]
    fn pages_are_private_assets_are_not() {
        for path in [
            "/login",
            "/pkg/portal.wasm",
            "/pkg/portal.css",
            "/api/login",
            "/api/v1/partner",
            "/favicon.svg",
            "/inspect/ins_x",
            "/set-password",
        ] {
            assert!(is_public(path), "{path}");
        }
        for path in ["/", "/webhooks", "/settings/api-keys", "/logs", "/loginx", "/pkgx"] {
            assert!(!is_public(path), "{path}");
        }
    }
}
