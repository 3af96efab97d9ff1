//! The steps of one delivery attempt, each testable alone: build the request (template,
//! signatures, headers), send it, and describe the outcome. The dispatcher's loop (in the
//! server crate) claims deliveries and calls these; "Test Webhook" calls them directly. The
//! signature checker (`verify`) checks a request the way a receiver does.

pub mod sign;
pub mod verify;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

pub use crate::domain::AttemptResult;
pub use crate::domain::OutgoingRequest;
use crate::domain::{ALLOW_PRIVATE_HINT, EventBody, FailureCause, is_private_ip, private_kind};
use crate::domain::{DeliveryTarget, SigningSecret};
use crate::sandbox::{RenderError, TemplateSandbox, Unavailable};

/// `User-Agent` of every delivery.
pub const USER_AGENT: &str = concat!("PartnerWebhookPortal/", env!("CARGO_PKG_VERSION"));
/// How much of a response body the log keeps.
pub const RESPONSE_BODY_LIMIT: usize = 4096;
/// How long a receiver has to answer.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait a `Retry-After` answer can ask for; longer asks are cut to this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// The body of `event` for `webhook`: its template's output (rendered in the sandbox) or the
/// event as JSON. A template that fails gives the reason, which fails the attempt; a sandbox
/// that can't render now is [`Unavailable`], which is no attempt.
pub async fn build_body(
    sandbox: &TemplateSandbox,
    webhook: &DeliveryTarget,
    event: &EventBody,
) -> Result<Result<String, String>, Unavailable> {
    match &webhook.settings.payload_template {
        Some(template) => match sandbox.render(&webhook.partner_id, template, event).await {
            Ok(body) => Ok(Ok(body)),
            Err(RenderError::Template(e)) => Ok(Err(format!("payload template: {e}"))),
            Err(RenderError::Unavailable(e)) => Err(e),
        },
        None => Ok(serde_json::to_string(event).map_err(|e| e.to_string())),
    }
}

/// Builds the request of `body` (see [`build_body`]) for `event` to `webhook` at time `now`:
/// the signatures over those exact bytes, then the headers.
pub fn build_request(webhook: &DeliveryTarget, event: &EventBody, body: String, now: DateTime<Utc>) -> OutgoingRequest {
    let timestamp = now.timestamp();
    let mut standard =
        vec![sign::standard_signature(&webhook.signing_secret, event.id.as_str(), timestamp, body.as_bytes())];
    if let Some(previous) = &webhook.previous_secret {
        standard.push(sign::standard_signature(previous, event.id.as_str(), timestamp, body.as_bytes()));
    }
    let mut headers = vec![
        ("content-type".to_owned(), "application/json".to_owned()),
        ("user-agent".to_owned(), USER_AGENT.to_owned()),
        // During a rotation's overlap the one-secret header stays on the old secret, so a
        // receiver that checks only it keeps working until the overlap ends; the Standard
        // Webhooks header carries both (see the webhook page's words on rotating).
        ("x-webhook-signature".to_owned(), sign::hex_signature(hex_secret(webhook), body.as_bytes())),
        ("webhook-id".to_owned(), event.id.to_string()),
        ("webhook-timestamp".to_owned(), timestamp.to_string()),
        ("webhook-signature".to_owned(), standard.join(" ")),
    ];
    let auth_header_name = webhook.settings.auth_header.as_ref().map(|h| h.name().to_owned());
    if let Some(header) = &webhook.settings.auth_header {
        headers.push((header.name().to_owned(), header.expose_value().to_owned()));
    }
    OutgoingRequest { url: webhook.settings.url.to_string(), headers, body, auth_header_name }
}

/// The secret `x-webhook-signature` is keyed with: the rotated-out one while it is still
/// valid, then the current one.
pub fn hex_secret(webhook: &DeliveryTarget) -> &SigningSecret {
    webhook.previous_secret.as_ref().unwrap_or(&webhook.signing_secret)
}

