//! A portal per test: its own SQLite file in a temporary folder, listening on a free port; a
//! `portal` process of its own for what only a whole process shows; sign-in and metrics helpers;
//! a partner with an API key on a portal that delivers to 127.0.0.1 (`setup`).

use app::api::AppError;
use app::domain::{EmailAddress, NewPassword, PartnerId, PartnerName};
use app::store::Db;
use app::store::throttle::ThrottleKey;
use clap::Parser;
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, LOCATION, REFERER};
use reqwest::redirect::Policy;
use serde_json::{Value, json};
use server::config::{Cli, Command};
use server::startup::Application;
use sqlx::Row;
use tempfile::TempDir;

/// A running portal.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`
    pub address: String,
    /// The database it uses.
    pub database_url: String,
    /// Its own connection to that database, for arranging data.
    pub db: Db,
    /// `http://127.0.0.1:PORT` of the `--metrics-addr` listener, when asked for.
    pub metrics_address: Option<String>,
    _dir: TempDir,
}

/// The operator token every test portal takes.
pub const OPERATOR_TOKEN: &str = "test-operator-token-0123456789abcdef";

/// A `PORTAL_SECRET_KEY` for test portals that need one (`--secret-key`, with an https public URL).
pub const SECRET_KEY: &str = "dGVzdC1vbmx5LWtleS10ZXN0LW9ubHkta2V5LTMyYiE=";

/// Starts a portal on port 0 with a fresh database.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// Starts a portal with extra `portal serve` flags.
pub async fn spawn_app_with(flags: &[&str]) -> TestApp {
    // Server errors show in a failing test's output (RUST_LOG widens it).
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| "error".into());
    let _ = tracing_subscriber::fmt().with_test_writer().with_env_filter(filter).try_init();
    let dir = tempfile::tempdir().expect("temporary folder");
    let database_url = fresh_database_url(dir.path()).await;
    let site_root = dir.path().join("site");
    let mut args = vec!["portal", "serve", "--addr", "127.0.0.1:0", "--operator-token", OPERATOR_TOKEN];
    args.extend(["--site-root", site_root.to_str().unwrap()]);
    // The test binary is not the portal: the template sandbox starts the portal's (unless the
    // test names another).
    if !flags.contains(&"--template-worker") {
        args.extend(["--template-worker", env!("CARGO_BIN_EXE_portal")]);
    }
    args.extend(flags);
    let cli = Cli::try_parse_from(args).expect("test flags parse");
    let Some(Command::Serve(args)) = cli.command else { unreachable!() };
    let secret_key = args.secret_key.clone();
    let application = Application::build(&database_url, args).await.expect("the portal starts");
    let address = format!("http://127.0.0.1:{}", application.port());
    let metrics_address = application.metrics_port().map(|port| format!("http://127.0.0.1:{port}"));
    tokio::spawn(application.run_until(std::future::pending()));
    // The test's connection opens the portal's secrets with the portal's key.
    let db =
        Db::connect_with_key(&database_url, secret_key.as_ref().map(|k| k.expose())).await.expect("test connection");
    TestApp { address, database_url, db, metrics_address, _dir: dir }
}

/// The environment variable that runs the suite on PostgreSQL: a URL of a server and a
/// database to connect to first (`postgres://root@127.0.0.1:5432/postgres`).
pub const TEST_DATABASE_URL: &str = "TEST_DATABASE_URL";

/// The prefix of the databases the suite makes on PostgreSQL (`scripts/test.sh` drops them).
pub const TEST_DATABASE_PREFIX: &str = "portal_test_";

/// A database of its own for one test: a new SQLite file in `dir`, or, when
/// `TEST_DATABASE_URL` names a PostgreSQL server, a new database there.
pub async fn fresh_database_url(dir: &std::path::Path) -> String {
    use sqlx::{Connection, Executor};
    match std::env::var(TEST_DATABASE_URL) {
        Ok(server) if server.starts_with("postgres") => {
            sqlx::any::install_default_drivers();
            let name = format!("{TEST_DATABASE_PREFIX}{}", ulid::Ulid::new().to_string().to_lowercase());
            let mut admin = sqlx::AnyConnection::connect(&server).await.expect("TEST_DATABASE_URL connects");
            admin.execute(format!("CREATE DATABASE {name}").as_str()).await.expect("a test database is made");
            let (base, query) = server.split_once('?').map_or((server.as_str(), None), |(b, q)| (b, Some(q)));
            let (host, _) = base.rsplit_once('/').expect("TEST_DATABASE_URL names a database");
            match query {
                Some(query) => format!("{host}/{name}?{query}"),
                None => format!("{host}/{name}"),
            }
        }
        _ => format!("sqlite://{}/portal.db", dir.display()),
    }
}

