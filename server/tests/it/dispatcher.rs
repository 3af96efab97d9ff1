//! The dispatcher end to end: events published over the API, delivered to a real receiver on
//! 127.0.0.1 that the tests script.

use std::time::Duration;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Sha256;
use sqlx::Row;

use crate::helpers::{OPERATOR_TOKEN, setup};
use crate::receiver::{Receiver, Reply, eventually};

const DEADLINE: Duration = Duration::from_secs(10);

fn header<'a>(request: &'a crate::receiver::Received, name: &str) -> &'a str {
    request.headers.get(name).unwrap_or_else(|| panic!("no {name} header")).to_str().unwrap()
}

#[tokio::test]
async fn an_event_arrives_signed_with_every_header() {
    let s = setup(&[]).await;
    let receiver = Receiver::start(Reply::Status(200, "ok")).await;
    let webhook = s
        .create_webhook(
            json!({"url": receiver.url, "authHeader": {"name": "X-Partner-Key", "value": "partner-secret"}}),
        )
        .await;
    let secret = webhook["secret"].as_str().unwrap();

    let published = s.publish_event("evt_signed_1").await;
    assert_eq!(published, json!({"id": "evt_signed_1", "deliveries": 1}));
    let got = receiver.wait_for(1, DEADLINE).await;
    let request = &got[0];

    assert_eq!(header(request, "content-type"), "application/json");
    assert!(header(request, "user-agent").starts_with("PartnerWebhookPortal/"));
    assert_eq!(header(request, "x-partner-key"), "partner-secret");
    let body: Value = serde_json::from_str(&request.body).unwrap();
    assert_eq!(body["id"], "evt_signed_1");
    assert_eq!(body["type"], "verification.completed");
    assert_eq!(body["status"], "success");
    assert_eq!(body["data"]["verificationId"], "ver_abc123");
    assert!(body["createdAt"].as_str().unwrap().ends_with('Z'));

    // x-webhook-signature: hex HMAC-SHA256 of the body, keyed with the secret's text.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(request.body.as_bytes());
    assert_eq!(header(request, "x-webhook-signature"), hex::encode(mac.finalize().into_bytes()));

    // Standard Webhooks: v1 over `id.timestamp.body`, keyed with the decoded secret.
    assert_eq!(header(request, "webhook-id"), "evt_signed_1");
    let timestamp: i64 = header(request, "webhook-timestamp").parse().unwrap();
    assert!((chrono::Utc::now().timestamp() - timestamp).abs() < 30);
    let key = base64::engine::general_purpose::STANDARD.decode(&secret["whsec_".len()..]).unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("evt_signed_1.{timestamp}.{}", request.body).as_bytes());
    let expected = format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()));
    assert_eq!(header(request, "webhook-signature"), expected);

    let id = webhook["id"].as_str().unwrap();
    eventually("the attempt is logged", DEADLINE, || async { s.attempts(id).await.len() == 1 }).await;
    let attempts = s.attempts(id).await;
    assert_eq!(attempts[0], ("evt_signed_1".into(), 1, "success".into(), None, 0));
    let logged: String = sqlx::query("SELECT request_headers FROM attempts WHERE webhook_id = $1")
        .bind(id)
        .fetch_one(s.app.db.pool())
        .await
        .unwrap()
        .get("request_headers");
    assert!(!logged.contains("partner-secret"), "the log masks the auth header: {logged}");
}

fn hex_signature(secret: &str, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn standard_signature(secret: &str, request: &crate::receiver::Received) -> String {
    let key = base64::engine::general_purpose::STANDARD.decode(&secret["whsec_".len()..]).unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    let (id, timestamp) = (header(request, "webhook-id"), header(request, "webhook-timestamp"));
    mac.update(format!("{id}.{timestamp}.{}", request.body).as_bytes());
    format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()))
}

