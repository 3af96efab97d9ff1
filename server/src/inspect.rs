//! `/inspect/{id}`: a request inspector's capture URL. Any method, from anyone who has the URL
//! (it is the partner's throwaway receiver); what arrives is kept for the partner to look at.
//! The body is held to the portal's request limit (256 KiB) before it gets here.

use std::sync::Arc;

use app::service::inspectors::Inspectors;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::Path;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Keeps the request and answers as [`Inspectors::receive`] says.
pub async fn capture(
    Extension(inspectors): Extension<Arc<Inspectors>>,
    Path(id): Path<String>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(name, value)| (name.as_str().to_owned(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
        .collect();
    let body = String::from_utf8_lossy(&body);
    let answer = inspectors.receive(&id, method.as_str(), headers, &body).await;
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, [(header::CONTENT_TYPE, "application/json")], answer.body).into_response()
}
