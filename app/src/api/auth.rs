//! Signing in and out, and who is signed in.

use leptos::prelude::*;

use super::AppError;
use crate::domain::SignedInUser;

#[cfg(feature = "ssr")]
pub use self::ssr::*;

#[cfg(feature = "ssr")]
mod ssr {
    use tower_sessions::Session;

    use crate::api::AppError;
    use crate::domain::{SignedInUser, UserId};
    use crate::state::AppState;
    use crate::store::{self, Db};

    /// The session key that holds the signed-in user's id.
    pub const SESSION_USER_KEY: &str = "user_id";

    /// The server's state, as server functions see it.
    pub fn app_state() -> Result<AppState, AppError> {
        leptos::prelude::use_context::<AppState>().ok_or_else(|| {
            tracing::error!("AppState is missing from the server function's context");
            AppError::Internal
        })
    }

    /// The request's session (tower-sessions puts it in every request).
    pub async fn current_session() -> Result<Session, AppError> {
        leptos_axum::extract::<Session>().await.map_err(|e| {
            tracing::error!(error = %e, "no session layer in front of a server function");
            AppError::Internal
        })
    }

    /// The user a session belongs to, if it has one and the user still exists.
    pub async fn session_user(session: &Session, db: &Db) -> Result<Option<SignedInUser>, AppError> {
        let user_id: Option<UserId> = session.get(SESSION_USER_KEY).await.map_err(|e| {
            tracing::warn!(error = %e, "unreadable session");
            AppError::Unauthorized
        })?;
        match user_id {
            Some(user_id) => Ok(store::accounts::signed_in_user(db, &user_id).await?),
            None => Ok(None),
        }
    }

    /// The signed-in user, or `Unauthorized`. Every server function that reads or changes a
    /// partner's data starts here: holding a `SignedInUser` is the only way to a `PartnerId`.
    pub async fn require_user() -> Result<(SignedInUser, AppState), AppError> {
        let state = app_state()?;
        let session = current_session().await?;
        let user = session_user(&session, &state.db).await?.ok_or(AppError::Unauthorized)?;
        Ok((user, state))
    }
}

/// Longest password a login will hash; anything longer can't be a user's (see `NewPassword`).
#[cfg(feature = "ssr")]
const MAX_LOGIN_PASSWORD_BYTES: usize = 4 * crate::domain::MAX_PASSWORD_CHARS;

/// Signs a user in: checks the password, gives the browser a new session id, and sends it to
/// the webhooks page. A wrong email and a wrong password get the same answer.
#[server(endpoint = "login")]
pub async fn login(email: String, password: String) -> Result<(), AppError> {
    use crate::{auth, domain::EmailAddress, store};

    let state = app_state()?;
    let email = EmailAddress::parse(&email).map_err(|_| AppError::WrongCredentials)?;
    if password.len() > MAX_LOGIN_PASSWORD_BYTES {
        return Err(AppError::WrongCredentials);
    }
    let record = store::accounts::find_login(&state.db, &email).await?;
    let stored_hash = record.as_ref().map(|r| r.password_hash.clone());
    let matches = tokio::task::spawn_blocking(move || auth::verify_password(&password, stored_hash.as_deref()))
        .await
        .map_err(anyhow::Error::from)?;
    let Some(record) = record.filter(|_| matches) else {
        tracing::info!("failed login");
        return Err(AppError::WrongCredentials);
    };

    let session = current_session().await?;
    // A new id at login, so a session id planted before it is worth nothing after.
    session.cycle_id().await.map_err(anyhow::Error::from)?;
    session.insert(SESSION_USER_KEY, &record.user_id).await.map_err(anyhow::Error::from)?;
    tracing::info!(user = %record.user_id, "signed in");
    leptos_axum::redirect("/webhooks");
    Ok(())
}

/// Ends the session, here and in the database, and sends the browser to the login page.
#[server(endpoint = "logout")]
pub async fn logout() -> Result<(), AppError> {
    let session = current_session().await?;
    session.flush().await.map_err(anyhow::Error::from)?;
    leptos_axum::redirect("/login");
    Ok(())
}

/// Who is signed in, or `None`.
#[server(endpoint = "current_user")]
pub async fn current_user() -> Result<Option<SignedInUser>, AppError> {
    let state = app_state()?;
    let session = current_session().await?;
    session_user(&session, &state.db).await
}
