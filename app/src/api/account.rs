//! The signed-in user's own account (their password), setting a password through a one-time
//! link, and the partner's audit log.

use leptos::prelude::*;

use super::AppError;
use crate::domain::AuditPage;

/// Changes the signed-in user's password: the current one first, then the new one twice.
/// Their other sessions end; this one goes on (with a new id). Changes, and wrong current
/// passwords, count against the same allowance as wrong sign-ins.
#[server(endpoint = "account/password")]
pub async fn change_password(current: String, password: String, confirm: String) -> Result<(), AppError> {
    use crate::store::throttle::{self, Admission, Outcome, ThrottleKey};

    let (user, state) = super::require_user().await?;
    // Longer than any password can be (see `NewPassword`): no argon2 run for it.
    if current.len() > 4 * crate::domain::MAX_PASSWORD_CHARS {
        return Err(crate::domain::FieldError::new("current", "is not your current password").into());
    }
    let client = super::auth::throttle_client(state.settings.trust_forwarded_for).await;
    let keys = ThrottleKey::for_sign_in(&user.email, client.as_deref());
    if let Admission::Locked(wait_ms) = throttle::admit(&state.db, &keys).await? {
        return Err(AppError::TooManyAttempts((wait_ms.max(1000) as u64).div_ceil(1000)));
    }
    let changed = crate::service::accounts::change_password(
        &state.db,
        &user.account_id,
        &user.user_id,
        &user.email,
        current,
        &password,
        &confirm,
    )
    .await;
    match &changed {
        // A wrong current password counts like a failed sign-in; so does a change (two argon2
        // runs each, on slots every partner shares: a few in a quarter of an hour is plenty).
        Ok(_) => {}
        Err(AppError::Invalid(e)) if e.field == "current" => {}
        // Refused before any password was checked: it takes nothing from the allowance.
        Err(_) => throttle::take_back(&state.db, &keys, Outcome::Unchecked).await?,
    }
    let epoch = changed?;
    super::auth::renew_session_epoch(&super::auth::current_session().await?, epoch).await
}

/// The address a one-time link sets the password of, for its page; `NotFound` once the link
/// was used, replaced or ran out.
#[server(endpoint = "account/link")]
pub async fn password_link_email(token: String) -> Result<String, AppError> {
    let state = super::app_state()?;
    crate::service::accounts::password_link_email(&state.db, &token).await
}

/// Sets a password through a one-time link, spends the link, signs the user in and sends
/// them to their webhooks.
#[server(endpoint = "account/set_password")]
pub async fn set_password(token: String, password: String, confirm: String) -> Result<(), AppError> {
    let state = super::app_state()?;
    let (user, epoch) =
        crate::service::accounts::set_password_with_link(&state.db, &token, &password, &confirm).await?;
    super::auth::start_session(&super::auth::current_session().await?, &user, epoch).await?;
    leptos_axum::redirect("/webhooks");
    Ok(())
}

/// A page of the partner's audit log, newest first (admins only).
#[server(endpoint = "audit/list")]
pub async fn list_audit(before: Option<String>) -> Result<AuditPage, AppError> {
    let (user, state) = super::require_admin().await?;
    crate::service::audit::page(&state.db, &user.account_id, before.as_deref()).await
}
