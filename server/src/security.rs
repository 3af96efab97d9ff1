//! Protections in front of every route: security headers on every answer, and the refusal of
//! state-changing requests that another site's page made (cross-site request forgery).

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower_http::set_header::SetResponseHeaderLayer;

/// Headers every answer carries unless it set its own: pages set a Content-Security-Policy with
/// their nonce (`app::shell`); everything else gets one that allows nothing.
pub fn headers(router: Router, https: bool) -> Router {
    let fixed: [(HeaderName, &'static str); 5] = [
        (header::CONTENT_SECURITY_POLICY, "default-src 'none'; frame-ancestors 'none'"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "same-origin"),
        (HeaderName::from_static("cross-origin-opener-policy"), "same-origin"),
    ];
    // The page a one-time password link opens carries its token in the address: no cache
    // keeps it, and no Referer sends it on, even to this site.
    let mut router = router.layer(axum::middleware::from_fn(keep_link_pages_private));
    for (name, value) in fixed {
        router = router.layer(SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value)));
    }
    if https {
        router = router.layer(SetResponseHeaderLayer::if_not_present(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        ));
    }
    router
}

async fn keep_link_pages_private(request: Request, next: Next) -> Response {
    let link_page = request.uri().path() == "/set-password";
    let mut response = next.run(request).await;
    if link_page {
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    }
    response
}

/// Refuses a body over [`MAX_BODY_BYTES`](crate::config::MAX_BODY_BYTES) with 413 before reading it, in the API's JSON shape
/// under `/api/v1/` and in words elsewhere. Bodies without a length are cut off at the limit
/// by the layers [`body_limits`] adds.
pub async fn refuse_large_bodies(request: Request, next: Next) -> Response {
    let length =
        request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if length.is_some_and(|n| n > crate::config::MAX_BODY_BYTES as u64) {
        if request.uri().path().starts_with("/api/v1/") {
            return crate::rest::ApiError::body_too_large().into_response();
        }
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "The request body is larger than the {} KiB the portal takes.\n",
                crate::config::MAX_BODY_BYTES / 1024
            ),
        )
            .into_response();
    }
    next.run(request).await
}

/// The body limit on every route: a length over it is refused up front, and a body without one
/// stops being read at the limit.
pub fn body_limits(router: Router) -> Router {
    router
        .layer(axum::extract::DefaultBodyLimit::max(crate::config::MAX_BODY_BYTES))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(crate::config::MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(refuse_large_bodies))
}

/// Ends a request not answered within `limit` (`PORTAL_REQUEST_TIMEOUT`): 503, in the API's
/// JSON shape under `/api/v1/` and in words elsewhere, with the route logged. Its work is
/// dropped with it (a wait for a lock, a database query, a render), so a request stuck behind
/// another's lock, or a render that never finishes, holds its connection and its memory no
/// longer than the limit. Outside the session layer, so a session store that hangs is cut off too.
pub fn deadline(router: Router, limit: std::time::Duration) -> Router {
    router.layer(axum::middleware::from_fn(move |request: Request, next: Next| async move {
        let (method, path) = (request.method().clone(), request.uri().path().to_owned());
        match tokio::time::timeout(limit, next.run(request)).await {
            Ok(response) => response,
            Err(_) => {
                tracing::error!(%method, %path, limit_ms = limit.as_millis() as u64, "request not answered in time: stopped");
                let words = format!(
                    "The portal did not answer within {} s (PORTAL_REQUEST_TIMEOUT), so the request was stopped; try again.",
                    limit.as_secs()
                );
                let mut response = if path.starts_with("/api/v1/") {
                    crate::rest::ApiError::TimedOut(words).into_response()
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, format!("{words}\n")).into_response()
                };
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                response
            }
        }
    }))
}

/// The site's own origin (`https://portal.example.com`), when the operator gave the public URL.
#[derive(Clone, Debug, Default)]
pub struct SiteOrigin(pub Option<String>);

impl SiteOrigin {
    /// From `PORTAL_PUBLIC_URL`.
    pub fn of(public_url: Option<&url::Url>) -> Self {
        Self(public_url.map(|url| url.origin().ascii_serialization()))
    }
}

