//! Start-up as an object: `Application::build` connects, migrates and binds (port 0 in tests)
//! and says which port it got; `run_until_stopped` serves until a shutdown signal.

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use app::domain::UrlPolicy;
use app::state::{AppState, Settings};
use app::store::{Backend, Db};
use app::{App, SITE_NAME, shell};
use axum::Router;
use leptos::config::{Env, LeptosOptions};
use leptos_axum::{LeptosRoutes, generate_route_list};
use tokio::net::TcpListener;
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer, SessionStore};
use tower_sessions_sqlx_store::{PostgresStore, SqliteStore};

use app::delivery::Sender;
use app::sandbox::TemplateSandbox;
use tokio::sync::Notify;

use crate::config::ServeArgs;
use crate::dispatcher::Dispatcher;
use crate::guard;
use crate::rest::{self, ApiSettings};
use crate::session_ids::HashedIds;

/// How long a session lasts without use.
const SESSION_IDLE: time::Duration = time::Duration::hours(12);
/// The session cookie's name.
pub const SESSION_COOKIE: &str = "portal_session";

/// A built, bound application, ready to run.
pub struct Application {
    /// `None` with `--no-web`: the process only delivers.
    listener: Option<TcpListener>,
    router: Router,
    port: u16,
    /// `None` with `--no-dispatcher`: the process only serves.
    dispatcher: Option<Dispatcher>,
    /// The PostgreSQL URL whose announcements wake the dispatcher, and its wake-up; `None` on
    /// SQLite and without a dispatcher.
    listen_url: Option<(String, Arc<Notify>)>,
    /// The database and the days of log to keep, for the pruner.
    retention: (Db, u32),
    /// `--metrics-addr`: metrics and health without the token, bound.
    admin: Option<(TcpListener, Router)>,
    /// Sends deactivation alerts.
    notifier: crate::notifier::Notifier,
}

