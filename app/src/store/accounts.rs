//! Partners and their users.

use anyhow::Context;
use sqlx::Row;

use super::{Db, is_unique_violation, now_ms};
use crate::domain::{EmailAddress, Environment, PartnerId, PartnerName, Role, SignedInUser, TeamMember, UserId};

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
    /// The session epoch a session started now belongs to (see [`signed_in_user`]).
    pub session_epoch: i64,
}

/// The user who signs in with `email`, if any. Not scoped by partner: the email is what tells
/// us the partner.
#[tracing::instrument(skip_all)]
pub async fn find_login(db: &Db, email: &EmailAddress) -> anyhow::Result<Option<LoginRecord>> {
    let row = sqlx::query("SELECT id, password_hash, session_epoch FROM users WHERE email = $1")
        .bind(email.as_str())
        .fetch_optional(db.pool())
        .await
        .context("could not look the user up")?;
    row.map(|row| {
        Ok(LoginRecord {
            user_id: UserId::parse(&row.try_get::<String, _>("id")?)?,
            password_hash: row.try_get("password_hash")?,
            session_epoch: row.try_get("session_epoch")?,
        })
    })
    .transpose()
}

/// The signed-in user behind a session's user id and epoch, with its account and the partner
/// row of `environment` (the sandbox is made on first use); `None` once the user is gone or
/// their password changed since the session began (a newer epoch).
#[tracing::instrument(skip_all, fields(user = %user_id))]
pub async fn signed_in_user(
    db: &Db,
    user_id: &UserId,
    epoch: i64,
    environment: Environment,
) -> anyhow::Result<Option<SignedInUser>> {
    let row = sqlx::query(
        "SELECT u.email, u.role, p.id AS partner_id, p.name AS partner_name, s.id AS sandbox_id \
         FROM users u JOIN partners p ON p.id = u.partner_id LEFT JOIN partners s ON s.production_id = p.id \
         WHERE u.id = $1 AND u.session_epoch = $2",
    )
    .bind(user_id.as_str())
    .bind(epoch)
    .fetch_optional(db.pool())
    .await
    .context("could not load the signed-in user")?;
    let Some(row) = row else { return Ok(None) };
    let account_id = PartnerId::parse(&row.try_get::<String, _>("partner_id")?)?;
    let partner_id = match environment {
        Environment::Production => account_id.clone(),
        Environment::Sandbox => match row.try_get::<Option<String>, _>("sandbox_id")? {
            Some(id) => PartnerId::parse(&id)?,
            None => sandbox_of(db, &account_id).await?.context("the user's partner is gone")?,
        },
    };
    Ok(Some(SignedInUser {
        partner_id,
        environment,
        account_id,
        partner_name: row.try_get("partner_name")?,
        user_id: user_id.clone(),
        email: row.try_get("email")?,
        // An unknown stored role grants the least.
        role: Role::parse(&row.try_get::<String, _>("role")?).unwrap_or(Role::Viewer),
    }))
}

/// The partner row that holds `account`'s data in `environment`: the account itself for
/// production, its sandbox (made now if it has none yet) for sandbox. `None` when `account` is
/// not a partner's account (unknown, or itself a sandbox).
#[tracing::instrument(skip_all, fields(account = %account, environment = environment.as_str()))]
pub async fn environment_partner(
    db: &Db,
    account: &PartnerId,
    environment: Environment,
) -> anyhow::Result<Option<PartnerId>> {
    match environment {
        Environment::Sandbox => sandbox_of(db, account).await,
        Environment::Production => {
            let row = sqlx::query("SELECT id FROM partners WHERE id = $1 AND environment = 'production'")
                .bind(account.as_str())
                .fetch_optional(db.pool())
                .await
                .context("could not look the partner up")?;
            Ok(row.map(|_| account.clone()))
        }
    }
}

