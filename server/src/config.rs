//! The command line and the environment: every setting is a flag with an environment variable
//! behind it, parsed and checked at start so a bad value stops the process with one clear line.

use std::net::SocketAddr;
use std::path::PathBuf;

use app::domain::RetrySchedule;
use clap::builder::BoolishValueParser;
use clap::{Args, Parser, Subcommand};

/// Largest request body the portal takes (forms, server functions, API bodies, events,
/// templates), in bytes. A template is at most 16 KiB and an event's data is small: this leaves
/// room and stops a client from making the server read megabytes.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// Where the SQLite database lives when `DATABASE_URL` is not set.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/portal.db";

/// The partner webhook portal: serves the portal and the REST API and delivers webhooks.
#[derive(Debug, Parser)]
#[command(name = "portal", version, about, propagate_version = true)]
pub struct Cli {
    /// Database: `sqlite://path/file.db` (created when missing) or `postgres://user@host/db`.
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL, global = true, hide_env_values = true)]
    pub database_url: String,

    /// What to do; `serve` when left out.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The portal's commands.
#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant, reason = "parsed once at start; boxing buys nothing")]
pub enum Command {
    /// Serve the portal, the REST API and the dispatcher (the default).
    Serve(ServeArgs),
    /// Apply the database migrations and exit.
    Migrate,
    /// Manage partners (the tenants).
    #[command(subcommand)]
    Partner(PartnerCommand),
    /// Manage partners' users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage partners' API keys.
    #[command(subcommand, name = "api-key")]
    ApiKey(ApiKeyCommand),
    /// Publish events (the operator's side).
    #[command(subcommand)]
    Event(EventCommand),
}

/// `portal event …`
#[derive(Debug, Subcommand)]
pub enum EventCommand {
    /// Publish an event for a partner; a running portal delivers it to the partner's webhooks.
    Publish {
        /// The partner's id (`ptn_…`).
        #[arg(long)]
        partner: String,
        /// `production` (the default) or `sandbox`: whose webhooks get it.
        #[arg(long)]
        environment: Option<String>,
        /// The event type, e.g. `verification.completed`.
        #[arg(long = "type")]
        event_type: String,
        /// Overall result.
        #[arg(long, default_value = "success")]
        status: String,
        /// The details, a JSON object.
        #[arg(long, default_value = "{}")]
        data: String,
        /// Your id for the event (publishing it twice creates nothing new).
        #[arg(long)]
        id: Option<String>,
        /// Print one JSON object: {"id", "deliveries"}.
        #[arg(long)]
        json: bool,
    },
}

/// `portal partner …`
#[derive(Debug, Subcommand)]
pub enum PartnerCommand {
    /// Create a partner and its first user; prints the password (generated unless given).
    Create {
        /// The partner's display name.
        #[arg(long)]
        name: String,
        /// The first user's sign-in email.
        #[arg(long)]
        email: String,
        /// Read the password from standard input instead of generating one.
        #[arg(long)]
        password_stdin: bool,
        /// Print one JSON object: {"id", "email", "password"}.
        #[arg(long)]
        json: bool,
    },
    /// List every partner.
    List {
        /// Print a JSON array.
        #[arg(long)]
        json: bool,
    },
}

/// `portal user …`
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user to a partner; prints a one-time link for them to set their password (or
    /// takes the password from standard input).
    Add {
        /// The partner's id (`ptn_…`).
        #[arg(long)]
        partner: String,
        /// The user's sign-in email.
        #[arg(long)]
        email: String,
        /// `admin` (changes webhooks, keys and users) or `viewer` (reads webhooks and logs).
        #[arg(long, default_value = "viewer")]
        role: String,
        /// Read the password from standard input instead of printing a link.
        #[arg(long)]
        password_stdin: bool,
        /// The portal's address as users reach it, for the link.
        #[arg(long, env = "PORTAL_PUBLIC_URL", default_value = "http://127.0.0.1:3000", value_parser = parse_public_url)]
        public_url: url::Url,
        /// Print one JSON object: {"id", "partnerId", "email", "role", "link", "linkExpiresAt"}.
        #[arg(long)]
        json: bool,
    },
    /// Print a one-time link for a user to set a new password (their old one works until then).
    ResetPassword {
        /// The user's sign-in email.
        #[arg(long)]
        email: String,
        /// The portal's address as users reach it, for the link.
        #[arg(long, env = "PORTAL_PUBLIC_URL", default_value = "http://127.0.0.1:3000", value_parser = parse_public_url)]
        public_url: url::Url,
        /// Print one JSON object: {"link", "expiresAt"}.
        #[arg(long)]
        json: bool,
    },
}