/// Sends deliveries: one shared client (connections reused), no redirects, no proxy, a time
/// limit, and no connection to a loopback, private or metadata address unless the operator
/// allows it; payload templates render in its sandbox.
#[derive(Clone, Debug)]
pub struct Sender {
    client: reqwest::Client,
    allow_private: bool,
    sandbox: TemplateSandbox,
    /// The portal's own receivers (request inspectors), sent to in-process.
    local: Option<Arc<dyn LocalReceiver>>,
}

/// What a receiver inside the portal answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalAnswer {
    /// The HTTP status it would have answered.
    pub status: u16,
    /// Its body.
    pub body: String,
}

/// A receiver inside the portal (the request inspector's capture URLs): requests to the URLs it
/// owns are handed to it in-process, with the same method, headers and body, whatever the
/// address rules say, and never leave the process.
pub trait LocalReceiver: Send + Sync + std::fmt::Debug {
    /// Whether `url` is one of its URLs.
    fn owns(&self, url: &str) -> bool;
    /// Takes `request` as a POST to its URL and answers it.
    fn receive<'a>(
        &'a self,
        request: &'a OutgoingRequest,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = LocalAnswer> + Send + 'a>>;
}

/// Resolves names for deliveries, dropping private addresses when they are not allowed; the
/// connection then goes to an address that was checked.
#[derive(Debug)]
struct CheckedResolver {
    allow_private: bool,
}

impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> =
                addrs.iter().copied().filter(|a| allow_private || !is_private_ip(a.ip())).collect();
            if allowed.is_empty() {
                if addrs.is_empty() {
                    return Err(format!("{host} resolves to no address").into());
                }
                let first = addrs[0].ip();
                let kind = private_kind(first).unwrap_or("private");
                let refused: Box<dyn std::error::Error + Send + Sync> = Box::new(RefusedTarget(format!(
                    "{host} resolves to {first}, which is {kind}, and to no public address; {ALLOW_PRIVATE_HINT}"
                )));
                return Err(refused);
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// A connection refused because its target is private; told apart from other connection
/// errors so the log and the metrics can say so.
#[derive(Debug)]
struct RefusedTarget(String);

impl std::fmt::Display for RefusedTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RefusedTarget {}

impl Sender {
    /// A sender with the given time limit per attempt, rendering templates in `sandbox`.
    pub fn new(allow_private: bool, timeout: Duration, sandbox: TemplateSandbox) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            // A proxy from the environment (HTTP(S)_PROXY, ALL_PROXY) would resolve names past
            // the address check below.
            .no_proxy()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(CheckedResolver { allow_private }))
            .pool_idle_timeout(Duration::from_secs(60))
            .build()?;
        Ok(Self { client, allow_private, sandbox, local: None })
    }

    /// This sender, handing requests to `receiver`'s URLs to it in-process.
    pub fn with_local(self, receiver: Arc<dyn LocalReceiver>) -> Self {
        Self { local: Some(receiver), ..self }
    }

    /// The sandbox payload templates render in.
    pub fn sandbox(&self) -> &TemplateSandbox {
        &self.sandbox
    }

    /// Sends one request and describes what happened; never fails itself.
    pub async fn send(&self, request: &OutgoingRequest) -> AttemptResult {
        let started = Instant::now();
        let elapsed = || started.elapsed().as_millis() as i64;
        if let Some(local) = self.local.as_ref().filter(|local| local.owns(&request.url)) {
            let answer = local.receive(request).await;
            let status =
                reqwest::StatusCode::from_u16(answer.status).unwrap_or(reqwest::StatusCode::INTERNAL_SERVER_ERROR);
            let mut body = answer.body;
            body.truncate(body.floor_char_boundary(RESPONSE_BODY_LIMIT));
            return answered(status, None, body, elapsed());
        }
        // An IP literal never reaches the resolver: check it here.
        if let Ok(url) = url::Url::parse(&request.url) {
            let literal = match url.host() {
                Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
                Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
                _ => None,
            };
            if let Some(why) = literal.filter(|_| !self.allow_private).and_then(crate::domain::refused_address) {
                return AttemptResult::failed(
                    FailureCause::RefusedTarget,
                    format!("refused: {why}; {ALLOW_PRIVATE_HINT}"),
                    elapsed(),
                );
            }
        }
        let mut builder = self.client.post(&request.url).body(request.body.clone());
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        let response = match builder.send().await {
            Ok(response) => response,
            Err(e) => {
                let (cause, error) = describe(&e);
                return AttemptResult::failed(cause, error, elapsed());
            }
        };
        let status = response.status();
        let retry_after = if matches!(status.as_u16(), 429 | 503) {
            response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, Utc::now()))
        } else {
            None
        };
        let body = read_start(response).await;
        let latency_ms = elapsed();
        match body {
            Err(e) => {
                let (cause, error) = describe(&e);
                AttemptResult { status_code: Some(status.as_u16()), ..AttemptResult::failed(cause, error, latency_ms) }
            }
            Ok(body) => answered(status, retry_after, body, latency_ms),
        }
    }
}