/// `account`'s sandbox, made on first use (its name is the account's); `None` when `account`
/// is not a production partner.
async fn sandbox_of(db: &Db, account: &PartnerId) -> anyhow::Result<Option<PartnerId>> {
    let find = || async {
        let row = sqlx::query("SELECT id FROM partners WHERE production_id = $1")
            .bind(account.as_str())
            .fetch_optional(db.pool())
            .await
            .context("could not look the sandbox up")?;
        row.map(|row| anyhow::Ok(PartnerId::parse(&row.try_get::<String, _>("id")?)?)).transpose()
    };
    if let Some(id) = find().await? {
        return Ok(Some(id));
    }
    // Two first uses at once: the unique index keeps one, and both read it back.
    sqlx::query(
        "INSERT INTO partners (id, name, created_at, environment, production_id) \
         SELECT $1, name, $2, 'sandbox', id FROM partners WHERE id = $3 AND environment = 'production' \
         ON CONFLICT DO NOTHING",
    )
    .bind(PartnerId::generate().as_str())
    .bind(now_ms())
    .bind(account.as_str())
    .execute(db.writer())
    .await
    .context("could not make the sandbox")?;
    let made = find().await?;
    if let Some(id) = &made {
        tracing::info!(sandbox = %id, "sandbox made on first use");
    }
    Ok(made)
}