/// What the webhook page says of a rotation: for 24 hours `x-webhook-signature` stays on the
/// old secret and `webhook-signature` carries both; then only the new one signs. Rotated again
/// meanwhile, the first secret stays the old one; the overlap can be ended early.
#[tokio::test]
async fn after_a_rotation_the_old_secret_signs_until_the_overlap_ends() {
    let s = setup(&[]).await;
    let receiver = Receiver::start(Reply::Status(200, "ok")).await;
    let webhook = s.create_webhook(json!({"url": receiver.url})).await;
    let (id, old) = (webhook["id"].as_str().unwrap(), webhook["secret"].as_str().unwrap());
    let api = crate::helpers::http();
    let rotate = || async {
        let answer = api
            .post(s.app.url(&format!("/api/v1/webhooks/{id}/secret/rotate")))
            .bearer_auth(&s.key)
            .send()
            .await
            .unwrap();
        answer.json::<Value>().await.unwrap()
    };
    let mut n = 0;
    let mut deliver = || {
        n += 1;
        let (s, receiver) = (&s, &receiver);
        async move {
            s.publish_event(&format!("evt_rotation_{n}")).await;
            receiver.wait_for(n, DEADLINE).await.remove(n - 1)
        }
    };

    let rotated = rotate().await;
    let new = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    let until = chrono::DateTime::parse_from_rfc3339(rotated["oldSignsUntil"].as_str().unwrap()).unwrap();
    let hours = (until.timestamp() - chrono::Utc::now().timestamp()) as f64 / 3600.0;
    assert!((23.9..=24.0).contains(&hours), "the overlap is 24 hours: {rotated}");
    let got = deliver().await;
    assert_eq!(header(&got, "x-webhook-signature"), hex_signature(old, &got.body), "the old secret");
    assert_eq!(
        header(&got, "webhook-signature"),
        format!("{} {}", standard_signature(&new, &got), standard_signature(old, &got)),
        "both secrets, the new one first"
    );
    assert_eq!(s.webhook(id).await["oldSecretSignsUntil"], rotated["oldSignsUntil"], "the webhook says so too");

    // Rotated again during the overlap: the first secret is still the old one, until its time.
    let again = rotate().await;
    let newer = again["secret"].as_str().unwrap().to_owned();
    assert_eq!(again["oldSignsUntil"], rotated["oldSignsUntil"]);
    let got = deliver().await;
    assert_eq!(header(&got, "x-webhook-signature"), hex_signature(old, &got.body));
    assert_eq!(
        header(&got, "webhook-signature"),
        format!("{} {}", standard_signature(&newer, &got), standard_signature(old, &got))
    );

    // Ended early (the old secret leaked): only the current secret signs, at once.
    let ended = api
        .delete(s.app.url(&format!("/api/v1/webhooks/{id}/secret/previous")))
        .bearer_auth(&s.key)
        .send()
        .await
        .unwrap();
    assert_eq!(ended.status(), StatusCode::NO_CONTENT);
    assert!(s.webhook(id).await["oldSecretSignsUntil"].is_null());
    let got = deliver().await;
    assert_eq!(header(&got, "x-webhook-signature"), hex_signature(&newer, &got.body));
    assert_eq!(header(&got, "webhook-signature"), standard_signature(&newer, &got));

    // A new rotation's overlap ends on time: then only the new secret signs.
    let last = rotate().await["secret"].as_str().unwrap().to_owned();
    sqlx::query("UPDATE webhooks SET previous_secret_expires_at = $1 WHERE id = $2")
        .bind(chrono::Utc::now().timestamp_millis() - 1)
        .bind(id)
        .execute(s.app.db.writer())
        .await
        .unwrap();
    let got = deliver().await;
    assert_eq!(header(&got, "x-webhook-signature"), hex_signature(&last, &got.body));
    assert_eq!(header(&got, "webhook-signature"), standard_signature(&last, &got));
}