/// The attempt of a receiver that answered `status` with `body` (its start), asking to be left
/// alone for `retry_after`.
fn answered(
    status: reqwest::StatusCode,
    retry_after: Option<Duration>,
    body: String,
    latency_ms: i64,
) -> AttemptResult {
    let error = if status.is_success() {
        None
    } else if status.is_redirection() {
        Some(format!("answered {status}: redirects are not followed"))
    } else if let Some(wait) = retry_after {
        Some(format!("answered {status} and asked to wait {}", humantime::format_duration(wait)))
    } else {
        Some(format!("answered {status}"))
    };
    AttemptResult {
        success: status.is_success(),
        status_code: Some(status.as_u16()),
        latency_ms,
        response_body: Some(body),
        error,
        cause: None,
        retry_after_secs: retry_after.map(|d| d.as_secs()),
    }
}

/// A `Retry-After` value (seconds, or an HTTP date) as a wait from `now`, capped at
/// [`MAX_RETRY_AFTER`]; `None` when it can't be read or asks for no wait.
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    let wait = if let Ok(secs) = value.parse::<u64>() {
        Duration::from_secs(secs)
    } else {
        let at = DateTime::parse_from_rfc2822(value).ok()?.with_timezone(&Utc);
        (at - now).to_std().ok()?
    };
    (!wait.is_zero()).then(|| wait.min(MAX_RETRY_AFTER))
}

/// The first 4 KiB of a body, read no further.
async fn read_start(mut response: reqwest::Response) -> Result<String, reqwest::Error> {
    let mut kept = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = RESPONSE_BODY_LIMIT - kept.len();
        kept.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if kept.len() >= RESPONSE_BODY_LIMIT {
            break;
        }
    }
    Ok(String::from_utf8_lossy(&kept).into_owned())
}