/// Longest a test waits for one answer: a request that never gets one fails the test, by its
/// name, instead of holding the whole run.
pub const ANSWER_DEADLINE: std::time::Duration = std::time::Duration::from_secs(60);

/// A client for the API and the probes.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder().timeout(ANSWER_DEADLINE).build().unwrap()
}

/// A browser-like client: keeps cookies, does not follow redirects (tests look at them).
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder().cookie_store(true).redirect(Policy::none()).timeout(ANSWER_DEADLINE).build().unwrap()
}

/// A partner and the credentials of its first user.
pub struct TestPartner {
    pub id: PartnerId,
    pub email: String,
    pub password: String,
}

impl TestApp {
    /// The full URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// Calls server function `name` (`/api/{name}`) as the portal's own pages do (a form post
    /// from one of its pages), with `client`'s session; answers the status and the body.
    pub async fn server_fn(
        &self,
        client: &reqwest::Client,
        name: &str,
        form: &[(&str, &str)],
    ) -> (reqwest::StatusCode, String) {
        let response = client
            .post(self.url(&format!("/api/{name}")))
            .header(REFERER, self.url("/"))
            .form(form)
            .send()
            .await
            .unwrap();
        (response.status(), response.text().await.unwrap())
    }

    /// Calls the REST API at `path` (from the portal's root: `/api/v1/…`) with `key`, sending
    /// `body` as JSON when there is one; answers the status and the body as JSON (`null` when
    /// empty, a string when it is not JSON).
    pub async fn api(
        &self,
        key: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = http().request(method, self.url(path)).bearer_auth(key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (status, if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) })
    }

    /// Makes a partner with one user, straight in the store.
    pub async fn create_partner(&self, name: &str, email: &str) -> TestPartner {
        insert_partner(&self.db, name, email).await
    }

    /// Submits the login form as a browser without JavaScript does.
    pub async fn login(&self, client: &reqwest::Client, email: &str, password: &str) -> reqwest::Response {
        client
            .post(self.url("/api/login"))
            .header(ACCEPT, "text/html")
            .header(REFERER, self.url("/login"))
            .form(&[("email", email), ("password", password)])
            .send()
            .await
            .unwrap()
    }

    /// Signs `partner`'s user in and checks it worked.
    pub async fn signed_in_client(&self, partner: &TestPartner) -> reqwest::Client {
        let client = browser();
        let response = self.login(&client, &partner.email, &partner.password).await;
        assert_eq!(location(&response).as_deref(), Some("/webhooks"), "login failed");
        client
    }

    /// Makes an API key for `partner` with the CLI's code path and returns the key.
    pub async fn create_api_key(&self, partner: &PartnerId) -> String {
        insert_api_key(&self.db, partner).await
    }
}

/// Makes an admin API key for `partner` in `db` with the CLI's code path and returns the key.
pub async fn insert_api_key(db: &Db, partner: &PartnerId) -> String {
    insert_api_key_with_role(db, partner, app::domain::Role::Admin).await
}

/// Makes an API key with `role` for `partner` in `db` and returns the key.
pub async fn insert_api_key_with_role(db: &Db, partner: &PartnerId, role: app::domain::Role) -> String {
    insert_api_key_in(db, partner, app::domain::Environment::Production, role).await
}

/// Makes an API key with `role` for `account`'s `environment` (its sandbox made if need be)
/// and returns the key.
pub async fn insert_api_key_in(
    db: &Db,
    account: &PartnerId,
    environment: app::domain::Environment,
    role: app::domain::Role,
) -> String {
    let partner = &app::store::accounts::environment_partner(db, account, environment).await.unwrap().unwrap();
    let key = app::auth::generate_api_key(environment);
    let (name, prefix, hash) =
        (app::domain::ApiKeyName::parse("test").unwrap(), key.display_prefix(), app::auth::hash_api_key(&key));
    let new = app::store::api_keys::NewApiKey {
        name: &name,
        role,
        prefix: &prefix,
        key_hash: &hash,
        created_by: "the operator (command line)",
    };
    app::store::api_keys::create(db, partner, &new, u32::MAX).await.unwrap();
    key.expose().to_owned()
}

