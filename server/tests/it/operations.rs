//! What the people who run the portal rely on: health and readiness endpoints, and the delivery
//! rule for `410 Gone`.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::Row;

use crate::helpers::setup;
use crate::helpers::{JsonAnswer, sample, scrape, spawn_app_with};
use crate::receiver::{Receiver, Reply, eventually};

async fn get_json(url: String) -> (StatusCode, Value) {
    let response = crate::helpers::http().get(url).send().await.unwrap();
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
    let client = crate::helpers::http();
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

/// Metrics pages that read gauges are taken one at a time: the recorder is shared by every
/// portal in this test process, and each scrape sets the gauges from its own database.
static SCRAPES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test]
async fn metrics_need_the_operator_token_and_count_attempts_queue_and_requests() {
    use crate::helpers::OPERATOR_TOKEN;
    let s = setup(&["--retry-schedule", "1h"]).await;
    let (status, _) = scrape(s.app.url("/metrics"), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = scrape(s.app.url("/metrics"), Some(&"x".repeat(OPERATOR_TOKEN.len()))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a wrong token of the right length");

    let receiver = Receiver::start(Reply::Status(200, "ok")).await;
    let good = s.create_webhook(json!({"url": receiver.url})).await;
    // Nothing listens there: the attempt fails to connect and waits an hour for its retry.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closed_url = format!("http://{}/hook", closed.local_addr().unwrap());
    drop(closed);
    let bad = s.create_webhook(json!({"url": closed_url})).await;
    let bad_id = bad["id"].as_str().unwrap().to_owned();
    s.publish_event("evt_metrics_1").await;
    receiver.wait_for(1, Duration::from_secs(10)).await;
    let good_id = good["id"].as_str().unwrap().to_owned();
    // Both attempts written (the recorder writes after the receiver has answered), so the
    // queue holds only the failed delivery's retry.
    eventually("both attempts are logged", Duration::from_secs(10), || async {
        s.attempts(&bad_id).await.len() == 1 && s.attempts(&good_id).await.len() == 1
    })
    .await;
    s.webhook(&good_id).await;

    let _one_at_a_time = SCRAPES.lock().await;
    let (status, page) = scrape(s.app.url("/metrics"), Some(OPERATOR_TOKEN)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(sample(&page, r#"portal_attempts_total{outcome="2xx"}"#).unwrap() >= 1.0, "{page}");
    assert!(sample(&page, r#"portal_attempts_total{outcome="connect_error"}"#).unwrap() >= 1.0, "{page}");
    assert!(sample(&page, "portal_attempt_duration_seconds_count").unwrap() >= 2.0, "{page}");
    assert!(page.contains(r#"portal_attempt_duration_seconds_bucket{le="0.01"}"#), "a histogram with buckets");
    assert!(sample(&page, "portal_events_published_total").unwrap() >= 1.0);
    assert_eq!(sample(&page, r#"portal_deliveries_waiting{state="scheduled"}"#), Some(1.0), "{page}");
    assert_eq!(sample(&page, r#"portal_deliveries_waiting{state="due"}"#), Some(0.0));
    assert_eq!(sample(&page, r#"portal_deliveries_waiting{state="held"}"#), Some(0.0));
    assert_eq!(sample(&page, "portal_oldest_due_delivery_age_seconds"), Some(0.0));
    // Requests are counted by route pattern, never by the ids in the path.
    assert!(
        sample(&page, r#"portal_http_requests_total{method="POST",route="/api/v1/events",status="202"}"#).unwrap()
            >= 1.0,
        "{page}"
    );
    assert!(
        sample(&page, r#"portal_http_requests_total{method="GET",route="/api/v1/webhooks/{id}",status="200"}"#)
            .unwrap()
            >= 1.0
    );
    assert!(!page.contains(&bad_id), "no id becomes a label");
    assert!(page.contains("# HELP portal_attempts_total"), "every metric is described");

    // Switched off, its waiting retry is held, and the gauge says so.
    s.post(&format!("/api/v1/webhooks/{bad_id}/deactivate")).await;
    let (_, page) = scrape(s.app.url("/metrics"), Some(OPERATOR_TOKEN)).await;
    assert_eq!(sample(&page, r#"portal_deliveries_waiting{state="held"}"#), Some(1.0), "{page}");
    assert_eq!(sample(&page, r#"portal_deliveries_waiting{state="scheduled"}"#), Some(0.0));
}

#[tokio::test]
async fn the_metrics_address_serves_metrics_and_health_without_the_token() {
    let app = spawn_app_with(&["--no-web", "--metrics-addr", "127.0.0.1:0"]).await;
    let admin = app.metrics_address.clone().expect("a metrics listener");
    let (status, body) = get_json(format!("{admin}/healthz")).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"status": "ok"})));
    eventually("the delivering process is ready", Duration::from_secs(10), || async {
        get_json(format!("{admin}/readyz")).await.0 == StatusCode::OK
    })
    .await;
    let _one_at_a_time = SCRAPES.lock().await;
    let (status, page) = scrape(format!("{admin}/metrics"), None).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(sample(&page, r#"portal_deliveries_waiting{state="due"}"#), Some(0.0), "{page}");
}

#[tokio::test]
async fn made_up_methods_and_paths_make_no_new_series() {
    use reqwest::Method;
    // A process of its own: the series of other tests' portals would come and go in this one's.
    let portal = crate::helpers::PortalProcess::start(&[]).await;
    let client = crate::helpers::http();
    let send = |method: String, path: String| {
        let request =
            client.request(Method::from_bytes(method.as_bytes()).unwrap(), format!("{}{path}", portal.address));
        async move { request.send().await.unwrap().status() }
    };
    // Each kind of request once, so its series exist: a made-up method on a real route, on a page
    // and on a made-up path; a known method on a made-up path, inside and outside the API.
    let kinds = |i: usize| {
        [
            (format!("MADEUP{i}"), "/api/v1/webhooks".to_owned()),
            (format!("MADEUP{i}"), "/webhooks".to_owned()),
            (format!("MADEUP{i}"), format!("/made/up/{i}")),
            ("GET".to_owned(), format!("/made/up/{i}")),
            ("POST".to_owned(), format!("/api/v1/made-up-{i}")),
        ]
    };
    for (method, path) in kinds(0) {
        send(method, path).await;
    }
    let series = |page: &str| page.lines().filter(|l| !l.starts_with('#')).count();
    portal.metrics().await;
    let before = portal.metrics().await;

    for i in 1..=40 {
        for (method, path) in kinds(i) {
            send(method, path).await;
        }
    }
    let after = portal.metrics().await;
    assert_eq!(series(&after), series(&before), "200 made-up requests, no new series:\n{after}");
    assert!(!after.contains("MADEUP") && !after.contains("/made/up"), "no method or path of theirs is a label");
    assert!(after.contains(r#"method="other""#), "{after}");
}

#[tokio::test]
async fn retry_after_on_429_moves_the_retry_later_and_the_log_says_so() {
    let s = setup(&["--retry-schedule", "100ms,100ms"]).await;
    let receiver = Receiver::start(Reply::Status(200, "ok")).await;
    receiver.script([Reply::RetryAfter(429, "2")]);
    let webhook = s.create_webhook(json!({"url": receiver.url})).await;
    let id = webhook["id"].as_str().unwrap().to_owned();
    s.publish_event("evt_retry_after").await;
    let got = receiver.wait_for(2, Duration::from_secs(10)).await;
    let gap = got[1].at - got[0].at;
    assert!(gap >= Duration::from_millis(1_950), "the retry waited as asked, not 100 ms: {gap:?}");
    assert!(gap < Duration::from_secs(4), "and not much longer: {gap:?}");
    eventually("both attempts are logged", Duration::from_secs(10), || async { s.attempts(&id).await.len() == 2 })
        .await;
    let attempts = s.attempts(&id).await;
    let error = attempts[0].3.as_deref().unwrap();
    assert!(error.contains("429") && error.contains("asked to wait 2s"), "{error}");
    assert!(error.contains("the next attempt waits 2s as asked, not the scheduled 100ms"), "{error}");
    assert_eq!(attempts[1].2, "success");
}

#[tokio::test]
async fn with_retry_after_ignored_the_schedule_rules() {
    let s = setup(&["--retry-schedule", "100ms", "--honor-retry-after", "false"]).await;
    let receiver = Receiver::start(Reply::Status(200, "ok")).await;
    receiver.script([Reply::RetryAfter(503, "30")]);
    s.create_webhook(json!({"url": receiver.url})).await;
    s.publish_event("evt_retry_after_off").await;
    let got = receiver.wait_for(2, Duration::from_secs(10)).await;
    assert!(got[1].at - got[0].at < Duration::from_secs(5), "the 30 s ask was not followed");
}

#[tokio::test]
async fn a_rate_limited_webhook_gets_events_spaced_out_and_waiting_is_no_failure() {
    let s = setup(&[]).await;
    let receiver = Receiver::start(Reply::Status(200, "ok")).await;
    // The limit is checked like every other field.
    let response = crate::helpers::http()
        .post(s.app.url("/api/v1/webhooks"))
        .bearer_auth(&s.key)
        .json(&json!({"url": receiver.url, "rateLimit": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = response.json().await.unwrap();
    assert!(body.to_string().contains("rateLimit"), "{body}");
    // So is the cap on requests at once, and nothing is made.
    let response = crate::helpers::http()
        .post(s.app.url("/api/v1/webhooks"))
        .bearer_auth(&s.key)
        .json(&json!({"url": receiver.url, "maxConcurrentRequests": 65}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = response.json().await.unwrap();
    assert!(body.to_string().contains("maxConcurrentRequests") && body.to_string().contains("1 to 64"), "{body}");

    let webhook = s.create_webhook(json!({"url": receiver.url, "rateLimit": 5})).await;
    assert_eq!(webhook["rateLimit"], 5);
    let id = webhook["id"].as_str().unwrap().to_owned();
    for i in 0..6 {
        s.publish_event(&format!("evt_limited_{i}")).await;
    }
    let got = receiver.wait_for(6, Duration::from_secs(10)).await;
    let mut times: Vec<_> = got.iter().map(|r| r.at).collect();
    times.sort();
    for pair in times.windows(2) {
        let gap = pair[1] - pair[0];
        // 5 per second is one every 200 ms; allow for scheduling jitter.
        assert!(gap >= Duration::from_millis(170), "two requests {gap:?} apart under a 5/s limit");
    }
    eventually("every attempt is logged", Duration::from_secs(10), || async { s.attempts(&id).await.len() >= 6 }).await;
    let attempts = s.attempts(&id).await;
    assert_eq!(attempts.len(), 6, "one attempt per event: waiting is not an attempt");
    assert!(attempts.iter().all(|a| a.1 == 1 && a.2 == "success"), "{attempts:?}");

    // PATCH null lifts the limit.
    let response = crate::helpers::http()
        .patch(s.app.url(&format!("/api/v1/webhooks/{id}")))
        .bearer_auth(&s.key)
        .json(&json!({"rateLimit": null}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.unwrap()["rateLimit"], Value::Null);
    use crate::helpers::JsonAnswer as _;
    let webhooks = crate::helpers::http().get(s.app.url("/api/v1/webhooks")).bearer_auth(&s.key).json_answer().await;
    assert_eq!(webhooks.to_string().matches("wh_").count(), 1, "the refused ones were not made: {webhooks}");
}

#[tokio::test]
async fn json_logs_have_one_line_per_attempt_with_its_fields_and_no_secret() {
    use crate::crash::spawn_portal_logged;
    use crate::helpers::{OPERATOR_TOKEN, fresh_database_url, insert_api_key, insert_partner};

    let dir = tempfile::tempdir().unwrap();
    let database_url = fresh_database_url(dir.path()).await;
    let receiver = Receiver::start(Reply::Status(200, "ok")).await;
    let args = ["--addr", "127.0.0.1:0", "--allow-private-targets", "true", "--operator-token", OPERATOR_TOKEN];
    let (mut child, address, lines) =
        spawn_portal_logged(&database_url, &args, &[("PORTAL_LOG_FORMAT", "json")], "listening on ");
    let db = app::store::Db::connect(&database_url).await.unwrap();
    let partner = insert_partner(&db, "Acme", "ann@acme.test").await;
    let api_key = insert_api_key(&db, &partner.id).await;
    let client = crate::helpers::http();
    let webhook: Value = client
        .post(format!("{address}/api/v1/webhooks"))
        .bearer_auth(&api_key)
        .json(&json!({"url": receiver.url, "authHeader": {"name": "X-Partner-Key", "value": "hunter2-partner-secret"}}))
        .json_answer()
        .await;
    let signing_secret = webhook["secret"].as_str().unwrap().to_owned();
    let response = client
        .post(format!("{address}/api/v1/events"))
        .bearer_auth(OPERATOR_TOKEN)
        .json(&json!({"partnerId": partner.id.to_string(), "type": "verification.completed", "status": "success", "data": {}, "id": "evt_logged"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    receiver.wait_for(1, Duration::from_secs(10)).await;
    let attempt_line = || lines.lock().unwrap().iter().find(|l| l.contains(r#""message":"attempt""#)).cloned();
    eventually("the attempt's log line", Duration::from_secs(10), || async { attempt_line().is_some() }).await;
    child.kill().unwrap();
    child.wait().unwrap();

    let all = lines.lock().unwrap().clone();
    for line in &all {
        serde_json::from_str::<Value>(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(!line.contains("hunter2-partner-secret"), "the auth header's value was logged: {line}");
        assert!(!line.contains(&signing_secret), "the signing secret was logged: {line}");
        assert!(!line.contains(OPERATOR_TOKEN) && !line.contains(&api_key), "a token was logged: {line}");
    }
    let line: Value = serde_json::from_str(&attempt_line().unwrap()).unwrap();
    let fields = &line["fields"];
    assert_eq!(fields["partner"], partner.id.to_string());
    assert_eq!(fields["event"], "evt_logged");
    assert_eq!(fields["attempt"], 1);
    assert_eq!(fields["outcome"], "success");
    assert_eq!(fields["class"], "2xx");
    assert!(fields["latency_ms"].is_u64(), "{line}");
    // The delivery and the webhook come from the span the attempt runs in.
    assert_eq!(line["span"]["webhook"], webhook["id"], "{line}");
    assert!(line["span"]["delivery"].as_str().unwrap().starts_with("dlv_"), "{line}");
}
