//! When the dispatcher switches a webhook off: the partner's users see a banner until they
//! dismiss it or switch the webhook back on, get an email through a real SMTP server
//! (aiosmtpd), and the operator gets a signed `webhook.deactivated` event.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::helpers::setup;
use crate::receiver::{Receiver, Reply, eventually};

const DEADLINE: Duration = Duration::from_secs(15);
const ALERT_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// aiosmtpd on a free port, keeping every message it gets in a maildir.
struct SmtpServer {
    child: Child,
    port: u16,
    maildir: PathBuf,
    _dir: tempfile::TempDir,
}

/// A port nothing listens on (for now).
fn free_port() -> u16 {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    probe.local_addr().unwrap().port()
}

impl SmtpServer {
    async fn start() -> Self {
        Self::start_on(free_port()).await
    }

    async fn start_on(port: u16) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let maildir = dir.path().join("mail");
        let child = Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}"), "-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs aiosmtpd (scripts/setup.sh --browser installs it)");
        eventually("aiosmtpd listens", DEADLINE, || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok()
        })
        .await;
        Self { child, port, maildir, _dir: dir }
    }

    /// The messages received so far, as raw text.
    fn messages(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.maildir.join("new")) else { return Vec::new() };
        entries.filter_map(Result::ok).filter_map(|e| std::fs::read_to_string(e.path()).ok()).collect()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Calls a server function as the signed-in user's page does; answers its JSON.
async fn server_fn(
    app: &crate::helpers::TestApp,
    client: &reqwest::Client,
    name: &str,
    form: &[(&str, &str)],
) -> Value {
    let (status, text) = app.server_fn(client, name, form).await;
    assert_eq!(status, StatusCode::OK, "{name}");
    if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap() }
}

/// A portal that gives up after one quick retry and sends its alerts to `smtp` and `operator`.
async fn with_alerts(smtp: &SmtpServer, operator: &Receiver, extra: &[&str]) -> crate::helpers::Setup {
    let smtp_url = format!("smtp://127.0.0.1:{}", smtp.port);
    let mut flags = vec!["--retry-schedule", "50ms", "--smtp-url", &smtp_url, "--alert-webhook-url", &operator.url];
    flags.extend(["--alert-webhook-secret", ALERT_SECRET]);
    flags.extend(extra);
    setup(&flags).await
}

#[tokio::test]
async fn a_deactivation_shows_a_banner_sends_an_email_and_tells_the_operator() {
    let (smtp, operator) = (SmtpServer::start().await, Receiver::start(Reply::Status(200, "ok")).await);
    let s = with_alerts(
        &smtp,
        &operator,
        &["--public-url", "https://portal.example.test", "--secret-key", crate::helpers::SECRET_KEY],
    )
    .await;
    let failing = Receiver::start(Reply::Status(500, "down")).await;
    let webhook = s.create_webhook(json!({"url": failing.url})).await;
    let id = webhook["id"].as_str().unwrap().to_owned();
    s.publish_event("evt_alert_1").await;
    eventually("the webhook is switched off", DEADLINE, || async { s.webhook(&id).await["active"] == false }).await;

    // The email, through a real SMTP server.
    eventually("the email arrives", DEADLINE, || async { !smtp.messages().is_empty() }).await;
    let messages = smtp.messages();
    assert_eq!(messages.len(), 1, "one email per deactivation");
    let email = messages[0].replace("=\r\n", "").replace("=\n", "");
    assert!(email.contains("To: ann@acme.test"), "{email}");
    assert!(email.contains(&format!("Subject: Webhook deactivated: {}", failing.url)), "{email}");
    assert!(email.contains("answered 500"), "the last error: {email}");
    assert!(email.contains(&format!("https://portal.example.test/webhooks/{id}")), "the link: {email}");

    // The operator's signed event.
    let got = operator.wait_for(1, DEADLINE).await;
    let event: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(event["type"], "webhook.deactivated");
    assert_eq!(event["data"]["webhookId"], id.as_str());
    assert_eq!(event["data"]["partnerId"], s.partner.as_str());
    assert!(event["data"]["reason"].as_str().unwrap().contains("answered 500"), "{event}");
    let header = |name: &str| got[0].headers.get(name).unwrap().to_str().unwrap().to_owned();
    let key = base64::engine::general_purpose::STANDARD.decode(ALERT_SECRET.trim_start_matches("whsec_")).unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{}.{}.{}", header("webhook-id"), header("webhook-timestamp"), got[0].body).as_bytes());
    let expected = format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()));
    assert_eq!(header("webhook-signature"), expected, "signed with the operator's secret");
    assert_eq!(header("webhook-id"), event["id"].as_str().unwrap());

    // The banner: there until dismissed.
    let partner = crate::helpers::TestPartner {
        id: app::domain::PartnerId::parse(&s.partner).unwrap(),
        email: "ann@acme.test".into(),
        password: "correct horse battery staple".into(),
    };
    let ann = s.app.signed_in_client(&partner).await;
    let alerts = server_fn(&s.app, &ann, "alerts/open", &[]).await;
    assert_eq!(alerts.as_array().unwrap().len(), 1, "{alerts}");
    assert_eq!(alerts[0]["webhookId"], id.as_str());
    assert!(alerts[0]["reason"].as_str().unwrap().contains("answered 500"));
    let page = ann.get(s.app.url("/webhooks")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("deactivation-banner") && page.contains("Webhook deactivated"), "the page shows it");
    let alert_id = alerts[0]["id"].as_str().unwrap().to_owned();
    server_fn(&s.app, &ann, "alerts/dismiss", &[("id", &alert_id)]).await;
    assert_eq!(server_fn(&s.app, &ann, "alerts/open", &[]).await, json!([]));

    // Another partner can't see or dismiss it.
    let other = s.app.create_partner("Other", "olga@other.test").await;
    let olga = s.app.signed_in_client(&other).await;
    assert_eq!(server_fn(&s.app, &olga, "alerts/open", &[]).await, json!([]));

    // Switched off again: a new banner, gone once the webhook is active again.
    s.post(&format!("/api/v1/webhooks/{id}/activate")).await;
    s.publish_event("evt_alert_2").await;
    eventually("switched off again", DEADLINE, || async { s.webhook(&id).await["active"] == false }).await;
    eventually("the second banner shows", DEADLINE, || async {
        server_fn(&s.app, &ann, "alerts/open", &[]).await.as_array().unwrap().len() == 1
    })
    .await;
    s.post(&format!("/api/v1/webhooks/{id}/activate")).await;
    assert_eq!(server_fn(&s.app, &ann, "alerts/open", &[]).await, json!([]));
    eventually("the second email arrives", DEADLINE, || async { smtp.messages().len() == 2 }).await;
}

