//! Helping partners integrate: the event catalog, and Test Webhook for any event type.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{http, setup};
use crate::receiver::{Receiver, Reply};

#[tokio::test]
async fn the_event_catalog_lists_every_type_with_when_it_fires_a_schema_and_an_example() {
    let s = setup(&[]).await;
    let response = http().get(s.app.url("/api/v1/event-types")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "a partner's key is asked for");

    let response = http().get(s.app.url("/api/v1/event-types")).bearer_auth(&s.key).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let catalog: Vec<Value> = response.json().await.unwrap();
    let types: Vec<&str> = catalog.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["verification.completed", "verification.failed", "verification.expired", "review.completed"]);
    for entry in &catalog {
        let name = entry["type"].as_str().unwrap();
        assert!(entry["description"].as_str().unwrap().len() > 40, "{name} says when it fires");
        assert_eq!(entry["schema"]["properties"]["type"]["const"], name);
        assert_eq!(entry["example"]["type"], name);
        assert!(entry["example"]["data"]["verificationId"].is_string(), "{name}");
    }
    // The docs' own example is the first one's.
    assert_eq!(catalog[0]["example"]["data"]["proofData"]["income"]["monthlyAmount"], 5000);
}

#[tokio::test]
async fn test_webhook_sends_the_event_type_and_data_the_partner_asks_for() {
    let s = setup(&[]).await;
    let receiver = Receiver::start(Reply::Status(200, "ok")).await;
    let webhook = s.create_webhook(json!({"url": receiver.url})).await;
    let id = webhook["id"].as_str().unwrap();
    let test = |body: Value| {
        http().post(s.app.url(&format!("/api/v1/webhooks/{id}/test"))).bearer_auth(&s.key).json(&body).send()
    };

    // A type alone: its example data, and the usual overall status of that type.
    let answer = test(json!({"type": "verification.failed"})).await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let got = receiver.received();
    let body: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(body["type"], "verification.failed");
    assert_eq!(body["status"], "failed");
    assert_eq!(body["data"]["status"], "FAILED");
    assert!(body["id"].as_str().unwrap().starts_with("evt_test_"));

    // The partner's own data, sent as given, keys in their order.
    let answer = test(json!({"type": "review.completed", "data": {"verificationId": "ver_mine", "sessionId": 77, "status": "REJECTED"}}))
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let got = receiver.received();
    assert!(
        got[1].body.contains(r#""data":{"verificationId":"ver_mine","sessionId":77,"status":"REJECTED"}"#),
        "{}",
        got[1].body
    );
    assert_eq!(s.attempts(id).await.len(), 2, "both logged as tests");
}

#[tokio::test]
async fn test_webhook_refuses_a_wrong_type_or_data_by_name_and_sends_nothing() {
    let s = setup(&[]).await;
    let receiver = Receiver::start(Reply::Status(200, "ok")).await;
    let webhook = s.create_webhook(json!({"url": receiver.url})).await;
    let id = webhook["id"].as_str().unwrap();
    let url = s.app.url(&format!("/api/v1/webhooks/{id}/test"));

    for (body, field, words) in [
        (json!({"type": "verification.done"}), "type", "not an event type"),
        (json!({"data": [1, 2]}), "data", "JSON object"),
        (json!({"data": {"blob": "x".repeat(70 * 1024)}}), "data", "64 KiB"),
        (json!({"kind": "verification.failed"}), "kind", "unknown field"),
    ] {
        let response = http().post(&url).bearer_auth(&s.key).json(&body).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"]["field"], field, "{error}");
        assert!(error["error"]["message"].as_str().unwrap().contains(words), "{error}");
    }
    // A body that is not JSON is refused, not taken for "no body".
    let response = http().post(&url).bearer_auth(&s.key).body("type=verification.failed").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    assert!(receiver.received().is_empty(), "nothing was sent");
    assert!(s.attempts(id).await.is_empty(), "nothing was logged");
}