/// Refuses a state-changing request (anything but GET, HEAD and OPTIONS) to the portal's pages
/// and server functions when the browser says another site made it: `Sec-Fetch-Site:
/// cross-site`, or an `Origin` (else a `Referer`) that is neither the public URL's origin nor
/// the host the request was sent to. The REST API (`/api/v1/`) is left alone: it takes bearer
/// tokens, which a browser never adds by itself; so are request inspectors' capture URLs
/// (`/inspect/`), which keep whatever anyone sends and act on no session. A request with neither header is not a
/// browser's and passes (the session cookie is `SameSite` besides).
pub async fn refuse_cross_site(State(site): State<Arc<SiteOrigin>>, request: Request, next: Next) -> Response {
    if matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS)
        || request.uri().path().starts_with("/api/v1/")
        || request.uri().path().starts_with("/inspect/")
    {
        return next.run(request).await;
    }
    match cross_site_reason(&site, request.headers()) {
        None => next.run(request).await,
        Some(reason) => {
            tracing::warn!(path = request.uri().path(), reason = %reason, "refused a cross-site request");
            (StatusCode::FORBIDDEN, format!("Refused: {reason}. Use the portal's own pages.\n")).into_response()
        }
    }
}

/// Why these request headers show another site's request, or `None` when they don't.
fn cross_site_reason(site: &SiteOrigin, headers: &axum::http::HeaderMap) -> Option<String> {
    let text = |name: HeaderName| headers.get(name).map(|v| v.to_str().unwrap_or("(unreadable)").to_owned());
    if text(HeaderName::from_static("sec-fetch-site")).as_deref() == Some("cross-site") {
        return Some("the browser says another site made this request".into());
    }
    let (claimed, source) = match (text(header::ORIGIN), text(header::REFERER)) {
        (Some(origin), _) => (origin, "Origin"),
        (None, Some(referer)) => (referer, "Referer"),
        (None, None) => return None,
    };
    let Ok(url) = url::Url::parse(&claimed) else {
        return Some(format!("its {source} `{}` is not this site", claimed.chars().take(100).collect::<String>()));
    };
    let origin = url.origin();
    if site.0.as_deref() == Some(origin.ascii_serialization().as_str()) {
        return None;
    }
    // The host (and port) the browser sent the request to.
    let host = text(header::HOST).unwrap_or_default();
    let claimed_host = match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_owned(),
        _ => String::new(),
    };
    if !claimed_host.is_empty() && claimed_host.eq_ignore_ascii_case(&host) {
        return None;
    }
    Some(format!("its {source} `{}` is not this site", origin.ascii_serialization()))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderMap;

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(HeaderName::from_static(name), HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn same_site_requests_pass_and_others_are_named() {
        let site = SiteOrigin::of(Some(&url::Url::parse("https://portal.example.com/").unwrap()));
        let none = SiteOrigin::default();
        let host = ("host", "127.0.0.1:3000");
        assert_eq!(cross_site_reason(&none, &headers(&[host, ("origin", "http://127.0.0.1:3000")])), None);
        assert_eq!(cross_site_reason(&none, &headers(&[host, ("referer", "http://127.0.0.1:3000/login")])), None);
        assert_eq!(
            cross_site_reason(&site, &headers(&[("host", "internal:80"), ("origin", "https://portal.example.com")])),
            None
        );
        assert_eq!(cross_site_reason(&none, &headers(&[host])), None, "not a browser");
        let reason = cross_site_reason(&none, &headers(&[host, ("origin", "https://evil.example")])).unwrap();
        assert!(reason.contains("Origin `https://evil.example`"), "{reason}");
        let reason = cross_site_reason(&none, &headers(&[host, ("referer", "https://evil.example/x")])).unwrap();
        assert!(reason.contains("Referer"), "{reason}");
        assert!(cross_site_reason(&none, &headers(&[host, ("origin", "null")])).is_some(), "a sandboxed frame");
        assert!(
            cross_site_reason(&none, &headers(&[host, ("origin", "http://127.0.0.1:3001")])).is_some(),
            "another port"
        );
        assert!(
            cross_site_reason(
                &none,
                &headers(&[host, ("origin", "http://127.0.0.1:3000"), ("sec-fetch-site", "cross-site")])
            )
            .is_some()
        );
    }
}
