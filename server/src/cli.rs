//! The operator's commands besides `serve`: migrate, partners, API keys. Each prints text for
//! people or, with `--json`, one JSON object for scripts.

use std::io::Read;

use anyhow::{Context, bail};
use app::domain::{Actor, ApiKeyName, EmailAddress, Environment, NewPassword, PartnerId, PartnerName, Role};
use app::store::accounts::CreatePartnerError;
use app::store::{self, Db};
use serde_json::json;

use crate::config::{ApiKeyCommand, EventCommand, PartnerCommand, UserCommand};

/// Opens the database and brings its schema up to date, as every command needs.
async fn open(database_url: &str) -> anyhow::Result<Db> {
    let db = Db::connect(database_url).await?;
    db.migrate().await?;
    Ok(db)
}

/// `portal migrate`.
pub async fn migrate(database_url: &str) -> anyhow::Result<()> {
    open(database_url).await?;
    crate::startup::migrate_sessions(database_url).await?;
    println!("The database is up to date.");
    Ok(())
}

/// `portal partner …`.
pub async fn partner(database_url: &str, command: PartnerCommand) -> anyhow::Result<()> {
    match command {
        PartnerCommand::Create { name, email, password_stdin, json } => {
            let name = PartnerName::parse(&name).map_err(|e| anyhow::anyhow!("--{e}"))?;
            let email = EmailAddress::parse(&email).map_err(|e| anyhow::anyhow!("--{e}"))?;
            let (password, generated) = new_password(password_stdin)?;
            let db = open(database_url).await?;
            let hash = app::auth::hash_password_off_thread(&password).await?;
            let (partner_id, _user) = match store::accounts::create_partner_with_user(&db, &name, &email, &hash).await {
                Ok(ids) => ids,
                Err(CreatePartnerError::EmailTaken(email)) => {
                    bail!("--email `{email}` is already used by another user")
                }
                // A new partner has no users to count against a limit.
                Err(e @ CreatePartnerError::LimitReached) => return Err(e.into()),
                Err(CreatePartnerError::Other(e)) => return Err(e),
            };
            let shown_password = generated.then(|| password.expose().to_owned());
            if json {
                println!("{}", json!({ "id": partner_id, "email": email, "password": shown_password }));
            } else {
                println!("Created partner {partner_id} ({name}).");
                println!("Sign in at /login with:");
                println!("  email:    {email}");
                match shown_password {
                    Some(password) => println!("  password: {password}"),
                    None => println!("  password: the one you gave"),
                }
            }
            Ok(())
        }
        PartnerCommand::List { json } => {
            let db = open(database_url).await?;
            let partners = store::accounts::list_partners(&db).await?;
            if json {
                println!("{}", serde_json::to_string(&partners)?);
            } else if partners.is_empty() {
                println!("No partners yet. Create one with `portal partner create --name NAME --email EMAIL`.");
            } else {
                for p in partners {
                    println!("{}  {}  ({} user{})", p.id, p.name, p.users, if p.users == 1 { "" } else { "s" });
                }
            }
            Ok(())
        }
    }
}

/// The password of a new user: read from standard input, or generated (then `true`).
fn new_password(from_stdin: bool) -> anyhow::Result<(NewPassword, bool)> {
    if !from_stdin {
        return Ok((app::auth::generate_new_password(), true));
    }
    let mut text = String::new();
    std::io::stdin().read_to_string(&mut text).context("could not read the password from standard input")?;
    // One trailing line break is how `echo` and here-strings end; it is not part of it.
    let text = text.strip_suffix('\n').map(|t| t.strip_suffix('\r').unwrap_or(t)).unwrap_or(&text);
    Ok((NewPassword::parse(text).map_err(|e| anyhow::anyhow!("the {e}"))?, false))
}

/// `portal user …`.
pub async fn user(database_url: &str, command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Add { partner, email, role, password_stdin, public_url, json } => {
            add_user(database_url, &partner, &email, &role, password_stdin, &public_url, json).await
        }
        UserCommand::ResetPassword { email, public_url, json } => {
            let email = EmailAddress::parse(&email).map_err(|e| anyhow::anyhow!("--{e}"))?;
            let db = open(database_url).await?;
            let Some(link) = app::service::accounts::reset_password_link(&db, &email, &public_url).await? else {
                bail!("--email `{email}`: no user signs in with it");
            };
            if json {
                println!("{}", json!({ "link": link.url, "expiresAt": link.expires_at }));
            } else {
                println!("A one-time link for {email} to set a new password (until {}):", link.expires_at.to_rfc3339());
                println!("{}", link.url);
            }
            Ok(())
        }
    }
}