/// `portal api-key …`
#[derive(Debug, Subcommand)]
pub enum ApiKeyCommand {
    /// Create an API key for a partner and print it (the only time it is shown).
    Create {
        /// The partner's id (`ptn_…`).
        #[arg(long)]
        partner: String,
        /// `production` (the default; the key starts `whp_live_`) or `sandbox` (`whp_sandbox_`):
        /// the only environment the key sees.
        #[arg(long, default_value = "production")]
        environment: String,
        /// A label for the key.
        #[arg(long, default_value = "Created from the command line")]
        name: String,
        /// `admin` (may change webhooks) or `viewer` (reads webhooks and logs only).
        #[arg(long, default_value = "admin")]
        role: String,
        /// Print one JSON object: {"id", "partnerId", "environment", "key"}.
        #[arg(long)]
        json: bool,
    },
}

/// Settings of `portal serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "PORTAL_ADDR", default_value = "127.0.0.1:3000")]
    pub addr: SocketAddr,

    /// Bearer token for the operator's calls (publishing events); at least 32 characters.
    /// Without it, operator calls are refused.
    #[arg(long, env = "PORTAL_OPERATOR_TOKEN", hide_env_values = true, value_parser = parse_operator_token)]
    pub operator_token: Option<OperatorToken>,

    /// Let webhooks point at loopback and private addresses, and use plain http://
    /// (development and tests only).
    #[arg(long, env = "PORTAL_ALLOW_PRIVATE_TARGETS", default_value = "false", value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub allow_private_targets: bool,

    /// Waits before each retry of a failed delivery, e.g. `1s,2s,4s,8s,16s`.
    #[arg(long, env = "PORTAL_RETRY_SCHEDULE", default_value = "1s,2s,4s,8s,16s", value_parser = parse_retry_schedule)]
    pub retry_schedule: RetrySchedule,

    /// Longest a request to the portal or the API may take before it is answered 503 and its
    /// work stopped, e.g. `30s` (1s to 10m): a request stuck on a lock or a render holds nothing
    /// for longer.
    #[arg(long, env = "PORTAL_REQUEST_TIMEOUT", default_value = "30s", value_parser = parse_request_timeout)]
    pub request_timeout: std::time::Duration,

    /// How long a receiver has to answer one delivery, e.g. `10s` (100ms to 60s).
    #[arg(long, env = "PORTAL_DELIVERY_TIMEOUT", default_value = "10s", value_parser = parse_timeout)]
    pub delivery_timeout: std::time::Duration,

    /// Days to keep delivery logs (1 to 3650).
    #[arg(long, env = "PORTAL_LOG_RETENTION_DAYS", default_value = "30", value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub log_retention_days: u32,

    /// Deactivate a webhook at once when its endpoint answers `410 Gone` (instead of retrying).
    #[arg(long, env = "PORTAL_DEACTIVATE_ON_GONE", default_value = "true", value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub deactivate_on_gone: bool,

    /// Let a `Retry-After` on a 429 or 503 answer put the next attempt later than the schedule
    /// (up to an hour).
    #[arg(long, env = "PORTAL_HONOR_RETRY_AFTER", default_value = "true", value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub honor_retry_after: bool,

    /// Also serve `/metrics`, `/healthz` and `/readyz` on this address, without the operator
    /// token (for a private network; the only way to reach them with `--no-web`).
    #[arg(long, env = "PORTAL_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,

    /// The program the template sandbox starts as its workers (with the argument
    /// `template-worker`); this binary when unset. Tests, whose own binary is not the portal,
    /// name the portal's.
    #[arg(long, env = "PORTAL_TEMPLATE_WORKER", hide = true)]
    pub template_worker: Option<std::path::PathBuf>,

    /// The portal's address as partners reach it, for links in emails (e.g.
    /// `https://webhooks.example.com`); `http://` and the listen address when unset. On
    /// `https://` the portal needs `PORTAL_SECRET_KEY`.
    #[arg(long, env = "PORTAL_PUBLIC_URL", value_parser = parse_public_url)]
    pub public_url: Option<url::Url>,

    /// 32 bytes in base64 (`openssl rand -base64 32`) that seal webhook secrets at rest. Without
    /// it a key file is made beside the database, which is refused on an `https://` public URL.
    /// Prefer the environment variable: a flag shows in the process list.
    #[arg(long, env = "PORTAL_SECRET_KEY", hide_env_values = true, value_parser = parse_secret_key)]
    pub secret_key: Option<SecretKey>,

    /// SMTP server for deactivation emails: `smtp://host:25` (plain, local relays),
    /// `smtp://user:pass@host:587?tls=required` (STARTTLS) or `smtps://user:pass@host:465`.
    /// No emails when unset.
    #[arg(long, env = "PORTAL_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,

    /// The sender of deactivation emails.
    #[arg(long, env = "PORTAL_SMTP_FROM", default_value = "Partner Webhook Portal <portal@localhost>", value_parser = parse_mailbox)]
    pub smtp_from: lettre::message::Mailbox,

    /// Where the operator receives `webhook.deactivated` events, signed like partners'
    /// deliveries (needs `--alert-webhook-secret`).
    #[arg(long, env = "PORTAL_ALERT_WEBHOOK_URL", value_parser = parse_public_url, requires = "alert_webhook_secret")]
    pub alert_webhook_url: Option<url::Url>,

    /// The signing secret of the operator's alert webhook, `whsec_` and base64 (at least 24
    /// bytes), as receivers of Standard Webhooks expect.
    #[arg(long, env = "PORTAL_ALERT_WEBHOOK_SECRET", hide_env_values = true, value_parser = parse_alert_secret)]
    pub alert_webhook_secret: Option<AlertSecret>,

    /// Behind a reverse proxy: take the client's address from the last `X-Forwarded-For`
    /// entry (the proxy's) for sign-in throttling. Leave off when clients connect directly, or
    /// they could pick their own address.
    #[arg(long, env = "PORTAL_TRUST_FORWARDED_FOR", default_value = "false", value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub trust_forwarded_for: bool,

    /// How long a sign-in lasts at most, however active (e.g. `7d`, `12h`); sessions also end
    /// after 12 hours without use.
    #[arg(long, env = "PORTAL_SESSION_LIFETIME", default_value = "7d", value_parser = parse_lifetime)]
    pub session_lifetime: std::time::Duration,

    /// Webhooks one partner may have.
    #[arg(long, env = "PORTAL_MAX_WEBHOOKS", default_value = "100", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_webhooks: u32,

    /// API keys one partner may have in use (revoked ones don't count).
    #[arg(long, env = "PORTAL_MAX_API_KEYS", default_value = "20", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_api_keys: u32,

    /// Users one partner may have.
    #[arg(long, env = "PORTAL_MAX_USERS", default_value = "50", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_users: u32,

    /// Resends one partner may ask for in a minute.
    #[arg(long, env = "PORTAL_RESENDS_PER_MINUTE", default_value = "60", value_parser = clap::value_parser!(u32).range(1..))]
    pub resends_per_minute: u32,

    /// Replays one partner may start in a minute.
    #[arg(long, env = "PORTAL_REPLAYS_PER_MINUTE", default_value = "5", value_parser = clap::value_parser!(u32).range(1..))]
    pub replays_per_minute: u32,

    /// Test sends one partner may make in a minute.
    #[arg(long, env = "PORTAL_TESTS_PER_MINUTE", default_value = "30", value_parser = clap::value_parser!(u32).range(1..))]
    pub tests_per_minute: u32,

    /// Replay plans (the count of events a replay would send) one partner may ask for in a minute.
    #[arg(long, env = "PORTAL_REPLAY_PLANS_PER_MINUTE", default_value = "60", value_parser = clap::value_parser!(u32).range(1..))]
    pub replay_plans_per_minute: u32,

    /// Signature checks (`/tools/signature`, `POST /api/v1/signatures/check`) one partner may ask for in a minute.
    #[arg(long, env = "PORTAL_SIGNATURE_CHECKS_PER_MINUTE", default_value = "60", value_parser = clap::value_parser!(u32).range(1..))]
    pub signature_checks_per_minute: u32,

    /// Request inspectors (capture URLs, `/inspectors`) one partner may have at once.
    #[arg(long, env = "PORTAL_MAX_INSPECTORS", default_value = "5", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_inspectors: u32,

    /// Mark the session cookie `Secure` (set it when the portal is served over HTTPS).
    #[arg(long, env = "PORTAL_SECURE_COOKIES", default_value = "false", value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub secure_cookies: bool,

    /// Deliver only: run the dispatcher without pages or API, beside portals that serve them
    /// on the same database.
    #[arg(long, env = "PORTAL_NO_WEB", default_value = "false", value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub no_web: bool,

    /// Serve only: pages and API without the dispatcher, beside `--no-web` processes that
    /// deliver (on PostgreSQL), so each part scales on its own.
    #[arg(long, env = "PORTAL_NO_DISPATCHER", default_value = "false", value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", conflicts_with = "no_web")]
    pub no_dispatcher: bool,

    /// Folder of the built site (wasm, JS, CSS); `target/site` under the current folder by default.
    #[arg(long, env = "LEPTOS_SITE_ROOT", default_value = "target/site")]
    pub site_root: PathBuf,
}

