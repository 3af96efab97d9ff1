//! The partner's team: its users and their roles. Admins add people (each gets a one-time
//! link to set their own password), change roles and remove people; never the last admin.

use leptos::prelude::*;

use super::AppError;
pub use crate::domain::AddedMember;
use crate::domain::TeamMember;

/// The partner's users, oldest first.
#[server(endpoint = "team/list")]
pub async fn list_team() -> Result<Vec<TeamMember>, AppError> {
    let (user, state) = super::require_admin().await?;
    Ok(crate::store::accounts::team(&state.db, &user.account_id).await?)
}

/// Adds a user to the signed-in admin's partner; the answer holds their one-time link to set
/// a password (shown this once).
#[server(endpoint = "team/add")]
pub async fn add_team_member(email: String, role: String) -> Result<AddedMember, AppError> {
    use crate::domain::{EmailAddress, FieldError, Role};
    use crate::store::accounts::CreatePartnerError;

    let (user, state) = super::require_admin().await?;
    let mut errors = Vec::new();
    let email = EmailAddress::parse(&email).map_err(|e| errors.push(e)).ok();
    let role = Role::parse(&role).map_err(|e| errors.push(e)).ok();
    let (Some(email), Some(role)) = (email, role) else { return Err(errors.into()) };
    let quotas = &state.settings.quotas;
    let actor = user.actor();
    let added = crate::service::accounts::add_user(
        &state.db,
        &user.account_id,
        &actor,
        &email,
        role,
        None,
        quotas.users,
        &state.settings.public_url,
    );
    let (id, link) = match added.await {
        Ok(Some((id, Some(link)))) => (id, link),
        Ok(_) => return Err(AppError::NotFound),
        Err(CreatePartnerError::EmailTaken(_)) => {
            return Err(FieldError::new("email", "is already used by another user").into());
        }
        Err(CreatePartnerError::LimitReached) => {
            return Err(AppError::LimitReached(crate::domain::Counted::Users.refusal(quotas)));
        }
        Err(CreatePartnerError::Other(e)) => return Err(e.into()),
    };
    tracing::info!(partner = %user.account_id, user = %id, by = %user.user_id, "added by an admin");
    let member = TeamMember { id, email: email.as_str().to_owned(), role, created_at: chrono::Utc::now() };
    Ok(AddedMember { member, link })
}

/// Removes one of the partner's users (their sessions end at once); refused for the last admin.
#[server(endpoint = "team/remove")]
pub async fn remove_team_member(id: String) -> Result<(), AppError> {
    let (user, state) = super::require_admin().await?;
    let id = crate::domain::UserId::parse(&id).map_err(|_| AppError::NotFound)?;
    crate::service::accounts::remove_user(&state.db, &user.account_id, &user.actor(), &id).await
}

/// Gives one of the partner's users another role; refused when it would leave no admin.
#[server(endpoint = "team/role")]
pub async fn set_team_role(id: String, role: String) -> Result<(), AppError> {
    let (user, state) = super::require_admin().await?;
    let role = crate::domain::Role::parse(&role)?;
    let id = crate::domain::UserId::parse(&id).map_err(|_| AppError::NotFound)?;
    crate::service::accounts::set_role(&state.db, &user.account_id, &user.actor(), &id, role).await
}