async fn add_user(
    database_url: &str,
    partner: &str,
    email: &str,
    role: &str,
    password_stdin: bool,
    public_url: &url::Url,
    json: bool,
) -> anyhow::Result<()> {
    let partner = PartnerId::parse(partner).map_err(|e| anyhow::anyhow!("--partner {e}"))?;
    let email = EmailAddress::parse(email).map_err(|e| anyhow::anyhow!("--{e}"))?;
    let role = Role::parse(role).map_err(|e| anyhow::anyhow!("--{e}"))?;
    let password = if password_stdin { Some(new_password(true)?.0) } else { None };
    let db = open(database_url).await?;
    // The operator's own commands are not held to the partners' quotas.
    let added = app::service::accounts::add_user(
        &db,
        &partner,
        &Actor::Operator,
        &email,
        role,
        password.as_ref(),
        u32::MAX,
        public_url,
    );
    let (user, link) = match added.await {
        Ok(Some(added)) => added,
        Ok(None) => bail!("--partner {partner}: no such partner (see `portal partner list`)"),
        Err(CreatePartnerError::EmailTaken(email)) => bail!("--email `{email}` is already used by another user"),
        Err(e @ CreatePartnerError::LimitReached) => return Err(e.into()),
        Err(CreatePartnerError::Other(e)) => return Err(e),
    };
    if json {
        let (url, expires) = link.map(|l| (l.url, l.expires_at)).unzip();
        println!(
            "{}",
            json!({ "id": user, "partnerId": partner, "email": email, "role": role, "link": url, "linkExpiresAt": expires })
        );
    } else {
        println!("Added {email} ({}) to partner {partner}.", role.as_str());
        match link {
            Some(link) => {
                println!("  They set their password with this one-time link (until {}):", link.expires_at.to_rfc3339());
                println!("  {}", link.url);
            }
            None => println!("  password: the one you gave"),
        }
    }
    Ok(())
}

/// `portal api-key …`.
pub async fn api_key(database_url: &str, command: ApiKeyCommand) -> anyhow::Result<()> {
    let ApiKeyCommand::Create { partner, environment, name, role, json } = command;
    let partner = PartnerId::parse(&partner).map_err(|e| anyhow::anyhow!("--partner {e}"))?;
    let environment = Environment::parse(&environment).map_err(|e| anyhow::anyhow!("--environment {e}"))?;
    let name = ApiKeyName::parse(&name).map_err(|e| anyhow::anyhow!("--{e}"))?;
    let role = Role::parse(&role).map_err(|e| anyhow::anyhow!("--{e}"))?;
    let db = open(database_url).await?;
    let Some(row) = store::accounts::environment_partner(&db, &partner, environment).await? else {
        bail!("--partner {partner}: no such partner (see `portal partner list`)");
    };
    let created =
        app::service::accounts::create_api_key(&db, &row, environment, &Actor::Operator, &name, role, u32::MAX)
            .await?
            .context("the new key was not stored")?;
    let env = environment.as_str();
    if json {
        println!(
            "{}",
            json!({ "id": created.summary.id, "partnerId": partner, "environment": env, "key": created.key })
        );
    } else {
        println!("Created a {env} API key {} for partner {partner}. It is shown only this once:", created.summary.id);
        println!("{}", created.key);
    }
    Ok(())
}

/// `portal event …`.
pub async fn event(database_url: &str, command: EventCommand) -> anyhow::Result<()> {
    use app::domain::NewEvent;
    use app::store::events::Published;
    let EventCommand::Publish { partner, environment, event_type, status, data, id, json } = command;
    let data: serde_json::Value =
        serde_json::from_str(&data).map_err(|e| anyhow::anyhow!("--data is not JSON: {e}"))?;
    let event = NewEvent::parse(&partner, environment.as_deref(), &event_type, &status, data, id.as_deref()).map_err(
        |errors| {
            let text: Vec<String> = errors
                .iter()
                .map(|e| {
                    format!("--{} {}", if e.field == "partnerId" { "partner" } else { e.field.as_str() }, e.message)
                })
                .collect();
            anyhow::anyhow!("{}", text.join("; "))
        },
    )?;
    let db = open(database_url).await?;
    // No dispatcher here to wake: the portals' dispatchers hear of it through the database.
    let nobody = tokio::sync::Notify::new();
    let deliveries = match app::service::events::publish(&db, &nobody, &event).await? {
        Published::New { deliveries } | Published::Again { deliveries } => deliveries,
        Published::Conflict => {
            bail!("--id `{}` belongs to another partner's event, or to this partner's other environment", event.id)
        }
        Published::UnknownPartner => {
            bail!("--partner {partner}: no such partner (see `portal partner list`)")
        }
    };
    if json {
        println!("{}", json!({ "id": event.id, "deliveries": deliveries }));
    } else {
        println!("Published event {} to {deliveries} webhook(s).", event.id);
    }
    Ok(())
}