impl ServeArgs {
    /// The settings from the environment alone, as `portal` with no command uses them.
    pub fn from_env() -> Result<Self, clap::Error> {
        #[derive(Parser)]
        struct Only {
            #[command(flatten)]
            serve: ServeArgs,
        }
        Only::try_parse_from(["portal"]).map(|only| only.serve)
    }
}

/// The operator's bearer token. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct OperatorToken(String);

impl OperatorToken {
    /// The token, to compare with what a request sends.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `given` is this token, compared in constant time (a length difference tells
    /// nothing useful).
    pub fn matches(&self, given: &str) -> bool {
        use subtle::ConstantTimeEq as _;
        given.len() == self.0.len() && bool::from(given.as_bytes().ct_eq(self.0.as_bytes()))
    }
}

impl std::fmt::Debug for OperatorToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OperatorToken(********)")
    }
}

/// Shortest operator token accepted: a guessable token would let anyone publish events.
pub const MIN_OPERATOR_TOKEN_CHARS: usize = 32;

fn parse_operator_token(value: &str) -> Result<OperatorToken, String> {
    if value.chars().count() < MIN_OPERATOR_TOKEN_CHARS {
        return Err(format!("must be at least {MIN_OPERATOR_TOKEN_CHARS} characters"));
    }
    if !value.chars().all(|c| c.is_ascii_graphic()) {
        return Err("may hold only visible ASCII characters (no spaces)".into());
    }
    Ok(OperatorToken(value.to_owned()))
}