/// What a partner row is: its account's name, its environment and its account (itself for
/// production); `None` when there is no such row.
#[tracing::instrument(skip_all, fields(partner = %partner))]
pub async fn partner_environment(
    db: &Db,
    partner: &PartnerId,
) -> anyhow::Result<Option<(String, Environment, PartnerId)>> {
    let row =
        sqlx::query("SELECT name, environment, COALESCE(production_id, id) AS account FROM partners WHERE id = $1")
            .bind(partner.as_str())
            .fetch_optional(db.pool())
            .await
            .context("could not look the partner up")?;
    row.map(|row| {
        let environment = Environment::parse(&row.try_get::<String, _>("environment")?).map_err(anyhow::Error::msg)?;
        Ok((row.try_get("name")?, environment, PartnerId::parse(&row.try_get::<String, _>("account")?)?))
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
        "INSERT INTO users (id, partner_id, email, password_hash, role, created_at, activated) \
         SELECT $1, id, $2, $3, $4, $5, $7 FROM partners WHERE id = $6 AND environment = 'production'",
    )
    .bind(user_id.as_str())
    .bind(email.as_str())
    .bind(password_hash)
    .bind(role.as_str())
    .bind(now_ms())
    .bind(partner.as_str())
    .bind(i64::from(password_hash != crate::auth::UNSET_PASSWORD_HASH))
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
         FROM partners p WHERE p.environment = 'production' ORDER BY p.created_at, p.id",
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

/// What became of a change to a partner's team.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TeamChange {
    /// Done; the user's sign-in address.
    Done(String),
    /// The partner has no such user.
    NoSuchUser,
    /// The user is the partner's last admin: a partner always keeps one.
    LastAdmin,
}

/// Removes `user` from `partner`, unless they are its last admin. Their sessions end with the
/// row (a session is only as good as [`signed_in_user`]), and so do their password links.
#[tracing::instrument(skip_all, fields(partner = %partner, user = %user))]
pub async fn remove_user(db: &Db, partner: &PartnerId, user: &UserId) -> anyhow::Result<TeamChange> {
    change_team_member(db, partner, user, None).await
}

/// Gives `user` of `partner` the role `role`, unless that demotes its last admin.
#[tracing::instrument(skip_all, fields(partner = %partner, user = %user))]
pub async fn set_role(db: &Db, partner: &PartnerId, user: &UserId, role: Role) -> anyhow::Result<TeamChange> {
    change_team_member(db, partner, user, Some(role)).await
}

/// Removes (`role` is `None`) or re-roles a user, keeping at least one admin: in one write
/// transaction, with the partner's row locked on PostgreSQL so two admins removing each other
/// at once can't both succeed.
async fn change_team_member(
    db: &Db,
    partner: &PartnerId,
    user: &UserId,
    role: Option<Role>,
) -> anyhow::Result<TeamChange> {
    let mut tx = db.begin_write().await?;
    if db.backend() == super::Backend::Postgres {
        sqlx::query("SELECT id FROM partners WHERE id = $1 FOR NO KEY UPDATE")
            .bind(partner.as_str())
            .fetch_optional(&mut *tx)
            .await
            .context("could not lock the partner")?;
    }
    let Some(row) = sqlx::query("SELECT email, role, activated FROM users WHERE id = $1 AND partner_id = $2")
        .bind(user.as_str())
        .bind(partner.as_str())
        .fetch_optional(&mut *tx)
        .await
        .context("could not look the user up")?
    else {
        return Ok(TeamChange::NoSuchUser);
    };
    let email: String = row.try_get("email")?;
    let was_admin = Role::parse(&row.try_get::<String, _>("role")?).is_ok_and(|r| r == Role::Admin);
    // Only admins who can sign in count: one whose link is still unused (perhaps never will
    // be) keeps nobody in charge.
    let signs_in = row.try_get::<i64, _>("activated")? != 0;
    if was_admin && signs_in && role != Some(Role::Admin) {
        let admins: i64 =
            sqlx::query("SELECT COUNT(*) AS n FROM users WHERE partner_id = $1 AND role = 'admin' AND activated = 1")
                .bind(partner.as_str())
                .fetch_one(&mut *tx)
                .await
                .context("could not count the admins")?
                .try_get("n")?;
        if admins <= 1 {
            return Ok(TeamChange::LastAdmin);
        }
    }
    let statement = match role {
        None => sqlx::query("DELETE FROM users WHERE id = $1 AND partner_id = $2")
            .bind(user.as_str())
            .bind(partner.as_str()),
        Some(role) => sqlx::query("UPDATE users SET role = $3 WHERE id = $1 AND partner_id = $2")
            .bind(user.as_str())
            .bind(partner.as_str())
            .bind(role.as_str()),
    };
    statement.execute(&mut *tx).await.context("could not change the user")?;
    tx.commit().await.context("could not commit the team change")?;
    Ok(TeamChange::Done(email))
}

/// Stores a new password hash for `user` and ends their other sessions (the epoch moves on);
/// any password link they had is spent. The new epoch, for the session that made the change.
#[tracing::instrument(skip_all, fields(user = %user))]
pub async fn set_password(db: &Db, user: &UserId, password_hash: &str) -> anyhow::Result<Option<i64>> {
    let mut tx = db.begin_write().await?;
    let epoch = sqlx::query(
        "UPDATE users SET password_hash = $1, session_epoch = session_epoch + 1 WHERE id = $2 RETURNING session_epoch",
    )
    .bind(password_hash)
    .bind(user.as_str())
    .fetch_optional(&mut *tx)
    .await
    .context("could not store the password")?
    .map(|row| row.try_get::<i64, _>("session_epoch"))
    .transpose()?;
    sqlx::query("DELETE FROM password_links WHERE user_id = $1")
        .bind(user.as_str())
        .execute(&mut *tx)
        .await
        .context("could not spend the password links")?;
    tx.commit().await.context("could not commit the password")?;
    Ok(epoch)
}

/// The password hash `user` signs in with, to check their current password against.
pub async fn password_hash(db: &Db, user: &UserId) -> anyhow::Result<Option<String>> {
    let row = sqlx::query("SELECT password_hash FROM users WHERE id = $1")
        .bind(user.as_str())
        .fetch_optional(db.pool())
        .await
        .context("could not look the user up")?;
    Ok(row.map(|row| row.try_get("password_hash")).transpose()?)
}

/// Who signs in with `email`, and for which partner: for the operator's commands.
pub async fn user_by_email(db: &Db, email: &EmailAddress) -> anyhow::Result<Option<(UserId, PartnerId)>> {
    let row = sqlx::query("SELECT id, partner_id FROM users WHERE email = $1")
        .bind(email.as_str())
        .fetch_optional(db.pool())
        .await
        .context("could not look the user up")?;
    row.map(|row| {
        Ok((
            UserId::parse(&row.try_get::<String, _>("id")?)?,
            PartnerId::parse(&row.try_get::<String, _>("partner_id")?)?,
        ))
    })
    .transpose()
}

/// Stores a one-time link (the SHA-256 of its token) for `user` until `expires_at` (ms); an
/// older link of theirs stops working.
pub async fn create_password_link(
    db: &Db,
    user: &UserId,
    token_hash: &str,
    expires_at: i64,
    made_by: &str,
) -> anyhow::Result<()> {
    let mut tx = db.begin_write().await?;
    sqlx::query("DELETE FROM password_links WHERE user_id = $1")
        .bind(user.as_str())
        .execute(&mut *tx)
        .await
        .context("could not replace the password link")?;
    sqlx::query(
        "INSERT INTO password_links (token_hash, user_id, created_at, expires_at, made_by) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(token_hash)
    .bind(user.as_str())
    .bind(now_ms())
    .bind(expires_at)
    .bind(made_by)
    .execute(&mut *tx)
    .await
    .context("could not store the password link")?;
    tx.commit().await.context("could not commit the password link")?;
    Ok(())
}

/// What a live link (by its token's hash) is for; the link stays unspent.
pub struct LinkFor {
    /// The user whose password it sets.
    pub user: UserId,
    /// Their partner.
    pub partner: PartnerId,
    /// Their sign-in address.
    pub email: String,
    /// Who made the link, as the audit log names them.
    pub made_by: String,
}

/// What a live link (by its token's hash) is for; the link stays unspent.
pub async fn password_link(db: &Db, token_hash: &str) -> anyhow::Result<Option<LinkFor>> {
    let row = sqlx::query(
        "SELECT u.id, u.partner_id, u.email, l.made_by FROM password_links l JOIN users u ON u.id = l.user_id \
         WHERE l.token_hash = $1 AND l.expires_at > $2",
    )
    .bind(token_hash)
    .bind(now_ms())
    .fetch_optional(db.pool())
    .await
    .context("could not look the password link up")?;
    row.map(|row| {
        Ok(LinkFor {
            user: UserId::parse(&row.try_get::<String, _>("id")?)?,
            partner: PartnerId::parse(&row.try_get::<String, _>("partner_id")?)?,
            email: row.try_get("email")?,
            made_by: row.try_get("made_by")?,
        })
    })
    .transpose()
}

/// Spends a live link, setting its user's password to `password_hash`: the user and their new
/// session epoch, or `None` when the link was spent, replaced or ran out meanwhile.
pub async fn use_password_link(
    db: &Db,
    token_hash: &str,
    password_hash: &str,
) -> anyhow::Result<Option<(UserId, i64)>> {
    let mut tx = db.begin_write().await?;
    let Some(row) =
        sqlx::query("DELETE FROM password_links WHERE token_hash = $1 AND expires_at > $2 RETURNING user_id")
            .bind(token_hash)
            .bind(now_ms())
            .fetch_optional(&mut *tx)
            .await
            .context("could not spend the password link")?
    else {
        return Ok(None);
    };
    let user = UserId::parse(&row.try_get::<String, _>("user_id")?)?;
    let epoch: i64 = sqlx::query(
        "UPDATE users SET password_hash = $1, session_epoch = session_epoch + 1, activated = 1 WHERE id = $2 \
         RETURNING session_epoch",
    )
    .bind(password_hash)
    .bind(user.as_str())
    .fetch_one(&mut *tx)
    .await
    .context("could not store the password")?
    .try_get("session_epoch")?;
    tx.commit().await.context("could not commit the password")?;
    Ok(Some((user, epoch)))
}

/// Deletes links past their time; how many went.
pub async fn prune_password_links(db: &Db, now: i64) -> anyhow::Result<u64> {
    let done = sqlx::query("DELETE FROM password_links WHERE expires_at <= $1")
        .bind(now)
        .execute(db.writer())
        .await
        .context("could not delete expired password links")?;
    Ok(done.rows_affected())
}