impl Application {
    /// Connects to the database, applies migrations, builds the router and binds the address.
    pub async fn build(database_url: &str, args: ServeArgs) -> anyhow::Result<Self> {
        crate::metrics::handle();
        refuse_key_file_behind_https(&args)?;
        // A process without the web side (`--no-web`) serves no pages, so any site will do.
        let site = match args.no_web {
            true => crate::site::Site::Missing,
            false => crate::site::check(&crate::site::exe_dir(), &args.site_root)?,
        };
        if site == crate::site::Site::Missing && !args.no_web {
            tracing::warn!(
                site_root = %args.site_root.display(),
                "the built site (wasm, JS, CSS) is missing: pages render but are not interactive; \
                 build it with `cargo leptos build` or point LEPTOS_SITE_ROOT at it"
            );
        }
        let db = Db::connect_with_key(database_url, args.secret_key.as_ref().map(|k| k.expose())).await?;
        db.migrate().await?;
        let sessions = SessionBackend::connect(database_url).await?;
        sessions.migrate().await?;
        // Hash the login dummy now rather than during the first failed login.
        tokio::task::spawn_blocking(app::auth::prepare).await?;

        let leptos_options = leptos_options(&args, site == crate::site::Site::Hashed);
        // Bound before the settings: without PORTAL_PUBLIC_URL, the public URL (the base of
        // links in emails and of request inspectors' capture URLs) is the address it got.
        let (listener, port) = if args.no_web {
            (None, 0)
        } else {
            let listener =
                TcpListener::bind(args.addr).await.with_context(|| format!("could not listen on {}", args.addr))?;
            let port = listener.local_addr()?.port();
            (Some(listener), port)
        };
        let public_url = match args.public_url.clone() {
            Some(url) => url,
            None => url::Url::parse(&format!("http://{}:{}/", args.addr.ip(), port.max(args.addr.port())))
                .context("the listen address makes no URL; set PORTAL_PUBLIC_URL")?,
        };
        let settings = Arc::new(Settings {
            url_policy: UrlPolicy { allow_private: args.allow_private_targets },
            retry_schedule: args.retry_schedule.clone(),
            log_retention_days: args.log_retention_days,
            delivery_timeout: args.delivery_timeout,
            trust_forwarded_for: args.trust_forwarded_for,
            session_lifetime: args.session_lifetime,
            quotas: app::domain::Quotas {
                webhooks: args.max_webhooks,
                api_keys: args.max_api_keys,
                users: args.max_users,
                resends_per_minute: args.resends_per_minute,
                replays_per_minute: args.replays_per_minute,
                tests_per_minute: args.tests_per_minute,
                replay_plans_per_minute: args.replay_plans_per_minute,
                signature_checks_per_minute: args.signature_checks_per_minute,
                inspectors: args.max_inspectors,
            },
            public_url: public_url.clone(),
        });
        let worker = match &args.template_worker {
            Some(path) => path.clone(),
            // This very binary, even after a deploy replaced its file on disk.
            None if std::path::Path::new("/proc/self/exe").exists() => "/proc/self/exe".into(),
            None => {
                std::env::current_exe().context("could not find the portal's own binary for the template sandbox")?
            }
        };
        let inspectors = Arc::new(app::service::inspectors::Inspectors::new(db.clone(), public_url.clone()));
        let sender = Sender::new(args.allow_private_targets, args.delivery_timeout, TemplateSandbox::new(worker))?
            .with_local(inspectors.clone());
        let wake = Arc::new(Notify::new());
        let dispatcher = (!args.no_dispatcher).then(|| {
            Dispatcher::new(
                db.clone(),
                sender.clone(),
                args.retry_schedule.clone(),
                wake.clone(),
                args.delivery_timeout,
            )
            .gone_deactivates(args.deactivate_on_gone)
            .honor_retry_after(args.honor_retry_after)
        });
        let readiness = crate::health::Readiness { dispatcher: dispatcher.as_ref().map(Dispatcher::heartbeat) };
        let listen_url = (dispatcher.is_some() && db.backend() == Backend::Postgres)
            .then(|| (database_url.to_owned(), wake.clone()));
        let db_for_retention = db.clone();
        let mailer = args
            .smtp_url
            .as_deref()
            .map(|url| crate::notifier::Mailer::new(url, args.smtp_from.clone()))
            .transpose()?;
        let alert_hook = match (&args.alert_webhook_url, &args.alert_webhook_secret) {
            (Some(url), Some(secret)) => Some(crate::notifier::AlertHook::new(url.clone(), secret.0.clone())?),
            _ => None,
        };
        let db_for_notifier = db.clone();
        let publisher = app::store::events::Publisher::start(db.clone());
        let state = AppState { leptos_options, db, settings, sender, wake, publisher };
        let api = Arc::new(ApiSettings { operator_token: args.operator_token.clone() });
        let admin = match args.metrics_addr {
            Some(addr) => {
                let listener =
                    TcpListener::bind(addr).await.with_context(|| format!("could not listen on {addr} for metrics"))?;
                let access = Arc::new(crate::metrics::MetricsAccess::Open);
                Some((listener, operations_routes(readiness.clone(), access).with_state(state.clone())))
            }
            None => None,
        };
        let https = args.public_url.as_ref().is_some_and(|u| u.scheme() == "https");
        let site = Arc::new(crate::security::SiteOrigin::of(args.public_url.as_ref()));
        // Secure cookies when asked, or when the public URL says the portal is behind HTTPS.
        let router = sessions.layer(router(state, api, readiness, site, inspectors), args.secure_cookies || https);
        let router = crate::security::deadline(router, args.request_timeout);
        let router = crate::security::headers(crate::security::body_limits(router), https);

        let notifier = crate::notifier::Notifier::new(db_for_notifier, mailer, alert_hook, public_url);
        Ok(Self {
            listener,
            router,
            port,
            dispatcher,
            listen_url,
            retention: (db_for_retention, args.log_retention_days),
            admin,
            notifier,
        })
    }

