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
    use crate::domain::{Environment, SignedInUser, UserId};
    use crate::state::AppState;
    use crate::store::{self, Db};

    /// The session key that holds the signed-in user's id.
    pub const SESSION_USER_KEY: &str = "user_id";
    /// The session key that holds when the user signed in (ms), for the absolute lifetime.
    pub const SESSION_SIGNED_IN_AT_KEY: &str = "signed_in_at";
    /// The session key that holds the user's session epoch when it began: a password change
    /// moves the user's epoch on, and ends every session of an older one.
    pub const SESSION_EPOCH_KEY: &str = "epoch";
    /// The session key that holds the environment the user is looking at (`sandbox`; absent
    /// for production).
    pub const SESSION_ENVIRONMENT_KEY: &str = "environment";

    /// Starts a signed-in session for `user` under `epoch` in `session`: a new id (so a session
    /// id planted before is worth nothing after), the user, the time, the epoch.
    pub async fn start_session(session: &Session, user: &UserId, epoch: i64) -> Result<(), AppError> {
        session.cycle_id().await.map_err(anyhow::Error::from)?;
        session.insert(SESSION_USER_KEY, user).await.map_err(anyhow::Error::from)?;
        session.insert(SESSION_SIGNED_IN_AT_KEY, store::now_ms()).await.map_err(anyhow::Error::from)?;
        session.insert(SESSION_EPOCH_KEY, epoch).await.map_err(anyhow::Error::from)?;
        // Every sign-in starts in production.
        session.remove::<Environment>(SESSION_ENVIRONMENT_KEY).await.map_err(anyhow::Error::from)?;
        Ok(())
    }

    /// Keeps this session going under the user's new `epoch` (after they changed their own
    /// password here), with a new id; its start time, and so its lifetime, stay.
    pub async fn renew_session_epoch(session: &Session, epoch: i64) -> Result<(), AppError> {
        session.cycle_id().await.map_err(anyhow::Error::from)?;
        session.insert(SESSION_EPOCH_KEY, epoch).await.map_err(anyhow::Error::from)?;
        Ok(())
    }

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

    /// The user a session belongs to, if it has one, it is younger than the absolute session
    /// lifetime (an older one is ended here), and the user still exists.
    pub async fn session_user(
        session: &Session,
        db: &Db,
        lifetime: std::time::Duration,
    ) -> Result<Option<SignedInUser>, AppError> {
        let unreadable = |e: tower_sessions::session::Error| {
            tracing::warn!(error = %e, "unreadable session");
            AppError::Unauthorized
        };
        let user_id: Option<UserId> = session.get(SESSION_USER_KEY).await.map_err(unreadable)?;
        let Some(user_id) = user_id else { return Ok(None) };
        let signed_in_at: Option<i64> = session.get(SESSION_SIGNED_IN_AT_KEY).await.map_err(unreadable)?;
        if signed_in_at.is_none_or(|at| store::now_ms() - at > lifetime.as_millis() as i64) {
            tracing::info!(user = %user_id, "session past its lifetime: signed out");
            session.flush().await.map_err(anyhow::Error::from)?;
            return Ok(None);
        }
        // Sessions from before epochs were kept belong to the first one.
        let epoch: i64 = session.get(SESSION_EPOCH_KEY).await.map_err(unreadable)?.unwrap_or(0);
        let environment: Environment =
            session.get(SESSION_ENVIRONMENT_KEY).await.map_err(unreadable)?.unwrap_or_default();
        let user = store::accounts::signed_in_user(db, &user_id, epoch, environment).await?;
        if user.is_none() {
            tracing::info!(user = %user_id, "the user was removed or changed their password: session ended");
            session.flush().await.map_err(anyhow::Error::from)?;
        }
        Ok(user)
    }

    /// The signed-in user, or `Unauthorized`. Every server function that reads or changes a
    /// partner's data starts here: holding a `SignedInUser` is the only way to a `PartnerId`.
    pub async fn require_user() -> Result<(SignedInUser, AppState), AppError> {
        let state = app_state()?;
        let session = current_session().await?;
        let user =
            session_user(&session, &state.db, state.settings.session_lifetime).await?.ok_or(AppError::Unauthorized)?;
        Ok((user, state))
    }

    /// [`require_admin`] for a form that creates something in an environment: `drawn` is the
    /// environment the page was drawn for (its hidden `environment` field). When the session
    /// has switched since (in another tab), nothing is made where the partner did not mean it:
    /// 409, reload.
    pub async fn require_admin_in(drawn: Option<String>) -> Result<(SignedInUser, AppState), AppError> {
        let (user, state) = require_admin().await?;
        if let Some(drawn) = drawn.as_deref().map(Environment::parse).transpose().ok().flatten()
            && drawn != user.environment
        {
            tracing::info!(user = %user.user_id, "refused: the page was drawn for the other environment");
            return Err(AppError::Conflict(format!(
                "This page was for {}, but you have switched to {} since (in another tab?). Nothing was changed: reload the page.",
                drawn.label(),
                user.environment.label()
            )));
        }
        Ok((user, state))
    }

    /// The signed-in user if their role may change things (webhooks, keys, users), or
    /// `Forbidden`. Every server function that changes something starts here.
    pub async fn require_admin() -> Result<(SignedInUser, AppState), AppError> {
        let (user, state) = require_user().await?;
        if !user.role.can_change() {
            tracing::info!(user = %user.user_id, role = user.role.as_str(), "refused: the role may not change things");
            return Err(AppError::Forbidden(user.role.as_str().to_owned()));
        }
        Ok((user, state))
    }
}

