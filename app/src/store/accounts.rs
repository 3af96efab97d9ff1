//! Partners and their users.

use anyhow::Context;
use sqlx::Row;

use super::{Db, is_unique_violation, now_ms};
use crate::domain::{EmailAddress, PartnerId, PartnerName, Role, SignedInUser, TeamMember, UserId};

/// Why a partner could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreatePartnerError {
    /// Another user already signs in with this email.
    #[error("email `{0}` is already used by another user")]
    EmailTaken(EmailAddress),
    /// The partner has as many users as it may.
    #[error("the partner has reached its limit of users")]
    LimitReached,
    /// The database failed.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// A partner and its first user, made together or not at all.
#[tracing::instrument(skip_all, fields(email = %email))]
pub async fn create_partner_with_user(
    db: &Db,
    name: &PartnerName,
    email: &EmailAddress,
    password_hash: &str,
) -> Result<(PartnerId, UserId), CreatePartnerError> {
    let partner_id = PartnerId::generate();
    let user_id = UserId::generate();
    let now = now_ms();
    let mut tx = db.begin_write().await?;
    sqlx::query("INSERT INTO partners (id, name, created_at) VALUES ($1, $2, $3)")
        .bind(partner_id.as_str())
        .bind(name.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await
        .context("could not insert the partner")?;
    let inserted =
        sqlx::query("INSERT INTO users (id, partner_id, email, password_hash, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(user_id.as_str())
            .bind(partner_id.as_str())
            .bind(email.as_str())
            .bind(password_hash)
            .bind(now)
            .execute(&mut *tx)
            .await;
    match inserted {
        Err(e) if is_unique_violation(&e) => return Err(CreatePartnerError::EmailTaken(email.clone())),
        other => other.context("could not insert the user")?,
    };
    tx.commit().await.context("could not commit the new partner")?;
    Ok((partner_id, user_id))
}

/// What a login needs to know about an email: the user and its password hash.
pub struct LoginRecord {
    /// The user the email belongs to.
    pub user_id: UserId,
    /// Its argon2id hash.
    pub password_hash: String,
}

/// The user who signs in with `email`, if any. Not scoped by partner: the email is what tells
/// us the partner.
#[tracing::instrument(skip_all)]
pub async fn find_login(db: &Db, email: &EmailAddress) -> anyhow::Result<Option<LoginRecord>> {
    let row = sqlx::query("SELECT id, password_hash FROM users WHERE email = $1")
        .bind(email.as_str())
        .fetch_optional(db.pool())
        .await
        .context("could not look the user up")?;
    row.map(|row| {
        Ok(LoginRecord {
            user_id: UserId::parse(&row.try_get::<String, _>("id")?)?,
            password_hash: row.try_get("password_hash")?,
        })
    })
    .transpose()
}

/// The signed-in user behind a session's user id, with its partner; `None` once the user is gone.
#[tracing::instrument(skip_all, fields(user = %user_id))]
pub async fn signed_in_user(db: &Db, user_id: &UserId) -> anyhow::Result<Option<SignedInUser>> {
    let row = sqlx::query(
        "SELECT u.email, u.role, p.id AS partner_id, p.name AS partner_name \
         FROM users u JOIN partners p ON p.id = u.partner_id WHERE u.id = $1",
    )
    .bind(user_id.as_str())
    .fetch_optional(db.pool())
    .await
    .context("could not load the signed-in user")?;
    row.map(|row| {
        Ok(SignedInUser {
            partner_id: PartnerId::parse(&row.try_get::<String, _>("partner_id")?)?,
            partner_name: row.try_get("partner_name")?,
            user_id: user_id.clone(),
            email: row.try_get("email")?,
            // An unknown stored role grants the least.
            role: Role::parse(&row.try_get::<String, _>("role")?).unwrap_or(Role::Viewer),
        })
    })
    .transpose()
}

/// Adds a user to an existing partner. `Ok(None)` when the partner does not exist;
/// [`CreatePartnerError::LimitReached`] when it already has `limit` users.
#[tracing::instrument(skip_all, fields(partner = %partner, email = %email))]
pub async fn add_user(
    db: &Db,
    partner: &PartnerId,
    email: &EmailAddress,
    role: Role,
    password_hash: &str,
    limit: u32,
) -> Result<Option<UserId>, CreatePartnerError> {
    let user_id = UserId::generate();
    let mut tx = db.begin_write().await?;
    if !super::quotas::has_room(&mut tx, db.backend(), partner, crate::domain::Counted::Users, limit).await? {
        return Err(CreatePartnerError::LimitReached);
    }
    let inserted = sqlx::query(
        "INSERT INTO users (id, partner_id, email, password_hash, role, created_at) \
         SELECT $1, id, $2, $3, $4, $5 FROM partners WHERE id = $6",
    )
    .bind(user_id.as_str())
    .bind(email.as_str())
    .bind(password_hash)
    .bind(role.as_str())
    .bind(now_ms())
    .bind(partner.as_str())
    .execute(&mut *tx)
    .await;
    match inserted {
        Err(e) if is_unique_violation(&e) => Err(CreatePartnerError::EmailTaken(email.clone())),
        Err(e) => Err(anyhow::Error::from(e).context("could not insert the user").into()),
        Ok(done) => {
            tx.commit().await.context("could not commit the user")?;
            Ok((done.rows_affected() > 0).then_some(user_id))
        }
    }
}

/// The partner's users, oldest first.
pub async fn team(db: &Db, partner: &PartnerId) -> anyhow::Result<Vec<TeamMember>> {
    let rows =
        sqlx::query("SELECT id, email, role, created_at FROM users WHERE partner_id = $1 ORDER BY created_at, id")
            .bind(partner.as_str())
            .fetch_all(db.pool())
            .await
            .context("could not list the users")?;
    rows.iter()
        .map(|row| {
            Ok(TeamMember {
                id: UserId::parse(&row.try_get::<String, _>("id")?)?,
                email: row.try_get("email")?,
                role: Role::parse(&row.try_get::<String, _>("role")?).unwrap_or(Role::Viewer),
                created_at: super::from_ms(row.try_get("created_at")?),
            })
        })
        .collect()
}

/// A partner as the operator's `portal partner list` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PartnerSummary {
    /// The partner.
    pub id: PartnerId,
    /// Its display name.
    pub name: String,
    /// How many users sign in for it.
    pub users: i64,
}

/// Every partner, oldest first. For the operator, not for partners.
#[tracing::instrument(skip_all)]
pub async fn list_partners(db: &Db) -> anyhow::Result<Vec<PartnerSummary>> {
    let rows = sqlx::query(
        "SELECT p.id, p.name, (SELECT COUNT(*) FROM users u WHERE u.partner_id = p.id) AS users \
         FROM partners p ORDER BY p.created_at, p.id",
    )
    .fetch_all(db.pool())
    .await
    .context("could not list partners")?;
    rows.into_iter()
        .map(|row| {
            Ok(PartnerSummary {
                id: PartnerId::parse(&row.try_get::<String, _>("id")?)?,
                name: row.try_get("name")?,
                users: row.try_get("users")?,
            })
        })
        .collect()
}

/// A partner's display name, or `None` when there is no such partner.
#[tracing::instrument(skip_all, fields(partner = %partner))]
pub async fn partner_name(db: &Db, partner: &PartnerId) -> anyhow::Result<Option<String>> {
    let row = sqlx::query("SELECT name FROM partners WHERE id = $1")
        .bind(partner.as_str())
        .fetch_optional(db.pool())
        .await
        .context("could not look the partner up")?;
    row.map(|row| row.try_get("name").map_err(anyhow::Error::from)).transpose()
}