/// A failure in words a partner can act on, and its kind.
fn describe(e: &reqwest::Error) -> (FailureCause, String) {
    use std::error::Error as _;
    let (mut cause, mut text) = if e.is_timeout() {
        (FailureCause::Timeout, "timed out: no answer within the time limit".to_owned())
    } else if e.is_connect() {
        (FailureCause::ConnectError, "could not connect".to_owned())
    } else {
        (FailureCause::RequestError, "request failed".to_owned())
    };
    let mut source = e.source();
    while let Some(inner) = source {
        if inner.is::<RefusedTarget>() {
            cause = FailureCause::RefusedTarget;
        }
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    (cause, text)
}

/// Builds and sends one request; a request that can't be built is a failed attempt. A
/// template sandbox that can't render now is [`Unavailable`]: nothing was attempted.
pub async fn attempt(
    sender: &Sender,
    webhook: &DeliveryTarget,
    event: &EventBody,
) -> Result<(Option<OutgoingRequest>, AttemptResult), Unavailable> {
    Ok(match build_body(&sender.sandbox, webhook, event).await? {
        Ok(body) => {
            let request = build_request(webhook, event, body, Utc::now());
            let result = sender.send(&request).await;
            count(&result);
            (Some(request), result)
        }
        Err(error) => {
            let result = AttemptResult::failed(FailureCause::InvalidRequest, error, 0);
            count(&result);
            (None, result)
        }
    })
}

/// Every attempt in the metrics: by outcome class, and how long it took.
fn count(result: &AttemptResult) {
    metrics::counter!("portal_attempts_total", "outcome" => result.class()).increment(1);
    metrics::histogram!("portal_attempt_duration_seconds").record(result.latency_ms as f64 / 1000.0);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(url: String) -> OutgoingRequest {
        OutgoingRequest { url, headers: Vec::new(), body: "{}".into(), auth_header_name: None }
    }

    /// A listener that would accept a delivery, to prove none reaches it.
    async fn local_port() -> (tokio::net::TcpListener, u16) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        (listener, port)
    }

    #[tokio::test]
    async fn private_addresses_are_refused_unless_allowed() {
        let (_listener, port) = local_port().await;
        let sandbox = TemplateSandbox::new("/nonexistent/portal".into());
        let strict = Sender::new(false, Duration::from_secs(2), sandbox).unwrap();
        // An IP literal never reaches the resolver; it is checked before connecting.
        let result = strict.send(&request(format!("http://127.0.0.1:{port}/hook"))).await;
        assert_eq!(
            result.error.as_deref(),
            Some("refused: address 127.0.0.1, which is loopback; set PORTAL_ALLOW_PRIVATE_TARGETS for development")
        );
        let result = strict.send(&request("http://169.254.169.254/latest/meta-data/".into())).await;
        assert!(result.error.as_deref().unwrap().contains("169.254.169.254, which is the cloud metadata service"));
        let result = strict.send(&request("http://10.0.0.5/hook".into())).await;
        assert!(result.error.as_deref().unwrap().contains("address 10.0.0.5, which is private"), "{result:?}");
        assert_eq!(result.class(), "refused_target");
        // A name is checked for every address it resolves to.
        // (A rebinding name does the same: whatever it resolves to is checked, and the
        // connection goes only to a checked address.)
        let result = strict.send(&request(format!("http://localhost:{port}/hook"))).await;
        let error = result.error.as_deref().unwrap();
        assert!(!result.success && error.contains("localhost resolves to") && error.contains("loopback"), "{result:?}");
        assert!(error.contains("PORTAL_ALLOW_PRIVATE_TARGETS"), "{error}");
        assert_eq!(result.status_code, None, "nothing was sent");
        assert_eq!(result.class(), "refused_target", "told apart from other connection errors");
    }

    #[test]
    fn retry_after_reads_seconds_and_dates_and_is_capped() {
        let now = DateTime::parse_from_rfc3339("2026-11-22T10:00:00Z").unwrap().with_timezone(&Utc);
        assert_eq!(parse_retry_after("30", now), Some(Duration::from_secs(30)));
        assert_eq!(parse_retry_after(" 120 ", now), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("Sun, 22 Nov 2026 10:01:30 GMT", now), Some(Duration::from_secs(90)));
        assert_eq!(parse_retry_after("86400", now), Some(MAX_RETRY_AFTER), "capped at an hour");
        assert_eq!(parse_retry_after("0", now), None);
        assert_eq!(parse_retry_after("Sun, 22 Nov 2026 09:00:00 GMT", now), None, "a past date asks for nothing");
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }

    #[test]
    fn the_log_masks_the_auth_header() {
        let request = OutgoingRequest {
            url: "https://x.test/".into(),
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("X-Key".into(), "a-long-secret-value-1234".into()),
            ],
            body: "{}".into(),
            auth_header_name: Some("x-key".into()),
        };
        let logged = request.logged_headers();
        assert_eq!(logged[0].1, "application/json");
        assert_eq!(logged[1].1, "••••••••1234");
    }
}
