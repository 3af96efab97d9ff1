//! Helping partners integrate: the event catalog, Test Webhook for any event type, and the
//! integration guide's code.

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

/// The guide's Rust receiver compiles: `examples/receive_webhooks.rs` is exactly what the guide
/// shows for [`GuideFor::example`], and `cargo test` builds every example. (The Node.js and
/// Python receivers run against real deliveries in the browser tests, `end2end/tests/guide.test.mjs`.)
#[test]
fn the_guides_rust_receiver_is_the_example_cargo_builds() {
    use app::domain::{GuideFor, snippets};
    let rust = snippets(&GuideFor::example()).into_iter().find(|s| s.key == "rust").expect("a Rust receiver");
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/receive_webhooks.rs");
    let example = std::fs::read_to_string(path).unwrap();
    if example != rust.code && std::env::var_os("UPDATE_EXAMPLES").is_some() {
        std::fs::write(path, &rust.code).unwrap();
    }
    assert!(
        example == rust.code,
        "examples/receive_webhooks.rs is not the guide's Rust code; run this test with UPDATE_EXAMPLES=1 and commit the file"
    );
}

/// The headers a receiver got, as the checker takes them.
fn headers_of(received: &crate::receiver::Received) -> Value {
    let map: serde_json::Map<String, Value> =
        received.headers.iter().map(|(name, value)| (name.to_string(), Value::from(value.to_str().unwrap()))).collect();
    Value::Object(map)
}

#[tokio::test]
async fn the_signature_checker_says_which_check_passes_and_why_one_fails() {
    let s = setup(&[]).await;
    let receiver = Receiver::start(Reply::Status(200, "ok")).await;
    let webhook = s.create_webhook(json!({"url": receiver.url})).await;
    let id = webhook["id"].as_str().unwrap();
    s.post(&format!("/api/v1/webhooks/{id}/test")).await;
    let got = receiver.received().remove(0);
    let check = |body: Value| http().post(s.app.url("/api/v1/signatures/check")).bearer_auth(&s.key).json(&body).send();
    let report = |body: Value| async {
        let response = check(body).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.json::<Value>().await.unwrap()
    };
    let outcomes = |report: &Value| -> Vec<String> {
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| format!("{}={}", c["check"].as_str().unwrap(), c["outcome"].as_str().unwrap()))
            .collect()
    };

    // The request as it arrived: every check passes.
    let as_sent = report(json!({"webhookId": id, "headers": headers_of(&got), "body": got.body})).await;
    assert_eq!(as_sent["valid"], true, "{as_sent}");
    assert_eq!(outcomes(&as_sent), ["x-webhook-signature=pass", "webhook-signature=pass", "webhook-timestamp=pass"]);
    assert_eq!(as_sent["likelyCause"], Value::Null);

    // The body parsed and written again, pretty: re-serialised, and the checker says so.
    let pretty = serde_json::to_string_pretty(&serde_json::from_str::<Value>(&got.body).unwrap()).unwrap();
    let rewritten = report(json!({"webhookId": id, "headers": headers_of(&got), "body": pretty})).await;
    assert_eq!(rewritten["valid"], false);
    assert_eq!(outcomes(&rewritten), ["x-webhook-signature=fail", "webhook-signature=fail", "webhook-timestamp=pass"]);
    assert!(rewritten["likelyCause"].as_str().unwrap().contains("re-serialised"), "{rewritten}");

    // A header left out is named.
    let mut partial = headers_of(&got);
    partial.as_object_mut().unwrap().retain(|name, _| name != "webhook-timestamp");
    let missing = report(json!({"webhookId": id, "headers": partial, "body": got.body})).await;
    assert_eq!(
        outcomes(&missing),
        ["x-webhook-signature=pass", "webhook-signature=missing", "webhook-timestamp=missing"]
    );
    assert_eq!(missing["valid"], true, "x-webhook-signature alone is enough");

    // After a rotation the old request still checks, signed with the previous secret.
    s.post(&format!("/api/v1/webhooks/{id}/secret/rotate")).await;
    let rotated = report(json!({"webhookId": id, "headers": headers_of(&got), "body": got.body})).await;
    assert_eq!(rotated["valid"], true);
    assert!(rotated["checks"][0]["detail"].as_str().unwrap().contains("the previous secret"), "{rotated}");

    // A logged attempt, checked as it was sent.
    let log = s.log(id).await;
    let attempt = log["data"][0]["id"].as_str().unwrap();
    let logged = report(json!({"attemptId": attempt})).await;
    assert_eq!(logged["valid"], true, "{logged}");
    assert_eq!(outcomes(&logged), ["x-webhook-signature=pass", "webhook-signature=pass", "webhook-timestamp=pass"]);
}

#[tokio::test]
async fn the_signature_checker_refuses_what_it_cannot_check_by_name() {
    let s = setup(&[]).await;
    let webhook = s.create_webhook(json!({"url": "http://127.0.0.1:9/hook"})).await;
    let id = webhook["id"].as_str().unwrap();
    let url = s.app.url("/api/v1/signatures/check");
    let response = http().post(&url).json(&json!({"attemptId": "att_x"})).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "a partner's key is asked for");

    for (body, fields, words) in [
        (json!({}), vec!["webhookId", "headers", "body"], "is required"),
        (json!({"webhookId": id, "headers": {}}), vec!["body"], "is required"),
        (json!({"attemptId": "att_01KAQ3M7A8Q9XKJ2V5T6N4B0CD", "body": "{}"}), vec!["attemptId"], "comes alone"),
        (json!({"webhookId": id, "headers": {}, "body": "", "secret": "whsec_x"}), vec!["secret"], "unknown field"),
    ] {
        let response = http().post(&url).bearer_auth(&s.key).json(&body).send().await.unwrap();
        let status = response.status();
        let error: Value = response.json().await.unwrap();
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
        let named: Vec<String> = match error["error"]["errors"].as_array() {
            Some(all) => all.iter().map(|f| f["field"].as_str().unwrap().to_owned()).collect(),
            None => vec![error["error"]["field"].as_str().unwrap().to_owned()],
        };
        assert_eq!(named, fields, "{error}");
        assert!(error["error"]["message"].as_str().unwrap().contains(words), "{error}");
    }
    // A body larger than the checker takes is refused before it is read whole.
    let large = json!({"webhookId": id, "headers": {}, "body": "x".repeat(300 * 1024)});
    let response = http().post(&url).bearer_auth(&s.key).json(&large).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(response.text().await.unwrap().contains("256 KiB"));
    for body in [
        json!({"webhookId": "wh_01KAQ3M7A8Q9XKJ2V5T6N4B0CD", "headers": {}, "body": ""}),
        json!({"attemptId": "att_01KAQ3M7A8Q9XKJ2V5T6N4B0CD"}),
    ] {
        let response = http().post(&url).bearer_auth(&s.key).json(&body).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{body}");
    }
}