/// Makes a partner with one user (password "correct horse battery staple") in `db`.
pub async fn insert_partner(db: &Db, name: &str, email: &str) -> TestPartner {
    let password = "correct horse battery staple".to_owned();
    let hash = app::auth::hash_password(&NewPassword::parse(&password).unwrap()).unwrap();
    let (id, _) = app::store::accounts::create_partner_with_user(
        db,
        &PartnerName::parse(name).unwrap(),
        &EmailAddress::parse(email).unwrap(),
        &hash,
    )
    .await
    .unwrap();
    TestPartner { id, email: email.into(), password }
}

/// Makes `n` active webhooks to `url` (private addresses allowed) for `partner`, straight in
/// the store.
pub async fn insert_webhooks(db: &Db, partner: &PartnerId, url: &str, n: usize) {
    let settings = app::domain::WebhookInput { url: url.to_owned(), active: true, ..Default::default() }
        .parse(app::domain::UrlPolicy { allow_private: true }, None)
        .unwrap();
    for _ in 0..n {
        app::store::webhooks::create(db, partner, &settings, u32::MAX).await.unwrap();
    }
}

/// Where a redirect points, if the response is one.
pub fn location(response: &reqwest::Response) -> Option<String> {
    response.headers().get(LOCATION).map(|v| v.to_str().unwrap().to_owned())
}

/// Sends a request whose answer the test only reads as JSON.
pub trait JsonAnswer {
    /// Sends it and parses the answer's body as JSON (panicking if either fails).
    fn json_answer(self) -> impl std::future::Future<Output = serde_json::Value>;
}

impl JsonAnswer for reqwest::RequestBuilder {
    async fn json_answer(self) -> serde_json::Value {
        self.send().await.unwrap().json().await.unwrap()
    }
}

