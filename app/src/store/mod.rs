//! The database: SQLite (the embedded default) or PostgreSQL, picked by the URL; a pool for
//! reads and, on SQLite, one writer connection for transactions ([`Db::writer`]).
//!
//! Queries are written once, in SQL both accept, and run through sqlx's `Any` driver; the few
//! places where the two differ (claiming deliveries) ask [`Db::backend`]. Every function that
//! touches a partner's rows takes the [`PartnerId`](crate::domain::PartnerId) first.

pub mod accounts;
pub mod alerts;
pub mod api_keys;
pub mod attempts;
pub mod audit;
pub mod event_search;
pub mod events;
pub mod grouped;
pub mod inspectors;
pub mod log;
pub mod queue;
pub mod quotas;
mod sql;
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
    /// Transactions' and the dispatcher's pool ([`Db::writer`]): one connection on SQLite,
    /// `pool` on PostgreSQL.
    writer: AnyPool,
    backend: Backend,
    /// Seals webhook secrets before they are stored and opens them when read.
    secrets: crate::crypto::SecretBox,
}

impl Db {
    /// Connects to `url`. For SQLite the file is created when missing and put in WAL mode, so
    /// that readers don't wait for the dispatcher's writes.
    /// Webhook secrets are sealed with `PORTAL_SECRET_KEY`, else the key file beside the
    /// database ([`SecretBox::for_database`](crate::crypto::SecretBox::for_database)).
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        Self::connect_with_key(url, None).await
    }

    /// [`Db::connect`], sealing webhook secrets with `key` when one is given (the operator's
    /// setting, already read), else as [`Db::connect`] does.
    #[tracing::instrument(skip_all, fields(backend))]
    pub async fn connect_with_key(url: &str, key: Option<&[u8; 32]>) -> anyhow::Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of_url(url)?;
        tracing::Span::current().record("backend", tracing::field::debug(backend));
        let url = if backend == Backend::Sqlite { prepare_sqlite_file(url)? } else { url.to_owned() };
        let options = AnyConnectOptions::from_str(&url)
            .with_context(|| format!("DATABASE_URL is not a valid {backend:?} URL"))?
            .disable_statement_logging();
        // `checkpoints`: whether commits on the connection copy the WAL into the file.
        let pool_of = |size: u32, checkpoints: bool| {
            AnyPoolOptions::new()
                .max_connections(size)
                // A SQLite connection is a file handle in this process: it can't have dropped,
                // and the ping would cost a round trip to its thread at every acquire.
                .test_before_acquire(backend == Backend::Postgres)
                .after_connect(move |conn, _meta| {
                    Box::pin(async move {
                        if backend == Backend::Sqlite {
                            conn.execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;").await?;
                            if !checkpoints {
                                conn.execute("PRAGMA wal_autocheckpoint = 0;").await?;
                            }
                        }
                        Ok(())
                    })
                })
        };
        // SQLite writes one at a time anyway; a few readers are plenty.
        let size = if backend == Backend::Sqlite { 8 } else { 16 };
        let pool = pool_of(size, true).connect_with(options.clone()).await.context("could not open the database")?;
        let writer = match backend {
            // The writer leaves checkpoints (copying the WAL into the database file, with an
            // fsync) to the task below: done on the writer, every write would queue behind it.
            Backend::Sqlite => {
                let writer = pool_of(1, false).connect_with(options).await.context("could not open the database")?;
                tokio::spawn(checkpoint_regularly(pool.clone()));
                writer
            }
            Backend::Postgres => pool.clone(),
        };
        let secrets = match key {
            Some(key) => crate::crypto::SecretBox::new(key),
            None => crate::crypto::SecretBox::for_database(key_file_for(&url).as_deref())?,
        };
        Ok(Self { pool, writer, backend, secrets })
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

    /// The pool for reads ([`Db::writer`] takes the writes).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The pool for transactions and the dispatcher's writes. On SQLite it is one connection:
    /// writers queue for it in turn instead of meeting SQLite's write lock and sleeping in its
    /// busy handler (which backs off up to 100 ms at a time), and a transaction that reads
    /// before it writes can't find its snapshot outdated by another connection's commit (which
    /// SQLite answers with an immediate "database is locked"). Single-statement writes go
    /// through it too: one on a reader connection takes SQLite's write lock behind the writer's
    /// back, and a writer that finds it taken sleeps in the busy handler (a polling task, such
    /// as the alert notifier, would stall the dispatcher so). Reads use [`Db::pool`]. A
    /// transaction on it must not wait for another connection from it: there is only one.
    pub fn writer(&self) -> &AnyPool {
        &self.writer
    }

    /// A transaction on [`Db::writer`]. On SQLite it takes the write lock as it starts (`BEGIN
    /// IMMEDIATE`): a transaction that reads first and writes after another connection (the
    /// session store's) committed would otherwise be refused at once with "database is locked",
    /// where waiting for the lock is what is wanted.
    pub async fn begin_write(&self) -> anyhow::Result<sqlx::Transaction<'static, sqlx::Any>> {
        let tx = match self.backend {
            Backend::Sqlite => self.writer.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.writer.begin().await,
        };
        tx.context("could not start a transaction")
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