#[tokio::test]
async fn a_template_shapes_the_body_and_the_signature_covers_it() {
    let s = setup(&[]).await;
    let receiver = Receiver::start(Reply::Status(200, "ok")).await;
    let webhook = s.create_webhook(json!({"url": receiver.url, "payloadTemplate": "{\"ref\": {{ data.verificationId|tojson }}, \"kind\": {{ type|tojson }}}"})).await;
    s.publish_event("evt_templated").await;
    let got = receiver.wait_for(1, DEADLINE).await;
    // Compact, in the template's key order: what a receiver that signs `JSON.stringify(body)`
    // again gets.
    assert_eq!(got[0].body, r#"{"ref":"ver_abc123","kind":"verification.completed"}"#);
    let mut mac = Hmac::<Sha256>::new_from_slice(webhook["secret"].as_str().unwrap().as_bytes()).unwrap();
    mac.update(got[0].body.as_bytes());
    assert_eq!(header(&got[0], "x-webhook-signature"), hex::encode(mac.finalize().into_bytes()));
}

#[tokio::test]
async fn only_active_webhooks_of_the_type_and_the_partner_get_the_event() {
    let s = setup(&[]).await;
    let wanted = Receiver::start(Reply::Status(200, "ok")).await;
    let other_type = Receiver::start(Reply::Status(200, "ok")).await;
    let inactive = Receiver::start(Reply::Status(200, "ok")).await;
    s.create_webhook(json!({"url": wanted.url, "eventTypes": ["verification.completed"]})).await;
    s.create_webhook(json!({"url": other_type.url, "eventTypes": ["review.completed"]})).await;
    s.create_webhook(json!({"url": inactive.url, "active": false})).await;
    let globex = s.app.create_partner("Globex", "bob@globex.test").await;
    let globex_key = s.app.create_api_key(&globex.id).await;
    let theirs = Receiver::start(Reply::Status(200, "ok")).await;
    crate::helpers::http()
        .post(s.app.url("/api/v1/webhooks"))
        .bearer_auth(globex_key)
        .json(&json!({"url": theirs.url}))
        .send()
        .await
        .unwrap();

    assert_eq!(s.publish_event("evt_routing").await["deliveries"], 1);
    wanted.wait_for(1, DEADLINE).await;
    // A second event for the same webhook proves the queue drained; the others stayed silent.
    s.publish_event("evt_routing_2").await;
    wanted.wait_for(2, DEADLINE).await;
    assert!(other_type.received().is_empty() && inactive.received().is_empty() && theirs.received().is_empty());
}

#[tokio::test]
async fn retries_follow_the_schedule_with_the_same_event_id() {
    let s = setup(&["--retry-schedule", "300ms,600ms,1200ms"]).await;
    let receiver = Receiver::start(Reply::Status(200, "ok")).await;
    receiver.script([Reply::Status(500, "boom"), Reply::Status(503, "busy"), Reply::Status(404, "?")]);
    let webhook = s.create_webhook(json!({"url": receiver.url})).await;
    s.publish_event("evt_retried").await;
    let got = receiver.wait_for(4, DEADLINE).await;
    assert!(got.iter().all(|r| header(r, "webhook-id") == "evt_retried"));
    for (i, expected_ms) in [300u128, 600, 1200].into_iter().enumerate() {
        let gap = got[i + 1].at.duration_since(got[i].at).as_millis();
        // The wait starts when the failed answer arrives; allow 150 ms for scheduling and I/O.
        assert!(gap >= expected_ms && gap < expected_ms + 150, "gap {i}: {gap} ms, expected {expected_ms} ms");
    }
    let id = webhook["id"].as_str().unwrap();
    eventually("four attempts logged", DEADLINE, || async { s.attempts(id).await.len() == 4 }).await;
    let outcomes: Vec<(i64, String)> = s.attempts(id).await.into_iter().map(|a| (a.1, a.2)).collect();
    assert_eq!(outcomes, [(1, "failure".into()), (2, "failure".into()), (3, "failure".into()), (4, "success".into())]);
    assert_eq!(s.webhook(id).await["active"], true);
    assert_eq!(receiver.received().len(), 4, "no attempt after the success");
}

#[tokio::test]
async fn the_last_failed_retry_deactivates_the_webhook_and_holds_the_rest() {
    let s = setup(&["--retry-schedule", "100ms,100ms"]).await;
    let receiver = Receiver::start(Reply::Status(500, "down")).await;
    let webhook = s.create_webhook(json!({"url": receiver.url})).await;
    let id = webhook["id"].as_str().unwrap();
    s.publish_event("evt_doomed").await;

    eventually("the webhook is deactivated", DEADLINE, || async { s.webhook(id).await["active"] == false }).await;
    let view = s.webhook(id).await;
    let reason = view["deactivatedReason"].as_str().unwrap();
    assert!(
        reason.contains("3 attempts in a row failed") && reason.contains("evt_doomed") && reason.contains("500"),
        "{reason}"
    );
    assert!(view["deactivatedAt"].is_string());
    assert_eq!(view["health"], "red");
    assert_eq!(receiver.received().len(), 3, "the first attempt and two retries");

    // Published while inactive: not sent to it.
    assert_eq!(s.publish_event("evt_while_off").await["deliveries"], 0);

    // A delivery that was waiting when it went off is held, and sent on reactivation.
    receiver.otherwise(Reply::Status(200, "back"));
    sqlx::query(
        "INSERT INTO deliveries (id, partner_id, webhook_id, event_id, state, attempts, next_attempt_at, created_at, updated_at) \
         VALUES ('dlv_01HZY3M7A8Q9XKJ2V5T6N4B0CD', $1, $2, 'evt_doomed', 'held', 0, 0, 0, 0)",
    )
    .bind(&s.partner)
    .bind(id)
    .execute(s.app.db.pool())
    .await
    .unwrap();
    let activated = s.post(&format!("/api/v1/webhooks/{id}/activate")).await;
    assert_eq!(activated["active"], true);
    assert!(activated["deactivatedReason"].is_null());
    let got = receiver.wait_for(4, DEADLINE).await;
    assert_eq!(header(&got[3], "webhook-id"), "evt_doomed");
}

#[tokio::test]
async fn deactivating_holds_waiting_deliveries_and_activating_sends_them() {
    let s = setup(&["--retry-schedule", "500ms"]).await;
    let receiver = Receiver::start(Reply::Status(200, "ok")).await;
    receiver.script([Reply::Status(500, "once")]);
    let webhook = s.create_webhook(json!({"url": receiver.url})).await;
    let id = webhook["id"].as_str().unwrap();
    s.publish_event("evt_paused").await;
    receiver.wait_for(1, DEADLINE).await;
    // The retry waits 500 ms; the partner switches the webhook off meanwhile.
    eventually("the failure is logged", DEADLINE, || async { s.attempts(id).await.len() == 1 }).await;
    s.post(&format!("/api/v1/webhooks/{id}/deactivate")).await;
    let state: String = sqlx::query("SELECT state FROM deliveries WHERE webhook_id = $1")
        .bind(id)
        .fetch_one(s.app.db.pool())
        .await
        .unwrap()
        .get("state");
    assert_eq!(state, "held");
    s.post(&format!("/api/v1/webhooks/{id}/activate")).await;
    let got = receiver.wait_for(2, DEADLINE).await;
    assert_eq!(header(&got[1], "webhook-id"), "evt_paused");
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let s = setup(&["--retry-schedule", ""]).await;
    let receiver = Receiver::start(Reply::Redirect("/elsewhere")).await;
    let webhook = s.create_webhook(json!({"url": receiver.url})).await;
    let id = webhook["id"].as_str().unwrap();
    s.publish_event("evt_redirected").await;
    eventually("the attempt is logged", DEADLINE, || async { s.attempts(id).await.len() == 1 }).await;
    let attempt = &s.attempts(id).await[0];
    assert_eq!(attempt.2, "failure");
    assert!(attempt.3.as_deref().unwrap().contains("redirects are not followed"), "{attempt:?}");
    assert!(receiver.received().iter().all(|r| r.path == "/hook"), "nothing went to the redirect's target");
}

#[tokio::test]
async fn a_receiver_that_hangs_times_out() {
    let s = setup(&["--retry-schedule", "", "--delivery-timeout", "300ms"]).await;
    let receiver = Receiver::start(Reply::Hang(Duration::from_secs(3))).await;
    let webhook = s.create_webhook(json!({"url": receiver.url})).await;
    let id = webhook["id"].as_str().unwrap();
    s.publish_event("evt_slow").await;
    eventually("the attempt is logged", DEADLINE, || async { s.attempts(id).await.len() == 1 }).await;
    let attempt = &s.attempts(id).await[0];
    assert!(attempt.3.as_deref().unwrap().contains("timed out"), "{attempt:?}");
}

#[tokio::test]
async fn a_slow_webhook_does_not_delay_another() {
    let s = setup(&["--delivery-timeout", "5s"]).await;
    let slow = Receiver::start(Reply::Hang(Duration::from_secs(4))).await;
    let fast = Receiver::start(Reply::Status(200, "ok")).await;
    s.create_webhook(json!({"url": slow.url})).await;
    s.create_webhook(json!({"url": fast.url})).await;
    for i in 0..6 {
        s.publish_event(&format!("evt_mixed_{i}")).await;
    }
    // All six reach the fast receiver while the slow one is still holding its requests.
    fast.wait_for(6, Duration::from_secs(3)).await;
}

#[tokio::test]
async fn publishing_is_idempotent_on_the_event_id() {
    let s = setup(&[]).await;
    let receiver = Receiver::start(Reply::Status(200, "ok")).await;
    s.create_webhook(json!({"url": receiver.url})).await;
    let first = s.publish_event("evt_once").await;
    let again = s.publish_event("evt_once").await;
    assert_eq!(first, again);
    receiver.wait_for(1, DEADLINE).await;
    s.publish_event("evt_after").await;
    let got = receiver.wait_for(2, DEADLINE).await;
    assert_eq!(header(&got[1], "webhook-id"), "evt_after", "evt_once went out once");

    let globex = s.app.create_partner("Globex", "bob@globex.test").await;
    let (status, error) = s
        .publish(json!({"partnerId": globex.id.to_string(), "type": "verification.failed", "status": "failed", "data": {}, "id": "evt_once"}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{error}");
    // A partner that doesn't exist is named as such, even with an id that is taken.
    let (status, error) = s
        .publish(json!({"partnerId": "ptn_01HZY3M7A8Q9XKJ2V5T6N4B0CD", "type": "verification.failed", "status": "failed", "data": {}, "id": "evt_once"}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
    assert_eq!(error["error"]["field"], "partnerId", "{error}");
}

#[tokio::test]
async fn events_published_together_are_each_answered_as_if_alone_and_nothing_is_lost() {
    use app::domain::NewEvent;
    use app::store::events::{Published, publish_many};
    let s = setup(&[]).await;
    let acme = app::domain::PartnerId::parse(&s.partner).unwrap();
    let globex = s.app.create_partner("Globex", "bob@globex.test").await;
    crate::helpers::insert_webhooks(&s.app.db, &acme, "http://127.0.0.1:9/hook", 2).await;
    let event = |partner: &str, id: &str| {
        NewEvent::parse(partner, None, "verification.completed", "success", json!({"n": id}), Some(id)).unwrap()
    };
    let acme_id = s.partner.as_str();
    let globex_id = globex.id.to_string();
    // Published before the batch.
    assert_eq!(
        publish_many(&s.app.db, &[event(acme_id, "evt_before")]).await.unwrap(),
        [Published::New { deliveries: 2 }]
    );
    let answers = publish_many(
        &s.app.db,
        &[
            event(acme_id, "evt_a"),
            event(globex_id.as_str(), "evt_a"),
            event("ptn_01HZY3M7A8Q9XKJ2V5T6N4B0CD", "evt_c"),
            event(acme_id, "evt_a"),
            event(acme_id, "evt_before"),
            event(globex_id.as_str(), "evt_g"),
            event(acme_id, "evt_b"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(
        answers,
        [
            Published::New { deliveries: 2 },
            Published::Conflict,
            Published::UnknownPartner,
            Published::Again { deliveries: 2 },
            Published::Again { deliveries: 2 },
            Published::New { deliveries: 0 },
            Published::New { deliveries: 2 },
        ]
    );
    let db = s.app.db.clone();
    let count = |sql: &'static str| {
        let db = db.clone();
        async move { sqlx::query(sql).fetch_one(db.pool()).await.unwrap().get::<i64, _>("n") }
    };
    assert_eq!(count("SELECT COUNT(*) AS n FROM events").await, 4, "evt_before, evt_a, evt_g, evt_b");
    assert_eq!(count("SELECT COUNT(*) AS n FROM deliveries").await, 6, "two each for Acme's three");
    let owner: String = sqlx::query("SELECT partner_id FROM events WHERE id = 'evt_a'")
        .fetch_one(s.app.db.pool())
        .await
        .unwrap()
        .get("partner_id");
    assert_eq!(owner, s.partner, "the first to publish an id keeps it");

    // Through the API, publishers at once are answered each, and each event is stored once.
    let mut publishing = tokio::task::JoinSet::new();
    for i in 0..40 {
        let url = s.app.url("/api/v1/events");
        let body = json!({"partnerId": s.partner, "type": "verification.completed", "status": "success",
            "id": format!("evt_together_{}", i % 20), "data": {}});
        publishing.spawn(async move {
            let response =
                crate::helpers::http().post(url).bearer_auth(OPERATOR_TOKEN).json(&body).send().await.unwrap();
            (response.status(), response.json::<Value>().await.unwrap())
        });
    }
    let published = publishing.join_all().await;
    assert!(published.iter().all(|(status, body)| *status == StatusCode::ACCEPTED && body["deliveries"] == 2));
    assert_eq!(count("SELECT COUNT(*) AS n FROM events WHERE id LIKE 'evt_together_%'").await, 20);
    assert_eq!(count("SELECT COUNT(*) AS n FROM deliveries WHERE event_id LIKE 'evt_together_%'").await, 40);
}

#[tokio::test]
async fn bad_events_are_refused_with_the_field_named() {
    let s = setup(&[]).await;
    let ok = json!({"partnerId": s.partner, "type": "verification.completed", "status": "success", "data": {}});
    let with = |field: &str, value: Value| {
        let mut body = ok.clone();
        body[field] = value;
        body
    };
    for (body, field) in [
        (with("partnerId", json!("acme")), "partnerId"),
        (with("partnerId", json!("ptn_01HZY3M7A8Q9XKJ2V5T6N4B0CD")), "partnerId"),
        (with("type", json!("verification.done")), "type"),
        (with("status", json!("")), "status"),
        (with("data", json!([1, 2])), "data"),
        (with("id", json!("has spaces")), "id"),
        (with("extra", json!(1)), "extra"),
    ] {
        let (status, error) = s.publish(body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {error}");
        assert_eq!(error["error"]["field"], field, "{body}: {error}");
    }
    let count: i64 = sqlx::query("SELECT COUNT(*) AS n FROM events").fetch_one(s.app.db.pool()).await.unwrap().get("n");
    assert_eq!(count, 0, "nothing was stored");

    for token in [None, Some("wrong-token-wrong-token-wrong-token")] {
        let mut request = crate::helpers::http().post(s.app.url("/api/v1/events")).json(&ok);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        assert_eq!(request.send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    }
    // A partner's API key is not the operator's token.
    let response =
        crate::helpers::http().post(s.app.url("/api/v1/events")).bearer_auth(&s.key).json(&ok).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn test_webhook_reports_in_place_and_is_logged_as_a_test() {
    let s = setup(&[]).await;
    let receiver = Receiver::start(Reply::Status(201, "hello from the receiver")).await;
    let webhook = s.create_webhook(json!({"url": receiver.url, "active": false})).await;
    let id = webhook["id"].as_str().unwrap();

    let result = s.post(&format!("/api/v1/webhooks/{id}/test")).await;
    assert_eq!(result["success"], true);
    assert_eq!(result["statusCode"], 201);
    assert_eq!(result["responseBody"], "hello from the receiver");
    assert!(result["latencyMs"].as_i64().unwrap() >= 0);
    let got = receiver.received();
    assert_eq!(got.len(), 1, "sent at once, though the webhook is inactive");
    let body: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(body["type"], "verification.completed");

    receiver.otherwise(Reply::Status(500, "nope"));
    let result = s.post(&format!("/api/v1/webhooks/{id}/test")).await;
    assert_eq!(result["success"], false);
    assert_eq!(result["statusCode"], 500);
    assert!(result["error"].as_str().unwrap().contains("500"));

    let attempts = s.attempts(id).await;
    assert_eq!(attempts.len(), 2);
    assert!(attempts.iter().all(|a| a.4 == 1), "logged as tests");
    let view = s.webhook(id).await;
    assert!(view["successRate"].is_null() && view["lastDeliveryAt"].is_null(), "tests don't count: {view}");
    // Not retried.
    let count: i64 =
        sqlx::query("SELECT COUNT(*) AS n FROM deliveries").fetch_one(s.app.db.pool()).await.unwrap().get("n");
    assert_eq!(count, 0);
    assert_eq!(receiver.received().len(), 2);
}

#[tokio::test]
async fn a_webhook_that_answers_well_gets_more_requests_at_once_up_to_its_partners_cap() {
    let s = setup(&[]).await;
    // Each request is open 300 ms: requests that arrive within 250 ms of each other were all
    // under way at once.
    let fast = Receiver::start(Reply::Hang(Duration::from_millis(300))).await;
    let capped = Receiver::start(Reply::Hang(Duration::from_millis(300))).await;
    s.create_webhook(json!({"url": fast.url, "eventTypes": ["verification.completed"]})).await;
    let webhook = s
        .create_webhook(json!({"url": capped.url, "eventTypes": ["verification.failed"], "maxConcurrentRequests": 2}))
        .await;
    assert_eq!(webhook["maxConcurrentRequests"], 2);
    for i in 0..40 {
        let body = json!({"partnerId": s.partner, "type": "verification.completed", "status": "success",
            "id": format!("evt_fast_{i}"), "data": {}});
        assert_eq!(s.publish(body).await.0, StatusCode::ACCEPTED);
    }
    for i in 0..8 {
        let body = json!({"partnerId": s.partner, "type": "verification.failed", "status": "failed",
            "id": format!("evt_capped_{i}"), "data": {}});
        assert_eq!(s.publish(body).await.0, StatusCode::ACCEPTED);
    }
    let most = |got: &[crate::receiver::Received]| {
        got.iter()
            .map(|r| got.iter().filter(|o| o.at <= r.at && r.at - o.at < Duration::from_millis(250)).count())
            .max()
    };
    // The first wave is the start's four; four fast answers make room for eight, and so on.
    let got = fast.wait_for(40, DEADLINE).await;
    assert!(most(&got) > Some(server::dispatcher::START_PLACES), "at most {:?} at once", most(&got));
    let got = capped.wait_for(8, DEADLINE).await;
    assert_eq!(most(&got), Some(2), "the partner's cap of 2");
}

#[tokio::test]
async fn a_webhook_whose_receiver_is_in_trouble_gets_fewer_requests_at_once() {
    let s = setup(&[]).await;
    // 503 after 300 ms, every time: the first wave's answers halve the places down to one.
    let receiver = Receiver::start(Reply::Late(Duration::from_millis(300), 503)).await;
    s.create_webhook(json!({"url": receiver.url})).await;
    for i in 0..10 {
        s.publish_event(&format!("evt_trouble_{i}")).await;
    }
    let got = receiver.wait_for(10, DEADLINE).await;
    let mut times: Vec<_> = got.iter().map(|r| r.at).collect();
    times.sort();
    let first = times[0];
    let wave = times.iter().filter(|at| at.duration_since(first) < Duration::from_millis(250)).count();
    assert_eq!(wave, server::dispatcher::START_PLACES, "the first wave");
    // Then one at a time: each request starts after the one before was answered.
    for pair in times[wave..].windows(2) {
        assert!(pair[1] - pair[0] >= Duration::from_millis(290), "two requests {:?} apart", pair[1] - pair[0]);
    }
}
