//! Server functions answer every error with 500 (how Leptos sends them); this layer gives a
//! refusal its own status instead: 401 for a wrong password, 403, 404, 409, 422 for a refused
//! field or a partner's limit, 429 (with `Retry-After`) for throttling and a busy portal. The
//! body stays the error the page shows. Only 500s of the server functions' paths are read,
//! and only up to a small size; a plain form post, answered with a redirect, is left alone.

use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

use app::api::AppError;

/// Largest error body read; an [`AppError`] is far smaller.
const MOST_ERROR_BYTES: usize = 16 * 1024;

/// The layer: see the module's words.
pub async fn status_of_refusals(request: Request, next: Next) -> Response {
    let server_fn = {
        let path = request.uri().path();
        path.starts_with("/api/") && !path.starts_with("/api/v1/")
    };
    let response = next.run(request).await;
    if !server_fn || response.status() != StatusCode::INTERNAL_SERVER_ERROR {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, MOST_ERROR_BYTES).await else {
        // Too large to be a refusal, or the body failed: what was read is gone, so say so.
        parts.headers.remove(header::CONTENT_LENGTH);
        return Response::from_parts(parts, Body::from("Something went wrong on our side. Please try again."));
    };
    if let Ok(error) = serde_json::from_slice::<AppError>(&bytes) {
        let (status, retry_after) = error.status();
        parts.status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if let Some(seconds) = retry_after {
            parts.headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
    }
    Response::from_parts(parts, Body::from(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::routing::post;
    use tower::ServiceExt;

    async fn answer(path: &str, error: AppError) -> Response {
        let body = serde_json::to_string(&error).unwrap();
        let router = Router::new()
            .route(path, post(move || async move { (StatusCode::INTERNAL_SERVER_ERROR, body.clone()) }))
            .layer(axum::middleware::from_fn(status_of_refusals));
        router.oneshot(Request::post(path).body(Body::empty()).unwrap()).await.unwrap()
    }

    #[tokio::test]
    async fn refusals_of_server_functions_get_their_own_status() {
        let limit = answer("/api/webhooks/save", AppError::LimitReached("limit of 1 webhooks".into())).await;
        assert_eq!(limit.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let body = to_bytes(limit.into_body(), MOST_ERROR_BYTES).await.unwrap();
        assert_eq!(
            serde_json::from_slice::<AppError>(&body).unwrap(),
            AppError::LimitReached("limit of 1 webhooks".into())
        );
        let throttled = answer("/api/login", AppError::TooManyAttempts(30)).await;
        assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(throttled.headers()[header::RETRY_AFTER], "30");
        assert_eq!(answer("/api/login", AppError::WrongCredentials).await.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(answer("/api/x", AppError::Internal).await.status(), StatusCode::INTERNAL_SERVER_ERROR);
        // The REST API has its own errors; this layer leaves them alone.
        assert_eq!(answer("/api/v1/x", AppError::NotFound).await.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
