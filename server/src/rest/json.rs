//! JSON bodies whose errors come in the API's error shape, naming the field that was wrong.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, OptionalFromRequest, Request};
use serde::de::DeserializeOwned;

use super::ApiError;

/// Like `axum::Json`, but a body that can't be read answers `{"error": …}`: 400 for broken
/// JSON or a wrong content type, 422 for a field of the wrong type, a missing field or an
/// unknown one (with the field's path in the message).
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        match <axum::Json<T> as FromRequest<S>>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(JsonRejection::JsonDataError(e)) => {
                let detail = e.body_text();
                let detail = detail
                    .strip_prefix("Failed to deserialize the JSON body into the target type: ")
                    .unwrap_or(&detail);
                // serde_path_to_error puts the field's path first: "url: invalid type: …".
                let (field, reason) = match detail.split_once(": ") {
                    Some((path, reason)) if !path.is_empty() && path != "." && !path.contains(' ') => (path, reason),
                    _ => ("body", detail),
                };
                Err(ApiError::Invalid(vec![app::domain::FieldError::new(field, format!("is not valid: {reason}"))]))
            }
            Err(JsonRejection::MissingJsonContentType(_)) => {
                Err(ApiError::BadRequest("send the body as JSON with `Content-Type: application/json`".into()))
            }
            Err(other) if other.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::body_too_large())
            }
            Err(other) => Err(ApiError::BadRequest(format!("the body is not valid JSON: {}", other.body_text()))),
        }
    }
}

/// For a body that may be left out (`Option<ApiJson<T>>`): an empty body is `None`; any other
/// body is read as [`ApiJson`] reads it, so a body sent without its JSON content type is refused,
/// never ignored.
impl<S: Send + Sync, T: DeserializeOwned> OptionalFromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Option<Self>, ApiError> {
        let (parts, body) = request.into_parts();
        let bytes =
            match <axum::body::Bytes as FromRequest<S>>::from_request(Request::from_parts(parts.clone(), body), state)
                .await
            {
                Ok(bytes) => bytes,
                Err(e) if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
                    return Err(ApiError::body_too_large());
                }
                Err(e) => return Err(ApiError::BadRequest(format!("the body could not be read: {}", e.body_text()))),
            };
        if bytes.is_empty() {
            return Ok(None);
        }
        let request = Request::from_parts(parts, axum::body::Body::from(bytes));
        <Self as FromRequest<S>>::from_request(request, state).await.map(Some)
    }
}
