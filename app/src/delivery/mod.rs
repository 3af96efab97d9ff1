//! The steps of one delivery attempt, each testable alone: build the request (template,
//! signatures, headers), send it, and describe the outcome. The dispatcher's loop (in the
//! server crate) claims deliveries and calls these; "Test Webhook" calls them directly.

pub mod sign;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

pub use crate::domain::AttemptResult;
use crate::domain::{EventBody, is_private_ip};
use crate::store::webhooks::WebhookRecord;

/// `User-Agent` of every delivery.
pub const USER_AGENT: &str = concat!("PartnerWebhookPortal/", env!("CARGO_PKG_VERSION"));
/// How much of a response body the log keeps.
pub const RESPONSE_BODY_LIMIT: usize = 4096;
/// How long a receiver has to answer.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A request ready to send: exactly these bytes, these headers.
#[derive(Debug, Clone)]
pub struct OutgoingRequest {
    /// Where it goes.
    pub url: String,
    /// Headers in order, the auth header's real value included.
    pub headers: Vec<(String, String)>,
    /// The body, as signed.
    pub body: String,
    /// The auth header's name, so the log can mask its value.
    auth_header_name: Option<String>,
}

impl OutgoingRequest {
    /// The headers as the log keeps them: the auth header's value masked.
    pub fn logged_headers(&self) -> Vec<(String, String)> {
        self.headers
            .iter()
            .map(|(name, value)| {
                if self.auth_header_name.as_deref().is_some_and(|auth| auth.eq_ignore_ascii_case(name)) {
                    (name.clone(), crate::domain::mask(value))
                } else {
                    (name.clone(), value.clone())
                }
            })
            .collect()
    }
}

/// Builds the request for `event` to `webhook` at time `now`: the body (template or default),
/// then the signatures over those exact bytes, then the headers. A template that fails gives
/// the reason, which fails the attempt.
pub fn build_request(
    webhook: &WebhookRecord,
    event: &EventBody,
    now: DateTime<Utc>,
) -> Result<OutgoingRequest, String> {
    let body = match &webhook.settings.payload_template {
        Some(template) => template.render(event).map_err(|e| format!("payload template: {e}"))?,
        None => serde_json::to_string(event).map_err(|e| e.to_string())?,
    };
    let timestamp = now.timestamp();
    let mut standard = vec![sign::standard_signature(&webhook.signing_secret, &event.id, timestamp, body.as_bytes())];
    if let Some(previous) = &webhook.previous_secret {
        standard.push(sign::standard_signature(previous, &event.id, timestamp, body.as_bytes()));
    }
    let mut headers = vec![
        ("content-type".to_owned(), "application/json".to_owned()),
        ("user-agent".to_owned(), USER_AGENT.to_owned()),
        ("x-webhook-signature".to_owned(), sign::hex_signature(&webhook.signing_secret, body.as_bytes())),
        ("webhook-id".to_owned(), event.id.clone()),
        ("webhook-timestamp".to_owned(), timestamp.to_string()),
        ("webhook-signature".to_owned(), standard.join(" ")),
    ];
    let auth_header_name = webhook.settings.auth_header.as_ref().map(|h| h.name().to_owned());
    if let Some(header) = &webhook.settings.auth_header {
        headers.push((header.name().to_owned(), header.expose_value().to_owned()));
    }
    Ok(OutgoingRequest { url: webhook.settings.url.to_string(), headers, body, auth_header_name })
}