/// After a SQLite script that is a whole transaction (`BEGIN IMMEDIATE; …; COMMIT`, perhaps
/// over several trips): when it failed part way, it stopped inside its transaction, so that is
/// rolled back and the connection goes back to the pool as it came, with nothing of it kept.
pub(crate) async fn roll_back_on_error<T>(
    conn: &mut sqlx::AnyConnection,
    result: anyhow::Result<T>,
) -> anyhow::Result<T> {
    if result.is_err() {
        let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
    }
    result
}

/// How often the WAL is copied into a SQLite database file.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Copies the WAL into the database file every [`CHECKPOINT_EVERY`] from a reader connection,
/// without waiting for readers or blocking the writer (`PASSIVE`), until the pool closes. A
/// WAL left to grow would slow every read.
async fn checkpoint_regularly(pool: AnyPool) {
    while !pool.is_closed() {
        tokio::time::sleep(CHECKPOINT_EVERY).await;
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&pool).await
            && !pool.is_closed()
        {
            tracing::warn!(error = %e, "could not checkpoint the SQLite WAL");
        }
    }
}

/// The file a SQLite URL names; `None` for an in-memory database (or a URL naming no file).
pub fn sqlite_file(url: &str) -> Option<&std::path::Path> {
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && path != ":memory:").then(|| std::path::Path::new(path))
}

/// Where the key file that seals the secrets of the database at `url` lives: beside a SQLite
/// file, `data/` for PostgreSQL; `None` for an in-memory database.
pub fn key_file_for(url: &str) -> Option<std::path::PathBuf> {
    use crate::crypto::KEY_FILE;
    use std::path::Path;
    if url.starts_with("postgres") {
        return Some(Path::new("data").join(KEY_FILE));
    }
    let file = sqlite_file(url)?;
    let dir = file.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    Some(dir.join(KEY_FILE))
}

/// `$first, $first+1, …`: `count` numbered placeholders, for a list bound one value each.
pub fn placeholders(first: usize, count: usize) -> String {
    (first..first + count).map(|n| format!("${n}")).collect::<Vec<_>>().join(", ")
}

/// Most rows (or list items) one batch statement takes.
pub const BATCH_ROWS: usize = 32;

/// Splits `items` into runs whose lengths are powers of two up to [`BATCH_ROWS`] (100 items:
/// 32, 32, 32, 4), so that a batch statement has one of six texts. Each text is then prepared
/// once per connection and reused, where a text for every length would be parsed afresh each
/// time (the profile showed SQLite spending more on parsing and naming parameters than on
/// writing the rows).
pub fn batches<T>(items: &[T]) -> impl Iterator<Item = &[T]> {
    let mut rest = items;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let (batch, tail) = rest.split_at(BATCH_ROWS.min(1 << rest.len().ilog2()));
        rest = tail;
        Some(batch)
    })
}

