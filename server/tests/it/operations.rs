//! What the people who run the portal rely on: health and readiness endpoints, and the delivery
//! rule for `410 Gone`.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::Row;

use crate::dispatcher::setup;
use crate::helpers::spawn_app_with;
use crate::receiver::{Receiver, Reply, eventually};

async fn get_json(url: String) -> (StatusCode, Value) {
    let response = reqwest::Client::new().get(url).send().await.unwrap();
    (response.status(), response.json().await.unwrap())
}

#[tokio::test]
async fn healthz_and_readyz_answer_without_a_session_and_name_what_is_wrong() {
    let app = spawn_app_with(&[]).await;
    let (status, body) = get_json(app.url("/healthz")).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"status": "ok"})));
    eventually("the portal is ready", Duration::from_secs(10), || async {
        get_json(app.url("/readyz")).await.0 == StatusCode::OK
    })
    .await;
    let (_, body) = get_json(app.url("/readyz")).await;
    assert_eq!(body["checks"], json!({"database": "ok", "migrations": "ok", "dispatcher": "ok"}));

    // A database behind this build's schema is not ready, and says what to run.
    sqlx::query("DELETE FROM _sqlx_migrations WHERE version = (SELECT MAX(version) FROM _sqlx_migrations)")
        .execute(app.db.pool())
        .await
        .unwrap();
    let (status, body) = get_json(app.url("/readyz")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["status"], "not ready");
    assert!(body["checks"]["migrations"].as_str().unwrap().contains("portal migrate"), "{body}");
}

#[tokio::test]
async fn a_web_only_process_is_ready_without_a_dispatcher() {
    let app = spawn_app_with(&["--no-dispatcher"]).await;
    let (status, body) = get_json(app.url("/readyz")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["checks"]["dispatcher"], "not run by this process (--no-dispatcher)");
}

#[tokio::test]
async fn an_answer_of_410_gone_deactivates_the_webhook_at_once() {
    let s = setup(&["--retry-schedule", "100ms,100ms,100ms"]).await;
    let receiver = Receiver::start(Reply::Status(410, "gone")).await;
    let webhook = s.create_webhook(json!({"url": receiver.url})).await;
    let id = webhook["id"].as_str().unwrap().to_owned();
    s.publish_event("evt_gone").await;
    eventually("the webhook is switched off", Duration::from_secs(10), || async {
        s.webhook(&id).await["active"] == false
    })
    .await;
    let w = s.webhook(&id).await;
    assert!(w["deactivatedReason"].as_str().unwrap().contains("410 Gone"), "{w}");
    assert_eq!(w["health"], "red");
    assert_eq!(s.attempts(&id).await.len(), 1, "no retry after 410");
    let state: String = sqlx::query("SELECT state FROM deliveries WHERE webhook_id = $1")
        .bind(&id)
        .fetch_one(s.app.db.pool())
        .await
        .unwrap()
        .get("state");
    assert_eq!(state, "failed");
}

#[tokio::test]
async fn with_the_410_rule_off_gone_is_retried_like_any_failure() {
    let s = setup(&["--retry-schedule", "100ms", "--deactivate-on-gone", "false"]).await;
    let receiver = Receiver::start(Reply::Status(410, "gone")).await;
    let webhook = s.create_webhook(json!({"url": receiver.url})).await;
    let id = webhook["id"].as_str().unwrap().to_owned();
    s.publish_event("evt_gone_retried").await;
    eventually("the webhook is switched off", Duration::from_secs(10), || async {
        s.webhook(&id).await["active"] == false
    })
    .await;
    assert_eq!(s.attempts(&id).await.len(), 2, "the first attempt and its one retry");
    assert!(s.webhook(&id).await["deactivatedReason"].as_str().unwrap().contains("2 attempts in a row failed"));
}

#[tokio::test]
async fn sigterm_mid_burst_finishes_what_is_in_flight_and_loses_nothing() {
    use crate::crash::spawn_portal;
    use crate::helpers::{OPERATOR_TOKEN, fresh_database_url, insert_partner};

    let dir = tempfile::tempdir().unwrap();
    let database_url = fresh_database_url(dir.path()).await;
    let receiver = Receiver::start(Reply::Hang(Duration::from_millis(100))).await;
    let args = ["--addr", "127.0.0.1:0", "--allow-private-targets", "true", "--operator-token", OPERATOR_TOKEN];
    let (mut child, address) = spawn_portal(&database_url, &args, "listening on ");
    let db = app::store::Db::connect(&database_url).await.unwrap();
    let partner = insert_partner(&db, "Acme", "ann@acme.test").await.id;
    crate::helpers::insert_webhooks(&db, &partner, &receiver.url, 4).await;
    let client = reqwest::Client::new();
    let mut acknowledged = 0;
    for i in 0..40 {
        let response = client
            .post(format!("{address}/api/v1/events"))
            .bearer_auth(OPERATOR_TOKEN)
            .json(&json!({"partnerId": partner.to_string(), "type": "verification.completed", "status": "success", "data": {"n": i}, "id": format!("evt_term_{i}")}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
        acknowledged += 1;
    }
    let in_flight_at_signal = acknowledged * 4 - receiver.received().len();
    let killed = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap()).await.unwrap();
    assert!(status.success(), "exits 0 after SIGTERM: {status:?}");
    assert!(in_flight_at_signal > 0, "the signal came while deliveries were waiting");

    // Everything sent before the exit was logged, and no lease was left behind.
    let sent = receiver.received().len() as i64;
    let logged: i64 = sqlx::query("SELECT COUNT(*) AS n FROM attempts").fetch_one(db.pool()).await.unwrap().get("n");
    assert_eq!(logged, sent, "an attempt that reached the receiver was not logged");
    let leased: i64 = sqlx::query("SELECT COUNT(*) AS n FROM deliveries WHERE locked_until IS NOT NULL")
        .fetch_one(db.pool())
        .await
        .unwrap()
        .get("n");
    assert_eq!(leased, 0, "leases left behind");

    // A restart sends the rest, each exactly once.
    let (mut child, _) = spawn_portal(&database_url, &args, "listening on ");
    receiver.wait_for(acknowledged * 4, Duration::from_secs(30)).await;
    eventually("every delivery finished", Duration::from_secs(30), || async {
        let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM deliveries WHERE state <> 'succeeded'")
            .fetch_one(db.pool())
            .await
            .unwrap()
            .get("n");
        n == 0
    })
    .await;
    assert_eq!(receiver.received().len(), acknowledged * 4, "nothing sent twice after a graceful stop");
    child.kill().unwrap();
    child.wait().unwrap();
}