    /// The port the application listens on (the real one when port 0 was asked for; 0 with
    /// `--no-web`).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of the `--metrics-addr` listener, when there is one.
    pub fn metrics_port(&self) -> Option<u16> {
        self.admin.as_ref().and_then(|(listener, _)| listener.local_addr().ok()).map(|a| a.port())
    }

    /// Serves and delivers until `shutdown` completes, then finishes the requests and the
    /// attempts under way.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let dispatcher = self.dispatcher.map(|d| tokio::spawn(d.run(stopped.clone())));
        let listener_task = self
            .listen_url
            .map(|(url, wake)| tokio::spawn(crate::dispatcher::listen_for_work(url, wake, stopped.clone())));
        let (db, retention_days) = self.retention;
        let admin = self.admin.map(|(listener, router)| {
            let mut stopped = stopped.clone();
            tracing::info!(
                "serving metrics and health on http://{}",
                listener.local_addr().map_or_else(|e| e.to_string(), |a| a.to_string())
            );
            tokio::spawn(async move {
                let stop = async move {
                    let _ = stopped.wait_for(|stop| *stop).await;
                };
                if let Err(e) = axum::serve(listener, router).with_graceful_shutdown(stop).await {
                    tracing::error!(error = %e, "the metrics listener failed");
                }
            })
        });
        let notifier = tokio::spawn(self.notifier.run(stopped.clone()));
        let pruner = tokio::spawn(crate::retention::run(db, retention_days, stopped));
        let served = match self.listener {
            Some(listener) => {
                tracing::info!("listening on http://{}", listener.local_addr()?);
                // Answers go out as soon as they are written: without TCP_NODELAY a response
                // written in pieces could wait ~40 ms on the client's delayed ACK.
                let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
                    if let Err(e) = tcp.set_nodelay(true) {
                        tracing::debug!(error = %e, "could not set TCP_NODELAY");
                    }
                });
                // The peer's address reaches handlers (sign-in throttling per client).
                let service = self.router.into_make_service_with_connect_info::<std::net::SocketAddr>();
                axum::serve(listener, service).with_graceful_shutdown(shutdown).await
            }
            None => {
                tracing::info!("delivering only (--no-web): no pages, no API");
                shutdown.await;
                Ok(())
            }
        };
        let _ = stop.send(true);
        if let Some(dispatcher) = dispatcher {
            let _ = dispatcher.await;
        }
        if let Some(task) = listener_task {
            let _ = task.await;
        }
        let _ = pruner.await;
        let _ = notifier.await;
        if let Some(admin) = admin {
            let _ = admin.await;
        }
        served.context("the server failed")
    }
}

/// A portal served on `https://` is a real one, with real partners' secrets: their key must not
/// be a file beside the database, where it goes into every backup of the secrets it seals.
fn refuse_key_file_behind_https(args: &ServeArgs) -> anyhow::Result<()> {
    let https = args.public_url.as_ref().is_some_and(|u| u.scheme() == "https");
    anyhow::ensure!(
        !https || args.secret_key.is_some(),
        "PORTAL_PUBLIC_URL is https:// but {} is not set: without it the key that seals webhook \
         secrets would be a file beside the database, in every backup of the database; set it to 32 \
         random bytes in base64 (`openssl rand -base64 32`) kept apart from the database",
        app::crypto::SECRET_KEY_VAR
    );
    Ok(())
}

/// The site's settings: its name is fixed, its folder comes from the settings; its files are
/// named by the hashes in `hash.txt` beside the binary when `hashed` (see [`crate::site`]).
fn leptos_options(args: &ServeArgs, hashed: bool) -> LeptosOptions {
    let env = match std::env::var("LEPTOS_ENV").as_deref() {
        Ok("DEV") | Ok("dev") | Ok("development") => Env::DEV,
        _ => Env::PROD,
    };
    LeptosOptions::builder()
        .output_name(SITE_NAME)
        .site_root(args.site_root.to_string_lossy().into_owned())
        .site_pkg_dir("pkg")
        .hash_files(hashed)
        .hash_file(crate::site::HASH_FILE.into())
        .site_addr(args.addr)
        .env(env)
        .build()
}

