//! The partner's team: its users and their roles. Admins add people; each gets a generated
//! password, shown once, to hand over.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::AppError;
use crate::domain::TeamMember;

/// A user just added, with the password to hand over (shown this once).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddedMember {
    /// The new user.
    pub member: TeamMember,
    /// Their first password.
    pub password: String,
}

/// The partner's users, oldest first.
#[server(endpoint = "team/list")]
pub async fn list_team() -> Result<Vec<TeamMember>, AppError> {
    let (user, state) = super::require_admin().await?;
    Ok(crate::store::accounts::team(&state.db, &user.partner_id).await?)
}

/// Adds a user to the signed-in admin's partner with a generated password.
#[server(endpoint = "team/add")]
pub async fn add_team_member(email: String, role: String) -> Result<AddedMember, AppError> {
    use crate::domain::{EmailAddress, FieldError, Role};
    use crate::store::accounts::CreatePartnerError;

    let (user, state) = super::require_admin().await?;
    let mut errors = Vec::new();
    let email = EmailAddress::parse(&email).map_err(|e| errors.push(e)).ok();
    let role = Role::parse(&role).map_err(|e| errors.push(e)).ok();
    let (Some(email), Some(role)) = (email, role) else { return Err(errors.into()) };
    let password = crate::auth::generate_new_password();
    let quotas = &state.settings.quotas;
    let added = crate::service::accounts::add_user(&state.db, &user.partner_id, &email, role, &password, quotas.users);
    let id = match added.await {
        Ok(Some(id)) => id,
        Ok(None) => return Err(AppError::NotFound),
        Err(CreatePartnerError::EmailTaken(_)) => {
            return Err(FieldError::new("email", "is already used by another user").into());
        }
        Err(CreatePartnerError::LimitReached) => {
            return Err(AppError::LimitReached(crate::domain::Counted::Users.refusal(quotas)));
        }
        Err(CreatePartnerError::Other(e)) => return Err(e.into()),
    };
    tracing::info!(partner = %user.partner_id, user = %id, by = %user.user_id, "added by an admin");
    let member = TeamMember { id, email: email.as_str().to_owned(), role, created_at: chrono::Utc::now() };
    Ok(AddedMember { member, password: password.expose().to_owned() })
}
