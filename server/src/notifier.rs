//! The notifier: sends each alert (the dispatcher switched a webhook off) by email to the
//! partner's users and as a signed `webhook.deactivated` event to the operator's alert webhook.
//! Alerts wait in the database (written with the deactivation), so a crash or an SMTP outage
//! delays them but never loses them; each channel is retried until it goes through.

use std::time::Duration;

use app::delivery::sign;
use app::domain::SigningSecret;
use app::store::alerts::{self, Channel, Outgoing};
use app::store::{Db, from_ms, now_ms};
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::json;
use tokio::sync::watch;

/// How often the notifier looks for alerts; the dispatcher's deactivations reach it within this.
const POLL: Duration = Duration::from_millis(500);
/// How long a claimed alert stays this process's while it sends.
const LEASE_MS: i64 = 120_000;
/// Waits before the next try of a channel that failed, by tries so far; the last repeats.
const RETRY_WAITS_SECS: &[i64] = &[5, 15, 60, 300, 900];

/// Sends deactivation emails.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Mailer {
    /// A mailer for `PORTAL_SMTP_URL`; a malformed URL stops the portal at start.
    pub fn new(smtp_url: &str, from: Mailbox) -> anyhow::Result<Self> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(smtp_url)
            .map_err(|e| anyhow::anyhow!("PORTAL_SMTP_URL is not a valid SMTP URL: {e}"))?
            .timeout(Some(Duration::from_secs(20)))
            .build();
        Ok(Self { transport, from })
    }
}

/// Posts `webhook.deactivated` to the operator.
pub struct AlertHook {
    url: url::Url,
    secret: SigningSecret,
    client: reqwest::Client,
}

impl AlertHook {
    /// The operator's alert webhook. Its URL is the operator's own, so private addresses are
    /// allowed here.
    pub fn new(url: url::Url, secret: SigningSecret) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(app::delivery::USER_AGENT)
            .build()?;
        Ok(Self { url, secret, client })
    }
}

/// The running notifier's parts.
pub struct Notifier {
    db: Db,
    mailer: Option<Mailer>,
    hook: Option<AlertHook>,
    public_url: url::Url,
}

impl Notifier {
    /// A notifier; with neither channel configured it only marks alerts `off`.
    pub fn new(db: Db, mailer: Option<Mailer>, hook: Option<AlertHook>, public_url: url::Url) -> Self {
        Self { db, mailer, hook, public_url }
    }

