//! The bench's fixtures: the portal under test as a process of its own, with a fresh
//! database, and a receiver on 127.0.0.1 that notes each request.

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use app::domain::{PartnerId, UrlPolicy, WebhookInput};
use app::store::Db;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};

pub const TOKEN: &str = "bench-operator-token-0123456789abcdef";

/// What the receiver saw: (webhook path, event id, arrival).
pub type Log = Arc<Mutex<Vec<(String, String, Instant)>>>;

async fn receive(State(log): State<Log>, Path((kind, hook)): Path<(String, String)>, headers: HeaderMap) -> StatusCode {
    let id = headers.get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    log.lock().unwrap().push((format!("{kind}/{hook}"), id, Instant::now()));
    match kind.as_str() {
        "fail" => StatusCode::INTERNAL_SERVER_ERROR,
        "hang" => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::OK
        }
        _ => StatusCode::OK,
    }
}

/// A receiver on 127.0.0.1; answers its base URL and its log.
pub async fn receiver() -> (String, Log) {
    let log: Log = Arc::default();
    let app = axum::Router::new().route("/{kind}/{hook}", axum::routing::post(receive)).with_state(log.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, log)
}

/// A fresh database URL: SQLite in `dir`, or a new database on `BENCH_DATABASE`'s server (with
/// the server's URL and the database's name, to drop it afterwards).
pub async fn fresh_database(dir: &std::path::Path) -> (String, Option<(String, String)>) {
    use sqlx::{Connection, Executor};
    match std::env::var("BENCH_DATABASE") {
        Ok(server) if server.starts_with("postgres") => {
            sqlx::any::install_default_drivers();
            let name = format!("portal_bench_{}", ulid::Ulid::new().to_string().to_lowercase());
            let mut admin = sqlx::AnyConnection::connect(&server).await.unwrap();
            admin.execute(format!("CREATE DATABASE {name}").as_str()).await.unwrap();
            let (host, _) = server.rsplit_once('/').unwrap();
            (format!("{host}/{name}"), Some((server, name)))
        }
        _ => (format!("sqlite://{}/bench.db", dir.display()), None),
    }
}

/// The portal under test, its address and its database.
pub struct Portal {
    pub child: Child,
    pub address: String,
    pub db: Db,
    /// A PostgreSQL run's server and database, dropped when the run ends.
    postgres: Option<(String, String)>,
    _dir: tempfile::TempDir,
}

impl Portal {
    pub async fn start(args: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (database_url, postgres) = fresh_database(dir.path()).await;
        let db = Db::connect(&database_url).await.unwrap();
        db.migrate().await.unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(portal_binary())
            .args(["serve", "--addr", &format!("127.0.0.1:{port}"), "--operator-token", TOKEN])
            .args(["--allow-private-targets", "true", "--site-root", dir.path().to_str().unwrap()])
            .args(args)
            .env("DATABASE_URL", &database_url)
            // BENCH_PORTAL_LOG: a file for the portal's log, at BENCH_RUST_LOG's level.
            .env("RUST_LOG", std::env::var("BENCH_RUST_LOG").unwrap_or_else(|_| "warn".into()))
            .stdout(Stdio::null())
            .stderr(match std::env::var("BENCH_PORTAL_LOG") {
                Ok(path) => Stdio::from(std::fs::File::create(path).expect("BENCH_PORTAL_LOG can be created")),
                Err(_) => Stdio::null(),
            })
            .spawn()
            .expect("target/release/portal runs (cargo build --release -p server --bin portal)");
        let address = format!("http://127.0.0.1:{port}");
        // Generous: under a profiler the portal starts slowly.
        let until = Instant::now() + Duration::from_secs(180);
        while reqwest::get(format!("{address}/healthz")).await.is_err() {
            assert!(Instant::now() < until, "the portal did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Self { child, address, db, postgres, _dir: dir }
    }

    /// A partner with `urls` as its webhooks.
    pub async fn partner(&self, urls: &[String]) -> PartnerId {
        add_partner(&self.db, urls).await
    }

    /// Context switches of the portal's threads so far (those still running), voluntary ones
    /// (a thread waiting for another) and all.
    pub fn switches(&self) -> (u64, u64) {
        let mut voluntary = 0;
        let mut all = 0;
        let tasks = std::fs::read_dir(format!("/proc/{}/task", self.child.id())).into_iter().flatten().flatten();
        for task in tasks {
            let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
            for line in status.lines() {
                let count = |prefix: &str| line.strip_prefix(prefix).and_then(|v| v.trim().parse::<u64>().ok());
                if let Some(n) = count("voluntary_ctxt_switches:") {
                    voluntary += n;
                    all += n;
                } else if let Some(n) = count("nonvoluntary_ctxt_switches:") {
                    all += n;
                }
            }
        }
        (voluntary, all)
    }

    /// Peak resident memory (MB) and CPU time (s) of the portal so far.
    pub fn resources(&self) -> (f64, f64) {
        let pid = self.child.id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let peak_kb: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0.0);
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or_default().split_whitespace().collect();
        let ticks: f64 = fields.get(11).and_then(|u| u.parse::<f64>().ok()).unwrap_or(0.0)
            + fields.get(12).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
        (peak_kb / 1024.0, ticks / 100.0)
    }
}

impl Drop for Portal {
    /// Stops the portal as an operator would (SIGTERM, so a profiler wrapping it writes its
    /// results), kills it if it has not stopped within a minute, and drops a PostgreSQL run's
    /// database (leftover databases slow the server down for every later run).
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let until = Instant::now() + Duration::from_secs(60);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(postgres) = self.postgres.take() {
            drop_database(&self.db, postgres);
        }
    }
}

/// A partner with `urls` as its webhooks, in `db`.
pub async fn add_partner(db: &Db, urls: &[String]) -> PartnerId {
    let email = format!("{}@bench.test", ulid::Ulid::new().to_string().to_lowercase());
    let (partner, _) = app::store::accounts::create_partner_with_user(
        db,
        &app::domain::PartnerName::parse("Bench").unwrap(),
        &app::domain::EmailAddress::parse(&email).unwrap(),
        "not-a-hash",
    )
    .await
    .unwrap();
    for url in urls {
        let input = WebhookInput { url: url.clone(), active: true, ..Default::default() };
        let settings = input.parse(UrlPolicy { allow_private: true }, None).unwrap();
        app::store::webhooks::create(db, &partner, &settings, u32::MAX).await.unwrap();
    }
    partner
}

/// The portal binary the bench runs: `PORTAL_BIN`, or the release build.
pub fn portal_binary() -> String {
    std::env::var("PORTAL_BIN").unwrap_or_else(|_| "target/release/portal".into())
}

/// Closes `db` and drops a PostgreSQL run's database (`(server, name)`, from
/// [`fresh_database`]): leftover databases slow the server down for every later run.
pub fn drop_database(db: &Db, (server, name): (String, String)) {
    let db = db.clone();
    tokio::task::block_in_place(|| {
        tokio::runtime::Handle::current().block_on(async {
            use sqlx::{Connection, Executor};
            db.pool().close().await;
            db.writer().close().await;
            let mut admin = sqlx::AnyConnection::connect(&server).await.unwrap();
            admin.execute(format!("DROP DATABASE {name} WITH (FORCE)").as_str()).await.unwrap();
        })
    });
}