/// Longest password a login will hash; anything longer can't be a user's (see `NewPassword`).
#[cfg(feature = "ssr")]
const MAX_LOGIN_PASSWORD_BYTES: usize = 4 * crate::domain::MAX_PASSWORD_CHARS;

/// The client as the sign-in throttle counts it ([`client_group`]): the connection's peer, or
/// the last `X-Forwarded-For` entry (the one the operator's proxy added) when the operator said
/// to trust it.
///
/// [`client_group`]: crate::store::throttle::client_group
#[cfg(feature = "ssr")]
pub(crate) async fn throttle_client(trust_forwarded_for: bool) -> Option<String> {
    use crate::store::throttle::client_group;
    if trust_forwarded_for
        && let Ok(headers) = leptos_axum::extract::<axum::http::HeaderMap>().await
        && let Some(last) =
            headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()).and_then(|v| v.rsplit(',').next())
    {
        let last = last.trim();
        let ip = last.parse().ok().or_else(|| last.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()));
        // Not an address: the proxy wrote something else; it is still the proxy's word (and
        // stored hashed, whatever its size).
        return Some(ip.map_or_else(|| last.to_owned(), client_group));
    }
    let peer = leptos_axum::extract::<axum::extract::ConnectInfo<std::net::SocketAddr>>().await.ok()?;
    Some(client_group(peer.0.ip()))
}

/// Signs a user in: checks the password, gives the browser a new session id, and sends it to
/// the webhooks page. A wrong email and a wrong password get the same answer, and take as long
/// (argon2 runs either way).
///
/// Each attempt is counted before its password is checked, per email and client, per client
/// and per email alone (`store::throttle`); past a key's limit, sign-ins there wait, longer
/// each time, whether the email exists or not, and are answered 429 without a check. argon2
/// runs in one of a few slots; when none frees up soon the answer is 429 "busy" at once.
#[server(endpoint = "login")]
pub async fn login(email: String, password: String) -> Result<(), AppError> {
    use crate::store::throttle::{self, Admission, Outcome, ThrottleKey};
    use crate::{auth, domain::EmailAddress, store};

    let state = app_state()?;
    let client = throttle_client(state.settings.trust_forwarded_for).await;
    let keys = ThrottleKey::for_sign_in(&email, client.as_deref());
    if let Admission::Locked(wait_ms) = throttle::admit(&state.db, &keys).await? {
        let wait = (wait_ms.max(1000) as u64).div_ceil(1000);
        tracing::info!(wait_s = wait, "sign-in refused: too many attempts");
        return Err(AppError::TooManyAttempts(wait));
    }
    let refuse = || {
        tracing::info!("failed login");
        Err::<(), AppError>(AppError::WrongCredentials)
    };
    let Ok(email) = EmailAddress::parse(&email) else { return refuse() };
    if password.len() > MAX_LOGIN_PASSWORD_BYTES {
        return refuse();
    }
    let record = store::accounts::find_login(&state.db, &email).await?;
    let stored_hash = record.as_ref().map(|r| r.password_hash.clone());
    let matches = match auth::argon2_off_thread(move || auth::verify_password(&password, stored_hash.as_deref())).await
    {
        Ok(matches) => matches,
        Err(e) => {
            let err = AppError::from(e);
            if err == AppError::Busy {
                // No password was checked: the attempt takes nothing from anyone's allowance.
                throttle::take_back(&state.db, &keys, Outcome::Unchecked).await?;
            }
            return Err(err);
        }
    };
    let Some(record) = record.filter(|_| matches) else {
        return refuse();
    };
    throttle::take_back(&state.db, &keys, Outcome::SignedIn).await?;

    start_session(&current_session().await?, &record.user_id, record.session_epoch).await?;
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

/// Moves the session to `environment` (`production` or `sandbox`) and sends the browser to
/// its webhooks: what the pages show and change from then on is that environment's.
#[server(endpoint = "switch_environment")]
pub async fn switch_environment(environment: String) -> Result<(), AppError> {
    let environment = crate::domain::Environment::parse(&environment)
        .map_err(|message| AppError::Invalid(crate::domain::FieldError::new("environment", message)))?;
    let (user, _) = require_user().await?;
    current_session().await?.insert(SESSION_ENVIRONMENT_KEY, environment).await.map_err(anyhow::Error::from)?;
    tracing::info!(user = %user.user_id, environment = environment.as_str(), "switched environment");
    leptos_axum::redirect("/webhooks");
    Ok(())
}

/// Who is signed in, or `None`.
#[server(endpoint = "current_user")]
pub async fn current_user() -> Result<Option<SignedInUser>, AppError> {
    let state = app_state()?;
    let session = current_session().await?;
    session_user(&session, &state.db, state.settings.session_lifetime).await
}