/// The text of a batch statement for each length [`batches`] makes, built on first use.
pub struct BatchSql {
    build: fn(usize) -> String,
    texts: [std::sync::OnceLock<String>; 6],
}

impl BatchSql {
    /// Texts made by `build(rows)`.
    pub const fn new(build: fn(usize) -> String) -> Self {
        Self { build, texts: [const { std::sync::OnceLock::new() }; 6] }
    }

    /// The text for a batch of `rows` (a length [`batches`] makes).
    pub fn get(&self, rows: usize) -> &str {
        debug_assert!(rows.is_power_of_two() && rows <= BATCH_ROWS);
        self.texts[rows.ilog2() as usize].get_or_init(|| (self.build)(rows))
    }
}

/// `(…), (…)`: `rows` tuples of `width` numbered placeholders, numbered from `first`.
pub fn value_rows(first: usize, rows: usize, width: usize) -> String {
    (0..rows).map(|i| format!("({})", placeholders(first + i * width, width))).collect::<Vec<_>>().join(", ")
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

/// Whether an error is the database refusing a row whose reference names no row.
pub fn is_foreign_key_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_foreign_key_violation())
}

/// Whether an error is the database refusing a duplicate in a UNIQUE column.
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// A migrated SQLite database for a unit test, in a folder of its own (named for `name` and
/// this process) under the system's temporary folder; the test removes the folder.
#[cfg(test)]
pub(crate) async fn test_database(name: &str) -> (Db, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("portal-{name}-{}", std::process::id()));
    let db = Db::connect(&format!("sqlite://{}/p.db", dir.display())).await.unwrap();
    db.migrate().await.unwrap();
    (db, dir)
}

