//! The webhook forms and buttons of the portal (its server functions), for the signed-in
//! partner only.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

async fn call(app: &TestApp, client: &reqwest::Client, path: &str, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let response = client.post(app.url(path)).form(form).send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

const FORM: &[(&str, &str)] = &[
    ("url", "https://api.acme.test/hook"),
    ("active", "on"),
    ("auth_header_name", "Authorization"),
    ("auth_header_value", "Bearer portal-secret-4321"),
    ("event_types_mode", "selected"),
    ("type_verification_failed", "on"),
    ("type_review_completed", "on"),
    ("payload_template", ""),
];

#[tokio::test]
async fn the_form_creates_and_updates_a_webhook() {
    let app = spawn_app().await;
    let acme = app.create_partner("Acme", "ann@acme.test").await;
    let client = app.signed_in_client(&acme).await;

    let (status, created) = call(&app, &client, "/api/webhooks/save", FORM).await;
    assert_eq!(status, StatusCode::OK, "{created}");
    assert_eq!(created["eventTypes"], json!(["verification.failed", "review.completed"]));
    assert_eq!(created["authHeader"]["value"], "••••••••4321");
    let id = created["id"].as_str().unwrap();

    // An edit that leaves the value empty keeps it; unchecking "Active" switches it off.
    let (_, updated) = call(
        &app,
        &client,
        "/api/webhooks/save",
        &[
            ("id", id),
            ("url", "https://api.acme.test/v2"),
            ("auth_header_name", "X-Key"),
            ("auth_header_value", ""),
            ("event_types_mode", "all"),
        ],
    )
    .await;
    assert_eq!(updated["url"], "https://api.acme.test/v2");
    assert_eq!(updated["active"], false);
    assert!(updated["eventTypes"].is_null());
    assert_eq!(updated["authHeader"], json!({"name": "X-Key", "value": "••••••••4321"}));

    let (_, secret) = call(&app, &client, "/api/webhooks/secret", &[("id", id)]).await;
    assert!(secret.as_str().unwrap().starts_with("whsec_"));
    let (_, rotated) = call(&app, &client, "/api/webhooks/rotate_secret", &[("id", id)]).await;
    assert!(rotated["secret"].as_str().unwrap().starts_with("whsec_"));
    assert_ne!(rotated["secret"], secret);
    assert!(rotated["oldSignsUntil"].is_string(), "{rotated}");

    let (_, switched) = call(&app, &client, "/api/webhooks/set_active", &[("id", id), ("active", "true")]).await;
    assert_eq!(switched["active"], true);

    let (_, preview) =
        call(&app, &client, "/api/webhooks/preview", &[("template", r#"{"t": {{ type|tojson }}}"#)]).await;
    // The exact bytes sent and signed: compact.
    assert_eq!(preview, json!(r#"{"t":"verification.completed"}"#));

    let (status, _) = call(&app, &client, "/api/webhooks/delete", &[("id", id)]).await;
    assert_eq!(status, StatusCode::OK);
    let (_, list) = call(&app, &client, "/api/webhooks/list", &[]).await;
    assert_eq!(list, json!([]));
}

#[tokio::test]
async fn a_bad_form_reports_every_field_and_saves_nothing() {
    let app = spawn_app().await;
    let acme = app.create_partner("Acme", "ann@acme.test").await;
    let client = app.signed_in_client(&acme).await;
    let (status, error) = call(
        &app,
        &client,
        "/api/webhooks/save",
        &[
            ("url", "http://api.acme.test/hook"),
            ("auth_header_name", "Host"),
            ("auth_header_value", "x"),
            ("event_types_mode", "selected"),
            ("payload_template", "{{ id"),
        ],
    )
    .await;
    assert!(!status.is_success());
    let fields: Vec<&str> =
        error["InvalidFields"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["url", "authHeader.name", "eventTypes", "payloadTemplate"]);
    let (_, list) = call(&app, &client, "/api/webhooks/list", &[]).await;
    assert_eq!(list, json!([]));
}

#[tokio::test]
async fn another_partners_webhook_is_not_found_in_the_portal() {
    let app = spawn_app().await;
    let acme = app.create_partner("Acme", "ann@acme.test").await;
    let globex = app.create_partner("Globex", "bob@globex.test").await;
    let acme_client = app.signed_in_client(&acme).await;
    let globex_client = app.signed_in_client(&globex).await;
    let (_, created) = call(&app, &acme_client, "/api/webhooks/save", FORM).await;
    let id = created["id"].as_str().unwrap();
    let missing = "wh_01HZY3M7A8Q9XKJ2V5T6N4B0CD";

    for (path, extra) in [
        ("/api/webhooks/get", vec![]),
        ("/api/webhooks/save", FORM.to_vec()),
        ("/api/webhooks/set_active", vec![("active", "false")]),
        ("/api/webhooks/secret", vec![]),
        ("/api/webhooks/rotate_secret", vec![]),
        ("/api/webhooks/delete", vec![]),
    ] {
        let theirs: Vec<(&str, &str)> = [("id", id)].into_iter().chain(extra.iter().copied()).collect();
        let absent: Vec<(&str, &str)> = [("id", missing)].into_iter().chain(extra.iter().copied()).collect();
        let (status, error) = call(&app, &globex_client, path, &theirs).await;
        assert_eq!(error, json!("NotFound"), "{path}");
        assert_eq!(call(&app, &globex_client, path, &absent).await, (status, error), "{path}");
    }
    // The page itself says not found too, and never shows Acme's URL.
    let page = globex_client.get(app.url(&format!("/webhooks/{id}"))).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("Not found.") && !page.contains("api.acme.test"));

    let (_, acme_view) = call(&app, &acme_client, "/api/webhooks/get", &[("id", id)]).await;
    assert_eq!(acme_view["active"], true, "Acme's webhook is untouched");
    assert_eq!(acme_view["url"], "https://api.acme.test/hook");
}
