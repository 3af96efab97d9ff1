//! The database: one pool over SQLite (the embedded default) or PostgreSQL, picked by the URL.
//!
//! Queries are written once, in SQL both accept, and run through sqlx's `Any` driver; the few
//! places where the two differ (claiming deliveries) ask [`Db::backend`]. Every function that
//! touches a partner's rows takes the [`PartnerId`](crate::domain::PartnerId) first.

pub mod accounts;
pub mod alerts;
pub mod api_keys;
pub mod deliveries;
pub mod log;
pub mod throttle;
pub mod webhooks;

use std::str::FromStr;

use anyhow::Context;
use chrono::{DateTime, TimeZone, Utc};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions, Executor};

/// The migrations in `migrations/`, compiled into the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// Which database a [`Db`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// One file, one process.
    Sqlite,
    /// Several processes may share it.
    Postgres,
}

impl Backend {
    /// The backend a `DATABASE_URL` names, or an error that quotes the scheme.
    pub fn of_url(url: &str) -> anyhow::Result<Self> {
        let scheme = url.split(':').next().unwrap_or_default();
        match scheme {
            "sqlite" => Ok(Self::Sqlite),
            "postgres" | "postgresql" => Ok(Self::Postgres),
            _ => anyhow::bail!("DATABASE_URL must start with sqlite: or postgres:, not `{scheme}:`"),
        }
    }
}

/// A connection pool and the backend behind it. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
    /// Seals webhook secrets before they are stored and opens them when read.
    secrets: crate::crypto::SecretBox,
}

impl Db {
    /// Connects to `url`. For SQLite the file is created when missing and put in WAL mode, so
    /// that readers don't wait for the dispatcher's writes.
    #[tracing::instrument(skip_all, fields(backend))]
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of_url(url)?;
        tracing::Span::current().record("backend", tracing::field::debug(backend));
        let url = if backend == Backend::Sqlite { prepare_sqlite_file(url)? } else { url.to_owned() };
        let options = AnyConnectOptions::from_str(&url)
            .with_context(|| format!("DATABASE_URL is not a valid {backend:?} URL"))?
            .disable_statement_logging();
        let pool = AnyPoolOptions::new()
            .max_connections(match backend {
                // SQLite writes one at a time anyway; a few readers are plenty.
                Backend::Sqlite => 8,
                Backend::Postgres => 16,
            })
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        conn.execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .context("could not open the database")?;
        let secrets = crate::crypto::SecretBox::for_database(&url)?;
        Ok(Self { pool, backend, secrets })
    }

    /// Brings the schema up to date, and seals any webhook secret stored in the clear (by a
    /// version from before secrets were sealed); safe to run at every start.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        MIGRATOR.run(&self.pool).await.context("could not apply the database migrations")?;
        let sealed = webhooks::seal_plain_secrets(self).await?;
        if sealed > 0 {
            tracing::info!(webhooks = sealed, "sealed webhook secrets that were stored in the clear");
        }
        Ok(())
    }

    /// Seals and opens webhook secrets.
    pub fn secrets(&self) -> &crate::crypto::SecretBox {
        &self.secrets
    }

    /// The pool, for the store's queries.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Tells every dispatcher on the database that deliveries fell due now. On PostgreSQL a
    /// `NOTIFY`, delivered when `conn`'s transaction commits, wakes the dispatchers of all
    /// processes at once; SQLite has one process, which the caller wakes in memory.
    pub async fn announce_work(&self, conn: &mut sqlx::AnyConnection) -> anyhow::Result<()> {
        if self.backend == Backend::Postgres {
            sqlx::query(&format!("NOTIFY {WORK_CHANNEL}"))
                .execute(conn)
                .await
                .context("could not announce new deliveries")?;
        }
        Ok(())
    }
}

/// The file a SQLite URL names; `None` for an in-memory database (or a URL naming no file).
pub fn sqlite_file(url: &str) -> Option<&std::path::Path> {
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && path != ":memory:").then(|| std::path::Path::new(path))
}

/// `$first, $first+1, …`: `count` numbered placeholders, for a list bound one value each.
pub fn placeholders(first: usize, count: usize) -> String {
    (first..first + count).map(|n| format!("${n}")).collect::<Vec<_>>().join(", ")
}

/// The PostgreSQL channel on which new due deliveries are announced.
pub const WORK_CHANNEL: &str = "portal_work";

/// Makes a SQLite URL open-or-create (`mode=rwc`) unless it names a mode, and creates the
/// file's folder, so a first start needs nothing prepared.
fn prepare_sqlite_file(url: &str) -> anyhow::Result<String> {
    let query = url.split_once('?').map_or("", |(_, q)| q);
    if let Some(dir) = sqlite_file(url).and_then(|p| p.parent()).filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("could not create the database folder {}", dir.display()))?;
    }
    Ok(if query.split('&').any(|p| p.starts_with("mode=")) {
        url.to_owned()
    } else if query.is_empty() {
        format!("{url}?mode=rwc")
    } else {
        format!("{url}&mode=rwc")
    })
}

/// Now, as the store keeps times: milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// A stored time back as a date.
pub fn from_ms(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// A flag as the store keeps it: BIGINT 0 or 1 (see the first migration for why).
pub fn flag(value: bool) -> i64 {
    i64::from(value)
}

/// A stored flag back as a bool.
pub fn get_flag(row: &sqlx::any::AnyRow, column: &str) -> Result<bool, sqlx::Error> {
    use sqlx::Row;
    Ok(row.try_get::<i64, _>(column)? != 0)
}

/// Whether an error is the database refusing a duplicate in a UNIQUE column.
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_follows_the_scheme() {
        assert_eq!(Backend::of_url("sqlite://data/portal.db").unwrap(), Backend::Sqlite);
        assert_eq!(Backend::of_url("postgres://localhost/x").unwrap(), Backend::Postgres);
        assert_eq!(Backend::of_url("postgresql://localhost/x").unwrap(), Backend::Postgres);
        let err = Backend::of_url("mysql://localhost/x").unwrap_err().to_string();
        assert!(err.contains("`mysql:`"), "{err}");
    }

    #[test]
    fn sqlite_urls_open_or_create() {
        let dir = std::env::temp_dir().join(format!("portal-url-test-{}", std::process::id()));
        let url = format!("sqlite://{}/sub/p.db", dir.display());
        assert_eq!(prepare_sqlite_file(&url).unwrap(), format!("{url}?mode=rwc"));
        assert!(dir.join("sub").is_dir());
        let with_query = format!("{url}?cache=shared");
        assert_eq!(prepare_sqlite_file(&with_query).unwrap(), format!("{url}?cache=shared&mode=rwc"));
        let read_only = format!("{url}?mode=ro");
        assert_eq!(prepare_sqlite_file(&read_only).unwrap(), read_only);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
