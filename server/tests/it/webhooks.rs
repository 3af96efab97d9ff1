//! `/api/v1/webhooks`: every route, every validation rule, and another partner's ids.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

/// An API client for one partner.
struct Api<'a> {
    app: &'a TestApp,
    key: String,
}

impl Api<'_> {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.app.api(&self.key, method, &format!("/api/v1{path}"), body).await
    }

    async fn create(&self, body: Value) -> Value {
        let (status, created) = self.call(Method::POST, "/webhooks", Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        created
    }

    async fn get(&self, id: &str) -> Value {
        let (status, webhook) = self.call(Method::GET, &format!("/webhooks/{id}"), None).await;
        assert_eq!(status, StatusCode::OK, "{webhook}");
        webhook
    }
}

async fn two_partners(app: &TestApp) -> (Api<'_>, Api<'_>) {
    let acme = app.create_partner("Acme", "ann@acme.test").await;
    let globex = app.create_partner("Globex", "bob@globex.test").await;
    (Api { app, key: app.create_api_key(&acme.id).await }, Api { app, key: app.create_api_key(&globex.id).await })
}

#[tokio::test]
async fn create_read_list_update_delete() {
    let app = spawn_app().await;
    let (acme, _) = two_partners(&app).await;

    let created = acme
        .create(json!({
            "url": " https://api.acme.test/webhooks ",
            "authHeader": {"name": "Authorization", "value": "Bearer very-secret-token-1234"},
            "eventTypes": ["verification.completed", "review.completed"],
        }))
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("wh_"));
    assert_eq!(created["url"], "https://api.acme.test/webhooks");
    assert_eq!(created["active"], true);
    assert!(created["secret"].as_str().unwrap().starts_with("whsec_"));
    assert_eq!(created["authHeader"], json!({"name": "Authorization", "value": "••••••••1234"}));
    assert_eq!(created["eventTypes"], json!(["verification.completed", "review.completed"]));
    assert_eq!(created["health"], "green");
    assert!(created["successRate"].is_null() && created["lastDeliveryAt"].is_null());
    assert!(!created.to_string().contains("very-secret-token"), "the header value never comes back");

    let fetched = acme.get(&id).await;
    assert!(fetched.get("secret").is_none(), "only the create answer and the reveal hold the secret");
    assert_eq!(fetched["url"], created["url"]);

    let (_, list) = acme.call(Method::GET, "/webhooks", None).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);

    // PATCH changes what it names; a name without value keeps the saved value.
    let (status, patched) = acme
        .call(
            Method::PATCH,
            &format!("/webhooks/{id}"),
            Some(json!({"url": "https://hooks.acme.test/v2", "eventTypes": null, "authHeader": {"name": "X-Api-Key"}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["url"], "https://hooks.acme.test/v2");
    assert!(patched["eventTypes"].is_null(), "null means all types");
    assert_eq!(patched["authHeader"], json!({"name": "X-Api-Key", "value": "••••••••1234"}));

    let (_, patched) = acme.call(Method::PATCH, &format!("/webhooks/{id}"), Some(json!({"authHeader": null}))).await;
    assert!(patched["authHeader"].is_null());
    assert_eq!(patched["url"], "https://hooks.acme.test/v2", "untouched fields stay");

    let (status, body) = acme.call(Method::DELETE, &format!("/webhooks/{id}"), None).await;
    assert_eq!((status, body), (StatusCode::NO_CONTENT, Value::Null));
    let (status, _) = acme.call(Method::GET, &format!("/webhooks/{id}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn activate_and_deactivate() {
    let app = spawn_app().await;
    let (acme, _) = two_partners(&app).await;
    let created = acme.create(json!({"url": "https://api.acme.test/hook", "active": false})).await;
    let id = created["id"].as_str().unwrap();
    assert_eq!(created["active"], false);
    assert_eq!(created["health"], "inactive");
    assert!(created["deactivatedAt"].is_string());
    assert!(created["deactivatedReason"].is_null(), "the partner switched it off, not the dispatcher");

    let (status, on) = acme.call(Method::POST, &format!("/webhooks/{id}/activate"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(on["active"], true);
    assert!(on["deactivatedAt"].is_null());
    let (_, off) = acme.call(Method::POST, &format!("/webhooks/{id}/deactivate"), None).await;
    assert_eq!(off["active"], false);
    assert_eq!(off["health"], "inactive");
    assert_eq!(acme.get(id).await["active"], false);
}

#[tokio::test]
async fn the_secret_is_revealed_and_rotated() {
    let app = spawn_app().await;
    let (acme, _) = two_partners(&app).await;
    let created = acme.create(json!({"url": "https://api.acme.test/hook"})).await;
    let id = created["id"].as_str().unwrap();
    let (status, revealed) = acme.call(Method::GET, &format!("/webhooks/{id}/secret"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(revealed["secret"], created["secret"]);
    let (status, rotated) = acme.call(Method::POST, &format!("/webhooks/{id}/secret/rotate"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_ne!(rotated["secret"], created["secret"]);
    let (_, revealed) = acme.call(Method::GET, &format!("/webhooks/{id}/secret"), None).await;
    assert_eq!(revealed["secret"], rotated["secret"]);
}

#[tokio::test]
async fn payload_templates_are_checked_on_save() {
    let app = spawn_app().await;
    let (acme, _) = two_partners(&app).await;
    let template = r#"{"event": {{ type|tojson }}, "ref": {{ data.verificationId|tojson }}}"#;
    let created = acme.create(json!({"url": "https://api.acme.test/hook", "payloadTemplate": template})).await;
    assert_eq!(created["payloadTemplate"], template);
    let (status, error) = acme
        .call(
            Method::POST,
            "/webhooks",
            Some(json!({"url": "https://api.acme.test/hook", "payloadTemplate": "{\"a\": {{ id }}}"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error["error"]["field"], "payloadTemplate");
    assert!(error["error"]["message"].as_str().unwrap().contains("valid JSON"), "{error}");
}

/// Every refused body: status 422 (400 for broken JSON), the field named, nothing changed.
#[tokio::test]
async fn bad_input_is_refused_with_the_field_named_and_changes_nothing() {
    let app = spawn_app().await;
    let (acme, _) = two_partners(&app).await;
    let original = acme.create(json!({"url": "https://api.acme.test/hook"})).await;
    let id = original["id"].as_str().unwrap().to_owned();
    let long_url = format!("https://api.acme.test/{}", "a".repeat(2049 - "https://api.acme.test/".len()));
    let cases: Vec<(Value, &str, &str)> = vec![
        (json!({"url": ""}), "url", "is required"),
        (json!({"url": "api.acme.test/hook"}), "url", "absolute URL"),
        (json!({"url": "http://api.acme.test/hook"}), "url", "https://"),
        (json!({"url": "https://user:pw@api.acme.test/"}), "url", "user name or password"),
        (json!({"url": long_url}), "url", "at most 2048"),
        (json!({"url": "https://127.0.0.1/hook"}), "url", "127.0.0.1, which is loopback"),
        (json!({"url": "https://x.test", "authHeader": {"name": "X-Key:", "value": "v"}}), "authHeader.name", "`:`"),
        (
            json!({"url": "https://x.test", "authHeader": {"name": "Content-Type", "value": "v"}}),
            "authHeader.name",
            "set by the dispatcher",
        ),
        (
            json!({"url": "https://x.test", "authHeader": {"name": "webhook-id", "value": "v"}}),
            "authHeader.name",
            "set by the dispatcher",
        ),
        (
            json!({"url": "https://x.test", "authHeader": {"name": "X-Key", "value": "a\r\nb"}}),
            "authHeader.value",
            "line breaks",
        ),
        (
            json!({"url": "https://x.test", "authHeader": {"name": "X-Key", "value": "k".repeat(1025)}}),
            "authHeader.value",
            "1,024",
        ),
        (json!({"url": "https://x.test", "authHeader": {"name": "X-Key"}}), "authHeader.value", "required"),
        (json!({"url": "https://x.test", "eventTypes": []}), "eventTypes", "at least one"),
        (json!({"url": "https://x.test", "eventTypes": ["verification.done"]}), "eventTypes", "not an event type"),
        (json!({"url": "https://x.test", "payloadTemplate": "{{"}), "payloadTemplate", "line 1"),
        (json!({"url": 5}), "url", "invalid type"),
        (json!({"url": "https://x.test", "colour": "red"}), "colour", "unknown field `colour`"),
        (json!({"active": true}), "body", "missing field `url`"),
    ];
    for (body, field, rule) in cases {
        for (method, path) in [(Method::POST, "/webhooks".to_owned()), (Method::PATCH, format!("/webhooks/{id}"))] {
            if method == Method::PATCH && rule.contains("missing field") {
                continue; // a PATCH may leave anything out
            }
            let (status, error) = acme.call(method.clone(), &path, Some(body.clone())).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{method} {body}: {error}");
            assert_eq!(error["error"]["code"], "validation_failed", "{body}");
            assert_eq!(error["error"]["field"], field, "{method} {body}: {error}");
            let message = error["error"]["message"].as_str().unwrap();
            assert!(message.contains(rule), "{method} {body}: {message}");
        }
    }
    // Broken JSON and a missing content type are 400s.
    let response = crate::helpers::http()
        .post(app.url("/api/v1/webhooks"))
        .bearer_auth(&acme.key)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let response = crate::helpers::http()
        .post(app.url("/api/v1/webhooks"))
        .bearer_auth(&acme.key)
        .body("url=x")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    // Several broken fields are all reported.
    let (_, error) = acme.call(Method::POST, "/webhooks", Some(json!({"url": "", "eventTypes": []}))).await;
    let fields: Vec<&str> =
        error["error"]["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["url", "eventTypes"]);

    // Nothing changed: still one webhook, exactly as made.
    let (_, list) = acme.call(Method::GET, "/webhooks", None).await;
    assert_eq!(list["data"], json!([acme.get(&id).await]));
    let unchanged = acme.get(&id).await;
    assert_eq!(unchanged["url"], original["url"]);
    assert_eq!(unchanged["updatedAt"], original["updatedAt"]);
}

/// Another partner's webhook answers exactly like a missing one, on every route.
#[tokio::test]
async fn another_partners_webhook_is_not_found_on_every_route() {
    let app = spawn_app().await;
    let (acme, globex) = two_partners(&app).await;
    let created = acme.create(json!({"url": "https://api.acme.test/hook"})).await;
    let id = created["id"].as_str().unwrap();
    let missing = "wh_01HZY3M7A8Q9XKJ2V5T6N4B0CD";
    let routes = [
        (Method::GET, "".to_owned(), None),
        (Method::PATCH, "".to_owned(), Some(json!({"url": "https://evil.test/"}))),
        (Method::DELETE, "".to_owned(), None),
        (Method::POST, "/activate".to_owned(), None),
        (Method::POST, "/deactivate".to_owned(), None),
        (Method::GET, "/secret".to_owned(), None),
        (Method::POST, "/secret/rotate".to_owned(), None),
        (Method::POST, "/test".to_owned(), None),
    ];
    for (method, suffix, body) in routes {
        let (theirs_status, theirs) =
            globex.call(method.clone(), &format!("/webhooks/{id}{suffix}"), body.clone()).await;
        let (missing_status, absent) =
            globex.call(method.clone(), &format!("/webhooks/{missing}{suffix}"), body.clone()).await;
        assert_eq!(theirs_status, StatusCode::NOT_FOUND, "{method} {suffix}");
        assert_eq!(missing_status, StatusCode::NOT_FOUND, "{method} {suffix}");
        let strip = |v: &Value| v["error"]["message"].as_str().unwrap().replace(id, "ID").replace(missing, "ID");
        assert_eq!(strip(&theirs), strip(&absent), "{method} {suffix}");
        assert_eq!(theirs["error"]["code"], absent["error"]["code"]);
    }
    let (_, list) = globex.call(Method::GET, "/webhooks", None).await;
    assert_eq!(list["data"], json!([]), "Globex lists none of Acme's webhooks");
    let after = acme.get(id).await;
    assert_eq!(after["url"], "https://api.acme.test/hook", "Acme's webhook is untouched");
    assert_eq!(after["active"], true);
    let (_, secret) = acme.call(Method::GET, &format!("/webhooks/{id}/secret"), None).await;
    assert_eq!(secret["secret"], created["secret"], "Globex could not rotate it");
}

#[tokio::test]
async fn every_webhook_route_needs_a_key() {
    let app = spawn_app().await;
    let id = "wh_01HZY3M7A8Q9XKJ2V5T6N4B0CD";
    for (method, path) in [
        (Method::GET, "/webhooks".to_owned()),
        (Method::POST, "/webhooks".to_owned()),
        (Method::GET, format!("/webhooks/{id}")),
        (Method::PATCH, format!("/webhooks/{id}")),
        (Method::DELETE, format!("/webhooks/{id}")),
        (Method::POST, format!("/webhooks/{id}/activate")),
        (Method::POST, format!("/webhooks/{id}/deactivate")),
        (Method::GET, format!("/webhooks/{id}/secret")),
        (Method::POST, format!("/webhooks/{id}/secret/rotate")),
        (Method::POST, format!("/webhooks/{id}/test")),
    ] {
        let response = crate::helpers::http()
            .request(method.clone(), app.url(&format!("/api/v1{path}")))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{method} {path}");
    }
}
