//! The REST API's one error type and its JSON shape.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// The shape of every error answer (for the OpenAPI document).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    error: ErrorDetail,
}

/// `{code, message}`, with `field` and `errors` when fields were refused.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// `bad_request`, `unauthorized`, `forbidden`, `not_found`, `conflict`, `too_large`, `validation_failed`, `limit_reached`, `rate_limited`, `busy` or `internal`.
    code: String,
    /// What was wrong, in words.
    message: String,
    /// The first refused field (422 only).
    field: Option<String>,
    /// Every refused field (422 only).
    errors: Option<Vec<FieldErrorBody>>,
}

/// One refused field.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct FieldErrorBody {
    field: String,
    message: String,
}

/// Why an API call was refused. Each maps to one status and one `code`.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request's JSON or parameters could not be read.
    #[error("{0}")]
    BadRequest(String),
    /// No valid credentials.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// Valid credentials, but not for this call.
    #[error("{0}")]
    Forbidden(&'static str),
    /// Nothing there for this caller (another partner's rows read as missing).
    #[error("{0}")]
    NotFound(String),
    /// The call clashes with what exists.
    #[error("{0}")]
    Conflict(String),
    /// The body is larger than the portal takes.
    #[error("{0}")]
    TooLarge(String),
    /// The partner has as many of something as the operator allows.
    #[error("{0}")]
    LimitReached(String),
    /// The partner did something more often in a minute than the operator allows.
    #[error("{0}")]
    RateLimited(String),
    /// Fields broke rules; nothing was changed. Never empty.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<app::domain::FieldError>),
    /// The portal has no room for this work right now (every template worker busy); nothing
    /// was done, try again shortly.
    #[error("{0}")]
    Busy(String),
    /// The request was not answered within the operator's time limit; what it started was
    /// stopped (or, for a replay, goes on).
    #[error("{0}")]
    TimedOut(String),
    /// Something failed on our side; the cause is logged, not sent.
    #[error("internal error")]
    Internal(anyhow::Error),
}

impl From<anyhow::Error> for ApiError {
    /// An internal failure, except a template sandbox that can't render now: [`ApiError::Busy`].
    fn from(err: anyhow::Error) -> Self {
        match err.downcast::<app::sandbox::Unavailable>() {
            Ok(busy) => busy.into(),
            Err(err) => Self::Internal(err),
        }
    }
}

impl From<app::sandbox::Unavailable> for ApiError {
    fn from(err: app::sandbox::Unavailable) -> Self {
        tracing::warn!(why = %err, "refused: the template sandbox can't render now");
        Self::Busy(format!("{err}."))
    }
}

impl ApiError {
    /// The answer to a body over [`MAX_BODY_BYTES`](crate::config::MAX_BODY_BYTES).
    pub fn body_too_large() -> Self {
        Self::TooLarge(format!(
            "the request body is larger than the {} KiB the portal takes",
            crate::config::MAX_BODY_BYTES / 1024
        ))
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            Self::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            Self::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            Self::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            Self::LimitReached(_) => (StatusCode::UNPROCESSABLE_ENTITY, "limit_reached"),
            Self::RateLimited(_) => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            Self::Busy(_) => (StatusCode::TOO_MANY_REQUESTS, "busy"),
            Self::TimedOut(_) => (StatusCode::SERVICE_UNAVAILABLE, "timed_out"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = match &self {
            Self::Internal(cause) => {
                tracing::error!(error = format!("{cause:#}"), "API call failed");
                "Something went wrong on our side. Please try again.".to_owned()
            }
            other => other.to_string(),
        };
        let mut body = json!({ "error": { "code": code, "message": message } });
        if let Self::Invalid(fields) = &self {
            // `field` names the first refused field; `errors` lists them all.
            body["error"]["field"] = json!(fields.first().map(|f| &f.field));
            body["error"]["errors"] = json!(fields);
        }
        let mut response = (status, Json(body)).into_response();
        if let Self::Busy(_) = &self {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from_static("1"));
        }
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer realm=\"portal\""),
            );
        }
        response
    }
}

impl From<app::api::AppError> for ApiError {
    /// The portal's shared actions (resend, replay) answer in the portal's error type.
    fn from(err: app::api::AppError) -> Self {
        use app::api::AppError;
        match err {
            AppError::NotFound => Self::NotFound("not found".into()),
            AppError::Conflict(message) => Self::Conflict(message),
            AppError::Invalid(field) => Self::Invalid(vec![field]),
            AppError::InvalidFields(fields) => Self::Invalid(fields),
            AppError::LimitReached(message) => Self::LimitReached(message),
            AppError::RateLimited(message) => Self::RateLimited(message),
            AppError::Busy => Self::Busy(AppError::Busy.to_string()),
            AppError::Unauthorized | AppError::WrongCredentials => Self::Unauthorized("sign in first"),
            other => Self::Internal(anyhow::anyhow!("{other}")),
        }
    }
}