/// `/healthz`, `/readyz` and `/metrics` (who may read the metrics: `access`).
fn operations_routes(
    readiness: crate::health::Readiness,
    access: Arc<crate::metrics::MetricsAccess>,
) -> Router<AppState> {
    Router::new()
        .route("/healthz", axum::routing::get(crate::health::healthz))
        .route("/readyz", axum::routing::get(crate::health::readyz).layer(axum::Extension(readiness)))
        .route("/metrics", axum::routing::get(crate::metrics::serve).layer(axum::Extension(access)))
}

/// Pages, server functions, the REST API and static files, behind the sign-in guard.
fn router(
    state: AppState,
    api: Arc<ApiSettings>,
    readiness: crate::health::Readiness,
    site: Arc<crate::security::SiteOrigin>,
    inspectors: Arc<app::service::inspectors::Inspectors>,
) -> Router {
    let routes = generate_route_list(App);
    let access = Arc::new(crate::metrics::MetricsAccess::Operator(api.operator_token.clone()));
    operations_routes(readiness, access)
        .leptos_routes(&state, routes, {
            let options = state.leptos_options.clone();
            move || shell(options.clone())
        })
        .nest("/api/v1", rest::router(api))
        .route("/inspect/{id}", axum::routing::any(crate::inspect::capture).layer(axum::Extension(inspectors)))
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        .layer(axum::middleware::from_fn(crate::refusals::status_of_refusals))
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard::require_sign_in))
        .layer(axum::middleware::from_fn_with_state(site, crate::security::refuse_cross_site))
        .layer(axum::middleware::from_fn(crate::metrics::track_requests))
        // The wasm shrinks from 1.1 MB to about 0.4 MB on the wire.
        .layer(tower_http::compression::CompressionLayer::new())
        .with_state(state)
}

/// Creates the session table when missing (`portal migrate`).
pub async fn migrate_sessions(database_url: &str) -> anyhow::Result<()> {
    SessionBackend::connect(database_url).await?.migrate().await
}

/// The session store, in the same database as everything else.
enum SessionBackend {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
}

impl SessionBackend {
    async fn connect(database_url: &str) -> anyhow::Result<Self> {
        Ok(match Backend::of_url(database_url)? {
            Backend::Sqlite => {
                let options: sqlx::sqlite::SqliteConnectOptions =
                    database_url.parse().context("DATABASE_URL is not a valid SQLite URL")?;
                let pool = sqlx::SqlitePool::connect_with(options.create_if_missing(true))
                    .await
                    .context("could not open the session store")?;
                Self::Sqlite(SqliteStore::new(pool))
            }
            Backend::Postgres => {
                let pool = sqlx::PgPool::connect(database_url).await.context("could not open the session store")?;
                Self::Postgres(PostgresStore::new(pool))
            }
        })
    }

    async fn migrate(&self) -> anyhow::Result<()> {
        match self {
            Self::Sqlite(store) => store.migrate().await,
            Self::Postgres(store) => store.migrate().await,
        }
        .context("could not create the session table")
    }

    fn layer(self, router: Router, secure: bool) -> Router {
        fn with<S: SessionStore + Clone + tower_sessions::ExpiredDeletion>(
            router: Router,
            store: S,
            secure: bool,
        ) -> Router {
            // Expired sessions are swept out hourly; the task ends with the process.
            tokio::spawn(store.clone().continuously_delete_expired(tokio::time::Duration::from_secs(3600)));
            router.layer(
                SessionManagerLayer::new(store)
                    .with_name(SESSION_COOKIE)
                    .with_http_only(true)
                    .with_same_site(SameSite::Lax)
                    .with_secure(secure)
                    .with_expiry(Expiry::OnInactivity(SESSION_IDLE)),
            )
        }
        // Stored under a hash of their id: a copy of the database holds no live session.
        match self {
            Self::Sqlite(store) => with(router, HashedIds::new(store), secure),
            Self::Postgres(store) => with(router, HashedIds::new(store), secure),
        }
    }
}

/// Completes at Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