/// The key that seals webhook secrets at rest (`PORTAL_SECRET_KEY`). Never printed.
#[derive(Clone)]
pub struct SecretKey([u8; 32]);

impl SecretKey {
    /// The key's bytes.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(********)")
    }
}

fn parse_secret_key(value: &str) -> Result<SecretKey, String> {
    app::crypto::SecretBox::parse_key(value).map(SecretKey).map_err(|e| e.to_string())
}

/// The secret that signs the operator's alert webhooks. Never printed.
#[derive(Clone)]
pub struct AlertSecret(pub app::domain::SigningSecret);

impl std::fmt::Debug for AlertSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AlertSecret(********)")
    }
}

fn parse_alert_secret(value: &str) -> Result<AlertSecret, String> {
    use base64::Engine as _;
    let encoded = value
        .strip_prefix(app::domain::SIGNING_SECRET_PREFIX)
        .ok_or("must start with `whsec_` followed by base64, like a webhook's signing secret")?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| "is not valid base64 after `whsec_`".to_owned())?;
    if bytes.len() < 24 {
        return Err(format!("holds {} bytes; use at least 24 random bytes", bytes.len()));
    }
    Ok(AlertSecret(app::domain::SigningSecret::from_trusted(value.to_owned())))
}

fn parse_public_url(value: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(value.trim()).map_err(|e| format!("is not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err("must be an http:// or https:// URL with a host".into());
    }
    Ok(url)
}

fn parse_mailbox(value: &str) -> Result<lettre::message::Mailbox, String> {
    value.parse().map_err(|e| format!("is not an email address like `Portal <portal@example.com>` ({e})"))
}

/// A duration like `example`, between `min` and `max` (written as `bounds` in the error).
fn parse_duration_within(
    value: &str,
    example: &str,
    (min, max): (std::time::Duration, std::time::Duration),
    bounds: &str,
) -> Result<std::time::Duration, String> {
    let duration =
        humantime::parse_duration(value.trim()).map_err(|e| format!("is not a duration like `{example}` ({e})"))?;
    if duration < min || duration > max {
        return Err(format!("must be between {bounds}"));
    }
    Ok(duration)
}

fn parse_lifetime(value: &str) -> Result<std::time::Duration, String> {
    use std::time::Duration;
    parse_duration_within(value, "7d", (Duration::from_secs(1), Duration::from_secs(90 * 86_400)), "1s and 90d")
}

fn parse_request_timeout(value: &str) -> Result<std::time::Duration, String> {
    use std::time::Duration;
    parse_duration_within(value, "30s", (Duration::from_secs(1), Duration::from_secs(600)), "1s and 10m")
}

fn parse_timeout(value: &str) -> Result<std::time::Duration, String> {
    use std::time::Duration;
    parse_duration_within(value, "10s", (Duration::from_millis(100), Duration::from_secs(60)), "100ms and 60s")
}

fn parse_retry_schedule(value: &str) -> Result<RetrySchedule, String> {
    RetrySchedule::parse(value).map_err(|e| e.message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serve_is_the_default_and_reads_flags() {
        let cli = Cli::try_parse_from(["portal", "serve", "--addr", "127.0.0.1:0"]).unwrap();
        match cli.command {
            Some(Command::Serve(args)) => {
                assert_eq!(args.addr.port(), 0);
                assert_eq!(args.retry_schedule, RetrySchedule::default());
                assert_eq!(args.log_retention_days, 30);
                assert!(!args.allow_private_targets);
            }
            other => panic!("parsed {other:?}"),
        }
        assert!(Cli::try_parse_from(["portal"]).unwrap().command.is_none());
    }

    #[test]
    fn bad_values_name_the_setting() {
        let err = Cli::try_parse_from(["portal", "serve", "--addr", "nowhere"]).unwrap_err().to_string();
        assert!(err.contains("--addr"), "{err}");
        let err = Cli::try_parse_from(["portal", "serve", "--retry-schedule", "1s,later"]).unwrap_err().to_string();
        assert!(err.contains("--retry-schedule") && err.contains("`later`"), "{err}");
        let err = Cli::try_parse_from(["portal", "serve", "--operator-token", "short"]).unwrap_err().to_string();
        assert!(err.contains("at least 32"), "{err}");
        let err = Cli::try_parse_from(["portal", "serve", "--log-retention-days", "0"]).unwrap_err().to_string();
        assert!(err.contains("--log-retention-days"), "{err}");
        let err = Cli::try_parse_from(["portal", "serve", "--allow-private-targets", "maybe"]).unwrap_err().to_string();
        assert!(err.contains("--allow-private-targets"), "{err}");
    }

    #[test]
    fn operator_token_never_prints() {
        let token = parse_operator_token(&"s".repeat(40)).unwrap();
        assert!(!format!("{token:?}").contains("sss"));
    }

    #[test]
    fn partner_create_takes_its_flags() {
        let cli = Cli::try_parse_from([
            "portal",
            "partner",
            "create",
            "--name",
            "Acme",
            "--email",
            "a@acme.test",
            "--password-stdin",
            "--json",
        ])
        .unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Partner(PartnerCommand::Create { password_stdin: true, json: true, .. }))
        ));
    }
}
