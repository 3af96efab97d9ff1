//! A partner's people and keys: add, remove and re-role users, passwords (changed by their
//! owner, or set through a one-time link), create and revoke API keys. The portal holds
//! partners to the operator's quotas (`limit`); the operator's own commands pass `u32::MAX`.

use sha2::{Digest, Sha256};

use super::audit::note;
use crate::auth;
use crate::domain::{
    Actor, ApiKeyId, ApiKeyName, ApiKeySummary, AuditAction, CreatedApiKey, EmailAddress, Environment, FieldError,
    NewPassword, PASSWORD_LINK_HOURS, PartnerId, PasswordLink, Role, UserId,
};
use crate::error::AppError;
use crate::store::accounts::{self, CreatePartnerError, TeamChange};
use crate::store::{Db, api_keys, from_ms, now_ms};

/// Adds a user to `partner`, when it has fewer than `limit` users; `None` when there is no
/// such partner. With a `password` (the operator's `--password-stdin`) that is theirs; without,
/// they get a one-time link to set their own, returned here and shown once: nobody else ever
/// knows their password.
#[allow(clippy::too_many_arguments)]
pub async fn add_user(
    db: &Db,
    partner: &PartnerId,
    by: &Actor,
    email: &EmailAddress,
    role: Role,
    password: Option<&NewPassword>,
    limit: u32,
    public_url: &url::Url,
) -> Result<Option<(UserId, Option<PasswordLink>)>, CreatePartnerError> {
    // Without a password of their own, a hash that matches nothing, stored without any argon2
    // work: the account can't be signed in to until its link is used (and a sign-in attempt
    // costs the same as any other, see `auth::verify_password`).
    let hash = match password {
        Some(password) => auth::hash_password_off_thread(password).await?,
        None => auth::UNSET_PASSWORD_HASH.to_owned(),
    };
    let Some(user) = accounts::add_user(db, partner, email, role, &hash, limit).await? else {
        return Ok(None);
    };
    tracing::info!(partner = %partner, user = %user, role = role.as_str(), "user added");
    note(db, partner, by, AuditAction::UserAdded, &format!("{email} as {}", role.as_str())).await;
    let link = match password {
        Some(_) => None,
        None => Some(make_link(db, partner, by, &user, email.as_str(), public_url).await?),
    };
    Ok(Some((user, link)))
}

/// A new one-time link for `user` to set their password (their older link stops working).
async fn make_link(
    db: &Db,
    partner: &PartnerId,
    by: &Actor,
    user: &UserId,
    email: &str,
    public_url: &url::Url,
) -> anyhow::Result<PasswordLink> {
    let token = auth::generate_link_token();
    let expires_at = now_ms() + PASSWORD_LINK_HOURS * 3600 * 1000;
    accounts::create_password_link(db, user, &link_hash(&token), expires_at, &by.describe()).await?;
    note(db, partner, by, AuditAction::PasswordLinkMade, email).await;
    let mut url = public_url.join("/set-password").expect("a path joins any base URL");
    url.query_pairs_mut().append_pair("token", &token);
    Ok(PasswordLink { url: url.into(), expires_at: from_ms(expires_at) })
}

/// How a link's token is stored: its SHA-256, so the table holds no working link.
fn link_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// `portal user reset-password`: a one-time link for the user who signs in with `email`;
/// `None` when nobody does. Their password and sessions stay until the link is used.
pub async fn reset_password_link(
    db: &Db,
    email: &EmailAddress,
    public_url: &url::Url,
) -> anyhow::Result<Option<PasswordLink>> {
    let Some((user, partner)) = accounts::user_by_email(db, email).await? else { return Ok(None) };
    Ok(Some(make_link(db, &partner, &Actor::Operator, &user, email.as_str(), public_url).await?))
}

/// The address a live link sets the password of; [`AppError::NotFound`] for a link that was
/// used, replaced or ran out (the page says so rather than showing a form that can't work).
pub async fn password_link_email(db: &Db, token: &str) -> Result<String, AppError> {
    Ok(accounts::password_link(db, &link_hash(token)).await?.ok_or(AppError::NotFound)?.email)
}

/// Sets a password through a one-time link and spends it: the user and the session epoch to
/// sign them in under. The new password is checked (and the pair must match) before the link
/// is touched; a spent or expired link is [`AppError::NotFound`].
pub async fn set_password_with_link(
    db: &Db,
    token: &str,
    password: &str,
    confirm: &str,
) -> Result<(UserId, i64), AppError> {
    let password = checked_new_password(password, confirm)?;
    let hash = link_hash(token);
    let link = accounts::password_link(db, &hash).await?.ok_or(AppError::NotFound)?;
    let hashed = auth::hash_password_off_thread(&password).await?;
    let (user, epoch) = accounts::use_password_link(db, &hash, &hashed).await?.ok_or(AppError::NotFound)?;
    tracing::info!(user = %user, "password set through a one-time link");
    // Whoever held the link set it: the entry names the link's maker too.
    let subject = format!("{} (link made by {})", link.email, link.made_by);
    note(db, &link.partner, &Actor::User(link.email.clone()), AuditAction::PasswordSet, &subject).await;
    Ok((user, epoch))
}