/// Sends deliveries: one shared client (connections reused), no redirects, a time limit, and
/// no connection to a loopback, private or metadata address unless the operator allows it.
#[derive(Clone, Debug)]
pub struct Sender {
    client: reqwest::Client,
    allow_private: bool,
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
                let reason =
                    if addrs.is_empty() { "resolves to no address" } else { "resolves only to private addresses" };
                return Err(format!("{host} {reason}").into());
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

impl Sender {
    /// A sender with the given time limit per attempt.
    pub fn new(allow_private: bool, timeout: Duration) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(CheckedResolver { allow_private }))
            .pool_idle_timeout(Duration::from_secs(60))
            .build()?;
        Ok(Self { client, allow_private })
    }

    /// Sends one request and describes what happened; never fails itself.
    pub async fn send(&self, request: &OutgoingRequest) -> AttemptResult {
        let started = Instant::now();
        let failed = |error: String, status: Option<u16>, body: Option<String>| AttemptResult {
            success: false,
            status_code: status,
            latency_ms: started.elapsed().as_millis() as i64,
            response_body: body,
            error: Some(error),
        };
        // An IP literal never reaches the resolver: check it here.
        if let Ok(url) = url::Url::parse(&request.url) {
            let literal = match url.host() {
                Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
                Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
                _ => None,
            };
            if literal.is_some_and(|ip| !self.allow_private && is_private_ip(ip)) {
                return failed("the URL points at a private address, which is not allowed".into(), None, None);
            }
        }
        let mut builder = self.client.post(&request.url).body(request.body.clone());
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        let response = match builder.send().await {
            Ok(response) => response,
            Err(e) => return failed(describe(&e), None, None),
        };
        let status = response.status();
        let body = read_start(response).await;
        let latency_ms = started.elapsed().as_millis() as i64;
        match body {
            Err(e) => failed(describe(&e), Some(status.as_u16()), None),
            Ok(body) if status.is_success() => AttemptResult {
                success: true,
                status_code: Some(status.as_u16()),
                latency_ms,
                response_body: Some(body),
                error: None,
            },
            Ok(body) => {
                let error = if status.is_redirection() {
                    format!("answered {status}: redirects are not followed")
                } else {
                    format!("answered {status}")
                };
                AttemptResult {
                    success: false,
                    status_code: Some(status.as_u16()),
                    latency_ms,
                    response_body: Some(body),
                    error: Some(error),
                }
            }
        }
    }
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

/// A failure in words a partner can act on.
fn describe(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut text = if e.is_timeout() {
        "timed out: no answer within the time limit".to_owned()
    } else if e.is_connect() {
        "could not connect".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// "Test Webhook": sends a sample `verification.completed` event to the webhook at once,
/// active or not, logs it as a test attempt (never retried, not counted in health) and says
/// what happened.
#[tracing::instrument(skip_all, fields(webhook = %webhook.id))]
pub async fn send_test(
    db: &crate::store::Db,
    sender: &Sender,
    webhook: &WebhookRecord,
) -> anyhow::Result<AttemptResult> {
    use crate::store::deliveries::{AttemptRecord, Next, record};
    let event = EventBody { id: format!("evt_test_{}", ulid::Ulid::new()), ..EventBody::sample() };
    let (request, result) = attempt(sender, webhook, &event).await;
    let log = AttemptRecord {
        delivery: None,
        partner: &webhook.partner_id,
        webhook: &webhook.id,
        event: &event,
        number: 1,
        request: request.as_ref(),
        result: &result,
        origin: crate::domain::Origin::Test,
    };
    record(db, &log, &Next::Succeeded).await?;
    Ok(result)
}

/// Builds and sends one request; a request that can't be built is a failed attempt.
pub async fn attempt(
    sender: &Sender,
    webhook: &WebhookRecord,
    event: &EventBody,
) -> (Option<OutgoingRequest>, AttemptResult) {
    match build_request(webhook, event, Utc::now()) {
        Ok(request) => {
            let result = sender.send(&request).await;
            (Some(request), result)
        }
        Err(error) => (
            None,
            AttemptResult { success: false, status_code: None, latency_ms: 0, response_body: None, error: Some(error) },
        ),
    }
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
        let strict = Sender::new(false, Duration::from_secs(2)).unwrap();
        // An IP literal never reaches the resolver; it is checked before connecting.
        let result = strict.send(&request(format!("http://127.0.0.1:{port}/hook"))).await;
        assert!(!result.success && result.error.as_deref().unwrap().contains("private address"), "{result:?}");
        // A name is checked for every address it resolves to.
        let result = strict.send(&request(format!("http://localhost:{port}/hook"))).await;
        assert!(!result.success && result.error.as_deref().unwrap().contains("private addresses"), "{result:?}");
        assert_eq!(result.status_code, None, "nothing was sent");
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