#[tokio::test]
async fn an_alert_waits_out_an_smtp_outage_and_is_sent_when_it_is_back() {
    // Nothing listens on the SMTP port at first.
    let port = free_port();
    let smtp_url = format!("smtp://127.0.0.1:{port}");
    let s = setup(&["--retry-schedule", "50ms", "--smtp-url", &smtp_url]).await;
    let failing = Receiver::start(Reply::Status(500, "down")).await;
    let webhook = s.create_webhook(json!({"url": failing.url})).await;
    let id = webhook["id"].as_str().unwrap().to_owned();
    s.publish_event("evt_alert_outage").await;
    eventually("the email failed once", DEADLINE, || async {
        let row = sqlx::query("SELECT tries, last_error, email_state FROM alerts WHERE webhook_id = $1")
            .bind(&id)
            .fetch_optional(s.app.db.pool())
            .await
            .unwrap();
        row.is_some_and(|r| {
            use sqlx::Row;
            r.get::<i64, _>("tries") >= 1 && r.get::<String, _>("email_state") == "pending"
        })
    })
    .await;
    // The server comes up on that port; the retry (after 5 s) gets through.
    let smtp = SmtpServer::start_on(port).await;
    eventually("the email arrives after the outage", Duration::from_secs(20), || async { !smtp.messages().is_empty() })
        .await;
}

/// A sandbox webhook's deactivation reaches the account's users, says it is the sandbox's, and
/// tells the operator the account's id (the one it knows) and the environment.
#[tokio::test]
async fn a_sandbox_webhooks_deactivation_reaches_the_accounts_users_and_names_the_sandbox() {
    use app::domain::{Environment, PartnerId, Role};
    let (smtp, operator) = (SmtpServer::start().await, Receiver::start(Reply::Status(200, "ok")).await);
    let s = with_alerts(&smtp, &operator, &[]).await;
    let account = PartnerId::parse(&s.partner).unwrap();
    let key = crate::helpers::insert_api_key_in(&s.app.db, &account, Environment::Sandbox, Role::Admin).await;
    let failing = Receiver::start(Reply::Status(500, "down")).await;
    let created: Value = crate::helpers::http()
        .post(s.app.url("/api/v1/webhooks"))
        .bearer_auth(&key)
        .json(&json!({"url": failing.url}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (status, body) = s
        .publish(json!({"partnerId": s.partner, "environment": "sandbox", "type": "verification.completed",
            "status": "success", "data": {}}))
        .await;
    assert_eq!(status, reqwest::StatusCode::ACCEPTED, "{body}");

    eventually("the email arrives", DEADLINE, || async { !smtp.messages().is_empty() }).await;
    let email = smtp.messages()[0].replace("=\r\n", "").replace("=\n", "");
    assert!(email.contains("To: ann@acme.test"), "the account's users get it: {email}");
    assert!(email.contains("in your sandbox"), "{email}");
    let got = operator.wait_for(1, DEADLINE).await;
    let event: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(event["data"]["webhookId"], created["id"]);
    assert_eq!(event["data"]["partnerId"], s.partner.as_str(), "the account's id, not the sandbox row's");
    assert_eq!(event["data"]["environment"], "sandbox");
}