/// A new password as typed twice: both fields' rules, named.
fn checked_new_password(password: &str, confirm: &str) -> Result<NewPassword, AppError> {
    let password = NewPassword::parse(password)?;
    if password.expose() != confirm {
        return Err(FieldError::new("confirm", "does not match the new password").into());
    }
    Ok(password)
}

/// A signed-in user changes their own password: `current` first (checked in one of argon2's
/// slots), then the new one twice. Every other session of theirs ends; the caller keeps this
/// one going under the returned epoch. A wrong current password changes nothing.
pub async fn change_password(
    db: &Db,
    partner: &PartnerId,
    user: &UserId,
    email: &str,
    current: String,
    password: &str,
    confirm: &str,
) -> Result<i64, AppError> {
    let password = checked_new_password(password, confirm)?;
    let stored = accounts::password_hash(db, user).await?.ok_or(AppError::Unauthorized)?;
    if !auth::argon2_off_thread(move || auth::verify_password(&current, Some(&stored))).await? {
        return Err(FieldError::new("current", "is not your current password").into());
    }
    let hashed = auth::hash_password_off_thread(&password).await?;
    let epoch = accounts::set_password(db, user, &hashed).await?.ok_or(AppError::Unauthorized)?;
    tracing::info!(user = %user, "password changed; other sessions ended");
    note(db, partner, &Actor::User(email.to_owned()), AuditAction::PasswordChanged, email).await;
    Ok(epoch)
}

/// Removes a user of the partner: their sessions end at once. The last admin stays.
pub async fn remove_user(db: &Db, partner: &PartnerId, by: &Actor, user: &UserId) -> Result<(), AppError> {
    let email = team_change(accounts::remove_user(db, partner, user).await?, "remove")?;
    tracing::info!(partner = %partner, user = %user, "user removed");
    note(db, partner, by, AuditAction::UserRemoved, &email).await;
    Ok(())
}

/// Gives a user of the partner another role, at once. The last admin stays an admin.
pub async fn set_role(db: &Db, partner: &PartnerId, by: &Actor, user: &UserId, role: Role) -> Result<(), AppError> {
    let email = team_change(accounts::set_role(db, partner, user, role).await?, "demote")?;
    tracing::info!(partner = %partner, user = %user, role = role.as_str(), "role changed");
    note(db, partner, by, AuditAction::RoleChanged, &format!("{email} to {}", role.as_str())).await;
    Ok(())
}

fn team_change(change: TeamChange, verb: &str) -> Result<String, AppError> {
    match change {
        TeamChange::Done(email) => Ok(email),
        TeamChange::NoSuchUser => Err(AppError::NotFound),
        TeamChange::LastAdmin => Err(AppError::Conflict(format!(
            "This is your team's last admin: make someone else an admin first, then {verb} this one."
        ))),
    }
}

/// A new API key for `partner` (the key itself shown only in this answer; stored hashed), when
/// it has fewer than `limit` keys in use; `None` when it has that many. `environment` is the
/// partner row's, and names the key's prefix (`whp_live_`, `whp_sandbox_`).
pub async fn create_api_key(
    db: &Db,
    partner: &PartnerId,
    environment: Environment,
    by: &Actor,
    name: &ApiKeyName,
    role: Role,
    limit: u32,
) -> anyhow::Result<Option<CreatedApiKey>> {
    let key = auth::generate_api_key(environment);
    let hash = auth::hash_api_key(&key);
    let (prefix, created_by) = (key.display_prefix(), by.describe());
    let new = api_keys::NewApiKey { name, role, prefix: &prefix, key_hash: &hash, created_by: &created_by };
    let Some(summary) = api_keys::create(db, partner, &new, limit).await? else {
        return Ok(None);
    };
    tracing::info!(partner = %partner, key = %summary.id, "API key created");
    note(
        db,
        partner,
        by,
        AuditAction::ApiKeyCreated,
        &format!("{} ({}…, {})", name.as_str(), summary.prefix, role.as_str()),
    )
    .await;
    Ok(Some(CreatedApiKey { summary, key: key.expose().to_owned() }))
}

/// Revokes one of `partner`'s keys; it stops working at once. `None` when it has no such key.
pub async fn revoke_api_key(
    db: &Db,
    partner: &PartnerId,
    by: &Actor,
    id: &ApiKeyId,
) -> anyhow::Result<Option<ApiKeySummary>> {
    let revoked = api_keys::revoke(db, partner, id).await?;
    if let Some(key) = &revoked {
        tracing::info!(partner = %partner, key = %id, "API key revoked");
        note(db, partner, by, AuditAction::ApiKeyRevoked, &format!("{} ({}…)", key.name, key.prefix)).await;
    }
    Ok(revoked)
}
