//! The one error type of the use cases and the server functions: what the browser is told when
//! a call fails (the REST API translates it into its own).

use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

use crate::domain::FieldError;

/// Why a server function refused or failed. Each variant maps to words a partner can act on;
/// internal causes are logged on the server and never sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum AppError {
    /// No one is signed in (or the session ended).
    #[error("You are not signed in. Please log in again.")]
    Unauthorized,
    /// The email and password don't match a user. Same words for both, on purpose.
    #[error("Wrong email or password.")]
    WrongCredentials,
    /// Too many failed sign-ins for this email or from this address; the same answer whether
    /// the email belongs to a user or not.
    #[error("Too many failed sign-ins. Please wait {} and try again.", wait_words(*.0))]
    TooManyAttempts(u64),
    /// Every password-checking slot is taken (a burst of sign-ins), or every template worker;
    /// nothing was tried.
    #[error("The portal is busy. Please try again in a moment.")]
    Busy,
    /// The signed-in user's role may not do this.
    #[error("Your role ({0}) lets you read webhooks and delivery logs, not change them. Ask an admin of your team.")]
    Forbidden(String),
    /// The thing asked for does not exist for this partner.
    #[error("Not found.")]
    NotFound,
    /// A field was refused; nothing was changed.
    #[error("{0}")]
    Invalid(FieldError),
    /// Several fields were refused; nothing was changed.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    InvalidFields(Vec<FieldError>),
    /// The request can't be done in the thing's present state; the words say what to do.
    #[error("{0}")]
    Conflict(String),
    /// The partner has as many of something as the operator allows; the words name the limit
    /// and its setting.
    #[error("{0}")]
    LimitReached(String),
    /// The partner did something more often in a minute than the operator allows; the words
    /// name the limit and the wait.
    #[error("{0}")]
    RateLimited(String),
    /// Something failed on the server; the details are in its log.
    #[error("Something went wrong on our side. Please try again.")]
    Internal,
    /// The call did not reach the server or its answer did not come back whole.
    #[error("Could not reach the portal: {0}")]
    Transport(String),
}

/// "45 seconds", "3 minutes".
fn wait_words(seconds: u64) -> String {
    match seconds {
        0..=1 => "a second".into(),
        2..=90 => format!("{seconds} seconds"),
        _ => format!("{} minutes", seconds.div_ceil(60)),
    }
}

impl AppError {
    /// The HTTP status a server function answers with this error (the portal's server sets it;
    /// see `server::refusals`), and the seconds to name in `Retry-After`, if any.
    pub fn status(&self) -> (u16, Option<u64>) {
        match self {
            Self::Unauthorized | Self::WrongCredentials => (401, None),
            Self::TooManyAttempts(seconds) => (429, Some(*seconds)),
            Self::Busy => (429, Some(1)),
            Self::RateLimited(_) => (429, None),
            Self::Forbidden(_) => (403, None),
            Self::NotFound => (404, None),
            Self::Invalid(_) | Self::InvalidFields(_) | Self::LimitReached(_) => (422, None),
            Self::Conflict(_) => (409, None),
            Self::Internal | Self::Transport(_) => (500, None),
        }
    }

    /// The field error, when that is what this is, to show next to its field.
    pub fn field_error(&self, field: &str) -> Option<&str> {
        match self {
            Self::Invalid(e) if e.field == field => Some(&e.message),
            Self::InvalidFields(errors) => errors.iter().find(|e| e.field == field).map(|e| e.message.as_str()),
            _ => None,
        }
    }
}

impl From<Vec<FieldError>> for AppError {
    fn from(mut errors: Vec<FieldError>) -> Self {
        if errors.len() == 1 { Self::Invalid(errors.remove(0)) } else { Self::InvalidFields(errors) }
    }
}

impl From<FieldError> for AppError {
    fn from(value: FieldError) -> Self {
        Self::Invalid(value)
    }
}

#[cfg(feature = "ssr")]
impl From<anyhow::Error> for AppError {
    /// Logs the whole cause chain and tells the browser nothing internal; password hashing that
    /// found no free slot is [`AppError::Busy`], which is no fault to log.
    fn from(err: anyhow::Error) -> Self {
        if err.downcast_ref::<crate::auth::Busy>().is_some() {
            tracing::warn!("refused: every password-hashing slot is busy");
            return Self::Busy;
        }
        if let Some(why) = err.downcast_ref::<crate::sandbox::Unavailable>() {
            tracing::warn!(why = %why, "refused: the template sandbox can't render now");
            return Self::Busy;
        }
        tracing::error!(error = format!("{err:#}"), "server function failed");
        Self::Internal
    }
}

#[cfg(feature = "ssr")]
impl From<crate::sandbox::Unavailable> for AppError {
    fn from(err: crate::sandbox::Unavailable) -> Self {
        anyhow::Error::from(err).into()
    }
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        match value {
            ServerFnErrorErr::Request(e) | ServerFnErrorErr::Response(e) => Self::Transport(e),
            ServerFnErrorErr::Args(e) | ServerFnErrorErr::Deserialization(e) => {
                Self::Invalid(FieldError::new("request", format!("could not be read: {e}")))
            }
            other => {
                #[cfg(feature = "ssr")]
                tracing::error!(error = %other, "server function plumbing failed");
                #[cfg(not(feature = "ssr"))]
                let _ = other;
                Self::Internal
            }
        }
    }
}

#[cfg(all(test, feature = "ssr"))]
mod tests {
    use super::*;

    #[test]
    fn busy_password_slots_are_busy_not_internal() {
        let err = anyhow::Error::from(crate::auth::Busy).context("could not check the password");
        assert_eq!(AppError::from(err), AppError::Busy);
        assert_eq!(AppError::from(anyhow::anyhow!("disk on fire")), AppError::Internal);
        assert!(AppError::Busy.to_string().contains("busy"));
    }
}