/// The value of the sample `series` (name and labels exactly as exported) in a metrics page.
pub fn sample(page: &str, series: &str) -> Option<f64> {
    page.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

/// `GET` of a metrics page, with the operator's token when given; answers the status and page.
pub async fn scrape(url: String, token: Option<&str>) -> (reqwest::StatusCode, String) {
    let mut request = http().get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}

/// A `portal serve` process of its own, for tests that read what only a whole process shows:
/// its metrics (every portal in the test process shares one recorder) or its memory.
pub struct PortalProcess {
    /// `http://127.0.0.1:PORT`
    pub address: String,
    /// A connection to its database, for arranging data.
    pub db: Db,
    /// The running process (killed when dropped).
    pub child: crate::crash::PortalChild,
    _dir: TempDir,
}

impl PortalProcess {
    /// Starts one on a fresh database with the operator token and `flags`.
    pub async fn start(flags: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("temporary folder");
        let database_url = fresh_database_url(dir.path()).await;
        let args: Vec<&str> = ["--addr", "127.0.0.1:0", "--operator-token", OPERATOR_TOKEN]
            .into_iter()
            .chain(flags.iter().copied())
            .collect();
        let (child, address) = crate::crash::spawn_portal(&database_url, &args, "listening on ");
        let db = Db::connect(&database_url).await.expect("test connection");
        Self { address, db, child, _dir: dir }
    }

    /// Its metrics page, read with the operator token.
    pub async fn metrics(&self) -> String {
        let (status, page) = scrape(format!("{}/metrics", self.address), Some(OPERATOR_TOKEN)).await;
        assert_eq!(status, reqwest::StatusCode::OK, "{page}");
        page
    }

    /// The most memory it has held at once (VmHWM, bytes), on Linux.
    pub fn peak_rss(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let kib = status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?.trim().trim_end_matches("kB").trim();
        kib.parse::<u64>().ok().map(|kib| kib * 1024)
    }
}

/// A sign-in as the hydrated page makes it; answers the status and the error it decodes
/// (`None` when it signed in).
pub async fn try_login(
    app: &TestApp,
    email: &str,
    password: &str,
    forwarded_for: Option<&str>,
) -> (reqwest::StatusCode, Option<AppError>) {
    try_login_at(&app.address, email, password, forwarded_for).await
}

/// [`try_login`] against the portal at `address`.
pub async fn try_login_at(
    address: &str,
    email: &str,
    password: &str,
    forwarded_for: Option<&str>,
) -> (reqwest::StatusCode, Option<AppError>) {
    let mut request = browser().post(format!("{address}/api/login")).form(&[("email", email), ("password", password)]);
    if let Some(address) = forwarded_for {
        request = request.header("x-forwarded-for", address);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let body = response.text().await.unwrap();
    if status.is_success() || status.is_redirection() {
        return (status, None);
    }
    let error =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{status}: not an error the page reads ({e}): {body}"));
    (status, Some(error))
}

/// Asserts a refused sign-in is a wrong password: what a guess under the limit gets.
pub fn assert_wrong(answer: &(reqwest::StatusCode, Option<AppError>), what: &str) {
    assert_eq!(answer.1, Some(AppError::WrongCredentials), "{what}: {answer:?}");
    assert_eq!(answer.0, reqwest::StatusCode::UNAUTHORIZED, "{what}: a refusal, not a failure of ours");
}

/// Asserts a sign-in was refused for too many attempts: 429 with the words the page shows, and
/// the wait in seconds.
pub fn assert_too_many(answer: &(reqwest::StatusCode, Option<AppError>), what: &str) -> u64 {
    let (status, error) = answer;
    assert_eq!(*status, reqwest::StatusCode::TOO_MANY_REQUESTS, "{what}: {error:?}");
    let Some(AppError::TooManyAttempts(wait)) = error else { panic!("{what}: {error:?}") };
    let words = error.as_ref().unwrap().to_string();
    assert!(words.starts_with("Too many failed sign-ins. Please wait"), "{what}: {words}");
    *wait
}

/// Asserts a sign-in went through.
pub fn assert_signed_in(answer: &(reqwest::StatusCode, Option<AppError>), what: &str) {
    assert!((answer.0.is_success() || answer.0.is_redirection()) && answer.1.is_none(), "{what}: {answer:?}");
}

/// The count and lock of `key` in the sign-in throttle, if it has a row.
pub async fn throttle_row(app: &TestApp, key: ThrottleKey) -> Option<(i64, Option<i64>)> {
    sqlx::query("SELECT failures, locked_until FROM login_throttle WHERE key = $1")
        .bind(key.stored())
        .fetch_optional(app.db.pool())
        .await
        .unwrap()
        .map(|row| (row.get("failures"), row.get("locked_until")))
}

/// A partner with an API key, on a portal that may deliver to 127.0.0.1.
pub struct Setup {
    pub app: TestApp,
    pub partner: String,
    pub key: String,
}

pub async fn setup(flags: &[&str]) -> Setup {
    let mut all = vec!["--allow-private-targets", "true"];
    all.extend(flags);
    let app = spawn_app_with(&all).await;
    let partner = app.create_partner("Acme", "ann@acme.test").await;
    let key = app.create_api_key(&partner.id).await;
    Setup { partner: partner.id.to_string(), key, app }
}

impl Setup {
    pub async fn create_webhook(&self, body: Value) -> Value {
        let response =
            http().post(self.app.url("/api/v1/webhooks")).bearer_auth(&self.key).json(&body).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json().await.unwrap()
    }

    pub async fn publish(&self, body: Value) -> (StatusCode, Value) {
        let response =
            http().post(self.app.url("/api/v1/events")).bearer_auth(OPERATOR_TOKEN).json(&body).send().await.unwrap();
        (response.status(), response.json().await.unwrap())
    }

    pub async fn publish_event(&self, id: &str) -> Value {
        let (status, body) = self
            .publish(json!({"partnerId": self.partner, "type": "verification.completed", "status": "success", "id": id,
                "data": {"verificationId": "ver_abc123", "sessionId": 123}}))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        body
    }

    pub async fn webhook(&self, id: &str) -> Value {
        let response =
            http().get(self.app.url(&format!("/api/v1/webhooks/{id}"))).bearer_auth(&self.key).send().await.unwrap();
        response.json().await.unwrap()
    }

    /// The newest page of a webhook's delivery log, as the API answers it.
    pub async fn log(&self, webhook: &str) -> Value {
        let url = self.app.url(&format!("/api/v1/webhooks/{webhook}/attempts"));
        http().get(url).bearer_auth(&self.key).send().await.unwrap().json().await.unwrap()
    }

    pub async fn post(&self, path: &str) -> Value {
        let response = http().post(self.app.url(path)).bearer_auth(&self.key).send().await.unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        body
    }

    /// The attempts logged for a webhook, oldest first: (event id, number, outcome, error, test).
    pub async fn attempts(&self, webhook: &str) -> Vec<(String, i64, String, Option<String>, i64)> {
        sqlx::query("SELECT event_id, attempt_number, outcome, error, test FROM attempts WHERE webhook_id = $1 ORDER BY created_at, id")
            .bind(webhook)
            .fetch_all(self.app.db.pool())
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.get("event_id"), r.get("attempt_number"), r.get("outcome"), r.get("error"), r.get("test")))
            .collect()
    }
}