/// A new partner (its email made unique) with `n` active webhooks that take every event, for
/// store unit tests.
#[cfg(test)]
pub(crate) async fn test_partner_with_webhooks(
    db: &Db,
    n: usize,
) -> (crate::domain::PartnerId, Vec<crate::domain::WebhookId>) {
    use crate::domain::{EmailAddress, EventFilter, PartnerName, UrlPolicy, WebhookSettings, WebhookUrl};
    let email = format!("{}@example.test", crate::domain::UserId::generate().as_str().to_lowercase());
    let (partner, _) = accounts::create_partner_with_user(
        db,
        &PartnerName::parse("Acme").unwrap(),
        &EmailAddress::parse(&email).unwrap(),
        "not a hash",
    )
    .await
    .unwrap();
    let settings = WebhookSettings {
        url: WebhookUrl::parse("https://example.com/hook", UrlPolicy { allow_private: false }).unwrap(),
        active: true,
        auth_header: None,
        event_filter: EventFilter::default(),
        payload_template: None,
        rate_limit: None,
        max_concurrent_requests: None,
    };
    let mut hooks = Vec::new();
    for _ in 0..n {
        hooks.push(webhooks::create(db, &partner, &settings, u32::MAX).await.unwrap().unwrap().0.id);
    }
    (partner, hooks)
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
        assert_eq!(key_file_for("sqlite:///srv/portal/portal.db"), Some("/srv/portal/secret.key".into()));
        assert_eq!(key_file_for("sqlite:portal.db"), Some("./secret.key".into()));
        assert_eq!(key_file_for("postgres://db/portal"), Some("data/secret.key".into()));
        assert_eq!(key_file_for("sqlite::memory:"), None);
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// Every foreign key has an index that leads with its column: deleting or changing a parent
    /// row (a webhook, a delivery, an event) finds its children by index, never by reading the
    /// whole child table once per parent row.
    #[tokio::test]
    async fn every_foreign_key_has_an_index_that_leads_with_its_column() {
        use sqlx::Row;
        let (db, dir) = test_database("fk-index").await;
        let column = |row: &sqlx::any::AnyRow, name: &str| row.try_get::<String, _>(name).unwrap();
        let tables: Vec<String> = sqlx::query(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_sqlx%'",
        )
        .fetch_all(db.pool())
        .await
        .unwrap()
        .iter()
        .map(|row| column(row, "name"))
        .collect();
        let mut missing = Vec::new();
        for table in &tables {
            // The first column of each index on the table, and of its primary key.
            let mut leading: Vec<String> = Vec::new();
            let indexes = sqlx::query(&format!("PRAGMA index_list('{table}')")).fetch_all(db.pool()).await.unwrap();
            for index in indexes {
                let name = column(&index, "name");
                let info = sqlx::query(&format!("PRAGMA index_info('{name}')")).fetch_all(db.pool()).await.unwrap();
                if let Some(first) = info.iter().find(|c| c.try_get::<i64, _>("seqno").unwrap() == 0) {
                    leading.push(column(first, "name"));
                }
            }
            let table_info = sqlx::query(&format!("PRAGMA table_info('{table}')")).fetch_all(db.pool()).await.unwrap();
            leading.extend(
                table_info.iter().filter(|c| c.try_get::<i64, _>("pk").unwrap() == 1).map(|c| column(c, "name")),
            );
            let keys = sqlx::query(&format!("PRAGMA foreign_key_list('{table}')")).fetch_all(db.pool()).await.unwrap();
            for key in keys.iter().filter(|k| k.try_get::<i64, _>("seq").unwrap() == 0) {
                let from = column(key, "from");
                // No command, route or job deletes a partner row, nor changes its id: nothing
                // looks a partner's children up by this key. (A partner deletion would need
                // these indexes first; deliveries by partner would cost every publish one more.)
                if column(key, "table") == "partners" {
                    continue;
                }
                if !leading.contains(&from) {
                    missing.push(format!("{table}.{from} (references {})", column(key, "table")));
                }
            }
        }
        assert!(tables.contains(&"attempts".to_owned()), "{tables:?}");
        assert_eq!(missing, Vec::<String>::new(), "foreign keys without an index");
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// A write transaction that reads, then writes after another connection committed, waits
    /// for the lock instead of failing with "database is locked" (SQLite's answer to a deferred
    /// transaction whose snapshot went stale).
    #[tokio::test]
    async fn a_write_transaction_that_reads_first_is_not_refused_by_another_connections_commit() {
        let dir = std::env::temp_dir().join(format!("portal-immediate-{}", std::process::id()));
        let url = format!("sqlite://{}/p.db", dir.display());
        let db = Db::connect(&url).await.unwrap();
        sqlx::query("CREATE TABLE probe (x INTEGER)").execute(db.writer()).await.unwrap();
        // Another connection to the same file, as the session store has.
        let other =
            AnyPoolOptions::new().max_connections(1).connect(&prepare_sqlite_file(&url).unwrap()).await.unwrap();
        let mut tx = db.begin_write().await.unwrap();
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM probe").fetch_one(&mut *tx).await.unwrap();
        let other_write = tokio::spawn({
            let other = other.clone();
            async move { sqlx::query("INSERT INTO probe (x) VALUES (1)").execute(&other).await }
        });
        // A deferred transaction lets the other write commit now (and its own write below then
        // fails); an immediate one holds the lock, and the other write waits for the commit.
        let other_write = match tokio::time::timeout(std::time::Duration::from_millis(500), other_write).await {
            Ok(done) => Some(done.unwrap()),
            Err(_) => None,
        };
        let written = sqlx::query("INSERT INTO probe (x) VALUES ($1)").bind(n + 10).execute(&mut *tx).await;
        assert!(written.is_ok(), "the write after the read was refused: {written:?}");
        tx.commit().await.unwrap();
        assert!(other_write.is_none(), "the other connection wrote inside the transaction");
        let mut total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM probe").fetch_one(db.pool()).await.unwrap();
        let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while total < 2 {
            assert!(std::time::Instant::now() < until, "the other connection's write never went through");
            tokio::task::yield_now().await;
            total = sqlx::query_scalar("SELECT COUNT(*) FROM probe").fetch_one(db.pool()).await.unwrap();
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}