    /// Runs until `stop` turns true; an alert being sent then finishes first.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        while !*stop.borrow() {
            match alerts::claim(&self.db, 10, LEASE_MS).await {
                Ok(claimed) => {
                    for alert in claimed {
                        self.send(alert).await;
                    }
                }
                Err(e) => tracing::error!(error = format!("{e:#}"), "could not look for alerts"),
            }
            tokio::select! {
                () = tokio::time::sleep(POLL) => {}
                _ = stop.changed() => {}
            }
        }
    }

    /// Sends each channel still pending, and stores how far it got.
    #[tracing::instrument(skip_all, fields(alert = %alert.id, partner = %alert.partner, webhook = %alert.webhook))]
    async fn send(&self, alert: Outgoing) {
        let mut errors = Vec::new();
        let email = match (alert.email, &self.mailer) {
            (Channel::Pending, None) => Channel::Off,
            (Channel::Pending, Some(mailer)) => match self.email(mailer, &alert).await {
                Ok(state) => state,
                Err(e) => {
                    errors.push(format!("email: {e:#}"));
                    Channel::Pending
                }
            },
            (done, _) => done,
        };
        let hook = match (alert.hook, &self.hook) {
            (Channel::Pending, None) => Channel::Off,
            (Channel::Pending, Some(hook)) => match self.post(hook, &alert).await {
                Ok(()) => Channel::Sent,
                Err(e) => {
                    errors.push(format!("alert webhook: {e:#}"));
                    Channel::Pending
                }
            },
            (done, _) => done,
        };
        let error = (!errors.is_empty()).then(|| errors.join("; "));
        let wait = RETRY_WAITS_SECS[(alert.tries as usize).min(RETRY_WAITS_SECS.len() - 1)];
        if let Some(error) = &error {
            tracing::warn!(error = %error, retry_in_s = wait, "could not send the deactivation alert; will retry");
        } else {
            tracing::info!(?email, ?hook, "deactivation alert sent");
        }
        if let Err(e) =
            alerts::finish_try(&self.db, &alert.id, email, hook, error.as_deref(), now_ms() + wait * 1000).await
        {
            // The lease runs out and the alert is tried again: at least once, never lost.
            tracing::error!(error = format!("{e:#}"), "could not store the alert's progress");
        }
    }

    /// The page where the partner can fix and reactivate the webhook.
    fn webhook_link(&self, alert: &Outgoing) -> String {
        self.public_url.join(&format!("webhooks/{}", alert.webhook)).map_or_else(|_| String::new(), |u| u.to_string())
    }

    /// One email to the partner's users; `Off` when the partner has no one to write to.
    async fn email(&self, mailer: &Mailer, alert: &Outgoing) -> anyhow::Result<Channel> {
        let recipients: Vec<Mailbox> = alert.recipients.iter().filter_map(|r| r.parse().ok()).collect();
        if recipients.is_empty() {
            return Ok(Channel::Off);
        }
        let at = from_ms(alert.created_at).format("%Y-%m-%d %H:%M:%S UTC");
        let body = format!(
            "Hello,\n\n\
             A webhook of {partner} was deactivated because its deliveries kept failing.{sandbox}\n\n\
             URL:          {url}\n\
             Deactivated:  {at}\n\
             Last error:   {reason}\n\n\
             No events are sent to it until it is active again. Fix the endpoint, then activate\n\
             the webhook on its page:\n\n  {link}\n\n\
             Deliveries that were waiting go out when you activate it; \"Replay missed events\" on\n\
             that page sends the events published while it was off.\n",
            partner = alert.partner_name,
            sandbox = if alert.environment == app::domain::Environment::Sandbox {
                "\nIt is in your sandbox: switch to Sandbox in the portal's header before opening the link."
            } else {
                ""
            },
            url = alert.url,
            reason = alert.reason,
            link = self.webhook_link(alert),
        );
        let mut builder = Message::builder()
            .from(mailer.from.clone())
            .subject(format!("Webhook deactivated: {}", alert.url))
            .header(lettre::message::header::ContentType::TEXT_PLAIN);
        for to in recipients {
            builder = builder.to(to);
        }
        let message = builder.body(body)?;
        mailer.transport.send(message).await?;
        Ok(Channel::Sent)
    }

    /// `webhook.deactivated`, signed the Standard Webhooks way with the operator's secret.
    async fn post(&self, hook: &AlertHook, alert: &Outgoing) -> anyhow::Result<()> {
        let body = json!({
            "id": alert.id,
            "type": "webhook.deactivated",
            "createdAt": from_ms(alert.created_at),
            "data": {
                "partnerId": alert.partner,
                "environment": alert.environment,
                "partnerName": alert.partner_name,
                "webhookId": alert.webhook,
                "url": alert.url,
                "reason": alert.reason,
                "deactivatedAt": from_ms(alert.created_at),
                "portalUrl": self.webhook_link(alert),
            }
        })
        .to_string();
        let timestamp = chrono::Utc::now().timestamp();
        let signature = sign::standard_signature(&hook.secret, alert.id.as_str(), timestamp, body.as_bytes());
        let response = hook
            .client
            .post(hook.url.clone())
            .header("content-type", "application/json")
            .header("webhook-id", alert.id.as_str())
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await?;
        anyhow::ensure!(response.status().is_success(), "answered {}", response.status());
        Ok(())
    }
}
