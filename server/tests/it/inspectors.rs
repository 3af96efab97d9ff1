//! The request inspector: capture URLs served by the portal, what they keep, who may read them,
//! and their limits.

use std::time::Duration;

use app::domain::{InspectorId, Role};
use app::store::inspectors::{NewCapture, capture};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, http, insert_api_key_with_role, spawn_app, spawn_app_with};
use crate::receiver::eventually;

/// A portal that refuses private addresses (as in production), a partner and its key.
async fn portal(flags: &[&str]) -> (TestApp, String, String) {
    let app = spawn_app_with(flags).await;
    let partner = app.create_partner("Acme", "ann@acme.test").await;
    let key = app.create_api_key(&partner.id).await;
    (app, partner.id.to_string(), key)
}

async fn call(
    app: &TestApp,
    key: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    app.api(key, method, path, body).await
}

async fn requests(app: &TestApp, key: &str, inspector: &str) -> Vec<Value> {
    let (status, body) =
        call(app, key, reqwest::Method::GET, &format!("/api/v1/inspectors/{inspector}/requests"), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_capture_url_keeps_what_the_portal_sends_and_checks_its_signatures() {
    let (app, partner, key) = portal(&[]).await;
    let (status, inspector) = call(&app, &key, reqwest::Method::POST, "/api/v1/inspectors", None).await;
    assert_eq!(status, StatusCode::CREATED, "{inspector}");
    let id = inspector["id"].as_str().unwrap();
    let url = inspector["url"].as_str().unwrap();
    assert_eq!(url, app.url(&format!("/inspect/{id}")));
    let expires = chrono::DateTime::parse_from_rfc3339(inspector["expiresAt"].as_str().unwrap()).unwrap();
    let created = chrono::DateTime::parse_from_rfc3339(inspector["createdAt"].as_str().unwrap()).unwrap();
    assert_eq!(expires - created, chrono::Duration::hours(24));
    assert_eq!(inspector["expired"], false);

    // The portal refuses loopback targets here, but its own capture URL is delivered to
    // in-process, so a webhook may point at it; anything else on loopback stays refused.
    let (status, webhook) =
        call(&app, &key, reqwest::Method::POST, "/api/v1/webhooks", Some(json!({"url": url}))).await;
    assert_eq!(status, StatusCode::CREATED, "{webhook}");
    let webhook_id = webhook["id"].as_str().unwrap();
    for other in [format!("{url}?x=1"), app.url("/api/v1/webhooks"), "http://127.0.0.1:9/hook".to_owned()] {
        let (status, body) =
            call(&app, &key, reqwest::Method::POST, "/api/v1/webhooks", Some(json!({"url": other}))).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{other}: {body}");
        assert_eq!(body["error"]["field"], "url");
    }

    // Test Webhook: the capture answers, and keeps the request exactly as it was sent.
    let (status, result) =
        call(&app, &key, reqwest::Method::POST, &format!("/api/v1/webhooks/{webhook_id}/test"), None).await;
    assert_eq!(status, StatusCode::OK, "{result}");
    assert_eq!(result["success"], true, "{result}");
    assert_eq!(result["statusCode"], 200, "{result}");
    let kept = requests(&app, &key, id).await;
    assert_eq!(kept.len(), 1);
    let request = &kept[0];
    assert_eq!(request["method"], "POST");
    let header = |request: &Value, name: &str| {
        request["headers"].as_array().unwrap().iter().find(|h| h[0] == name).map(|h| h[1].as_str().unwrap().to_owned())
    };
    assert!(header(request, "x-webhook-signature").is_some_and(|s| s.len() == 64), "{request}");
    assert!(header(request, "webhook-id").is_some(), "{request}");
    let body: Value = serde_json::from_str(request["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["type"], "verification.completed");
    assert_eq!(request["verdict"]["webhookId"], webhook_id);
    assert_eq!(request["verdict"]["report"]["valid"], true, "{request}");

    // A published event goes there through the dispatcher, the same way.
    let (status, published) = call(
        &app,
        crate::helpers::OPERATOR_TOKEN,
        reqwest::Method::POST,
        "/api/v1/events",
        Some(json!({"partnerId": partner, "type": "verification.failed", "status": "failure", "id": "evt_inspected",
            "data": {"verificationId": "ver_1"}})),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{published}");
    eventually("the published event reaches the capture URL", Duration::from_secs(20), || async {
        requests(&app, &key, id).await.iter().any(|r| header(r, "webhook-id").as_deref() == Some("evt_inspected"))
    })
    .await;

    // Anyone with the URL can send to it, with any method; a body that was changed on the way
    // is kept with the signature check that says so.
    let mut forged = http().put(url).body(request["body"].as_str().unwrap().replace("success", "failure"));
    for name in ["x-webhook-signature", "webhook-id", "webhook-timestamp", "webhook-signature"] {
        forged = forged.header(name, header(request, name).unwrap());
    }
    let response = forged.send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let answer: Value = response.json().await.unwrap();
    let newest = &requests(&app, &key, id).await[0];
    assert_eq!(newest["id"], answer["captured"]);
    assert_eq!(newest["method"], "PUT");
    assert_eq!(newest["verdict"]["report"]["valid"], false, "{newest}");

    // Deleted, the URL answers 404, and so does a delivery to it.
    let (status, _) = call(&app, &key, reqwest::Method::DELETE, &format!("/api/v1/inspectors/{id}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(http().post(url).body("{}").send().await.unwrap().status(), StatusCode::NOT_FOUND);
    let (_, result) =
        call(&app, &key, reqwest::Method::POST, &format!("/api/v1/webhooks/{webhook_id}/test"), None).await;
    assert_eq!(result["statusCode"], 404, "{result}");
}

#[tokio::test]
async fn inspectors_belong_to_their_partner_are_limited_and_expire() {
    let (app, partner, key) = portal(&["--max-inspectors", "2"]).await;
    let other = app.create_partner("Other", "bob@other.test").await;
    let other_key = app.create_api_key(&other.id).await;
    let viewer_key = insert_api_key_with_role(&app.db, &partner.parse().unwrap(), Role::Viewer).await;

    let (status, _) = call(&app, "", reqwest::Method::POST, "/api/v1/inspectors", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = call(&app, &viewer_key, reqwest::Method::POST, "/api/v1/inspectors", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a viewer reads, it does not create: {body}");

    let (_, first) = call(&app, &key, reqwest::Method::POST, "/api/v1/inspectors", None).await;
    let id = first["id"].as_str().unwrap().to_owned();
    call(&app, &key, reqwest::Method::POST, "/api/v1/inspectors", None).await;
    let (status, body) = call(&app, &key, reqwest::Method::POST, "/api/v1/inspectors", None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let words = body["error"]["message"].as_str().unwrap();
    assert!(words.contains("limit of 2 request inspectors") && words.contains("PORTAL_MAX_INSPECTORS"), "{words}");
    let (status, list) = call(&app, &viewer_key, reqwest::Method::GET, "/api/v1/inspectors", None).await;
    assert_eq!((status, list["data"].as_array().unwrap().len()), (StatusCode::OK, 2));

    // Another partner sees none of it.
    for (method, path) in [
        (reqwest::Method::GET, format!("/api/v1/inspectors/{id}")),
        (reqwest::Method::GET, format!("/api/v1/inspectors/{id}/requests")),
        (reqwest::Method::DELETE, format!("/api/v1/inspectors/{id}")),
    ] {
        let (status, body) = call(&app, &other_key, method.clone(), &path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {body}");
    }
    let (_, list) = call(&app, &other_key, reqwest::Method::GET, "/api/v1/inspectors", None).await;
    assert_eq!(list["data"], json!([]));

    // The newest 100 requests are kept.
    let inspector = InspectorId::parse(&id).unwrap();
    for n in 0..105 {
        let body = format!("{{\"n\":{n}}}");
        let request = NewCapture { method: "POST", headers: &[], body: &body, verdict: None };
        capture(&app.db, &inspector, &request).await.unwrap().expect("kept");
    }
    let kept = requests(&app, &key, &id).await;
    assert_eq!(kept.len(), 100);
    assert_eq!(kept[0]["body"], "{\"n\":104}", "newest first");
    assert_eq!(kept[99]["body"], "{\"n\":5}", "the oldest five are gone");

    // A burst is cut at the inspector's rate: some requests are answered 429, and say why.
    let url = app.url(&format!("/inspect/{id}"));
    let mut refused = None;
    for _ in 0..4 {
        let mut burst = tokio::task::JoinSet::new();
        for _ in 0..25 {
            let request = http().post(&url).body("{}");
            burst.spawn(async move {
                let response = request.send().await.unwrap();
                (response.status(), response.text().await.unwrap())
            });
        }
        for (status, text) in burst.join_all().await {
            if status == StatusCode::TOO_MANY_REQUESTS {
                refused = Some(text);
            }
        }
        if refused.is_some() {
            break;
        }
    }
    assert!(refused.as_deref().is_some_and(|r| r.contains("20 requests a second")), "{refused:?}");

    // Expired, it takes nothing more, and the retention pass deletes it with what it kept.
    sqlx::query("UPDATE inspectors SET expires_at = $1 WHERE id = $2")
        .bind(app::store::now_ms() - 1)
        .bind(&id)
        .execute(app.db.writer())
        .await
        .unwrap();
    let (_, shown) = call(&app, &key, reqwest::Method::GET, &format!("/api/v1/inspectors/{id}"), None).await;
    assert_eq!(shown["expired"], true, "{shown}");
    // (Once the burst's second is over.)
    let answer = std::sync::Mutex::new(None);
    eventually("the capture URL to take requests again", Duration::from_secs(10), || async {
        let response = http().post(&url).body("{}").send().await.unwrap();
        let status = response.status();
        *answer.lock().unwrap() = Some((status, response.text().await.unwrap()));
        status != StatusCode::TOO_MANY_REQUESTS
    })
    .await;
    let (status, text) = answer.into_inner().unwrap().unwrap();
    assert_eq!(status, StatusCode::NOT_FOUND, "{text}");
    assert!(text.contains("expired"), "{text}");
    let (_stop, mut stopped) = tokio::sync::watch::channel(false);
    assert_eq!(server::retention::pass(&app.db, 30, &mut stopped).await, server::retention::Pass::Done);
    let (status, _) = call(&app, &key, reqwest::Method::GET, &format!("/api/v1/inspectors/{id}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM inspector_requests WHERE inspector_id = $1")
        .bind(&id)
        .fetch_one(app.db.pool())
        .await
        .unwrap();
    assert_eq!(left, 0, "what it kept went with it");
    // Its place is free again.
    let (status, _) = call(&app, &key, reqwest::Method::POST, "/api/v1/inspectors", None).await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test]
async fn a_capture_url_for_no_inspector_answers_404() {
    let app = spawn_app().await;
    for path in ["/inspect/ins_01KAQ3M7A8Q9XKJ2V5T6N4B0CD", "/inspect/not-an-id"] {
        let response = http().post(app.url(path)).body("{}").send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
    }
}
