//! The REST API's authentication, and API keys made and revoked in the portal.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{TestApp, spawn_app};

async fn get_partner(app: &TestApp, authorization: Option<&str>) -> (StatusCode, Value) {
    let mut request = crate::helpers::http().get(app.url("/api/v1/partner"));
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    let response = request.send().await.unwrap();
    (response.status(), response.json().await.unwrap())
}

#[tokio::test]
async fn the_api_needs_a_key() {
    let app = spawn_app().await;
    let (status, body) = get_partner(&app, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "unauthorized");
    assert!(body["error"]["message"].as_str().unwrap().contains("Bearer"));

    for bad in ["Bearer", "Basic dXNlcjpwYXNz", "Bearer whp_short", &format!("Bearer whp_{}", "x".repeat(40))] {
        let (status, body) = get_partner(&app, Some(bad)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{bad}");
        assert_eq!(body["error"]["code"], "unauthorized", "{bad}");
    }
}

#[tokio::test]
async fn a_key_speaks_for_its_partner_only() {
    let app = spawn_app().await;
    let acme = app.create_partner("Acme", "ann@acme.test").await;
    let globex = app.create_partner("Globex", "bob@globex.test").await;
    let acme_key = app.create_api_key(&acme.id).await;
    let globex_key = app.create_api_key(&globex.id).await;

    let (status, body) = get_partner(&app, Some(&format!("Bearer {acme_key}"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["id"], acme.id.to_string());
    assert_eq!(body["name"], "Acme");

    let (_, body) = get_partner(&app, Some(&format!("Bearer {globex_key}"))).await;
    assert_eq!(body["id"], globex.id.to_string());
}

#[tokio::test]
async fn unknown_api_routes_answer_json_404() {
    let app = spawn_app().await;
    let response = reqwest::get(app.url("/api/v1/nothing-here")).await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
}

/// Calls a server function as the hydrated page does (form-encoded, JSON answer).
async fn call(app: &TestApp, client: &reqwest::Client, path: &str, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let response = client.post(app.url(path)).form(form).send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn api_keys_are_created_in_the_portal_shown_once_and_revoked() {
    let app = spawn_app().await;
    let acme = app.create_partner("Acme", "ann@acme.test").await;
    let client = app.signed_in_client(&acme).await;

    let (status, created) = call(&app, &client, "/api/api_keys/create", &[("name", "  Backend  ")]).await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let key = created["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("whp_"));
    assert_eq!(created["summary"]["name"], "Backend");
    let key_id = created["summary"]["id"].as_str().unwrap().to_owned();

    // The key works, and the list never shows it again.
    let (status, _) = get_partner(&app, Some(&format!("Bearer {key}"))).await;
    assert_eq!(status, StatusCode::OK);
    let (_, list) = call(&app, &client, "/api/api_keys/list", &[]).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert!(!list.to_string().contains(&key), "the list must not hold the key");
    assert!(list[0]["lastUsedAt"].is_string(), "using a key notes when");
    let page = client.get(app.url("/settings/api-keys")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("Backend") && !page.contains(&key));

    let (status, revoked) = call(&app, &client, "/api/api_keys/revoke", &[("id", &key_id)]).await;
    assert_eq!(status, StatusCode::OK, "{revoked}");
    assert!(revoked["revokedAt"].is_string());
    let (status, _) = get_partner(&app, Some(&format!("Bearer {key}"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a revoked key stops working");
}

#[tokio::test]
async fn a_bad_key_name_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let acme = app.create_partner("Acme", "ann@acme.test").await;
    let client = app.signed_in_client(&acme).await;
    for (name, rule) in [("   ", "is required"), (&*"k".repeat(101), "at most 100"), ("a\tb", "control")] {
        let (status, error) = call(&app, &client, "/api/api_keys/create", &[("name", name)]).await;
        assert!(!status.is_success());
        let field = &error["Invalid"];
        assert_eq!(field["field"], "name", "{error}");
        assert!(field["message"].as_str().unwrap().contains(rule), "{error}");
    }
    let (_, list) = call(&app, &client, "/api/api_keys/list", &[]).await;
    assert_eq!(list, serde_json::json!([]));
}

#[tokio::test]
async fn another_partners_key_cannot_be_revoked() {
    let app = spawn_app().await;
    let acme = app.create_partner("Acme", "ann@acme.test").await;
    let globex = app.create_partner("Globex", "bob@globex.test").await;
    let acme_client = app.signed_in_client(&acme).await;
    let globex_client = app.signed_in_client(&globex).await;
    let (_, created) = call(&app, &acme_client, "/api/api_keys/create", &[("name", "Acme backend")]).await;
    let key_id = created["summary"]["id"].as_str().unwrap();

    let (status, error) = call(&app, &globex_client, "/api/api_keys/revoke", &[("id", key_id)]).await;
    assert!(!status.is_success());
    let (_, missing) =
        call(&app, &globex_client, "/api/api_keys/revoke", &[("id", "key_01HZY3M7A8Q9XKJ2V5T6N4B0CD")]).await;
    assert_eq!(error, missing, "another partner's key reads exactly like a missing one");
    let (_, globex_list) = call(&app, &globex_client, "/api/api_keys/list", &[]).await;
    assert_eq!(globex_list, serde_json::json!([]), "Globex sees none of Acme's keys");
    let (_, acme_list) = call(&app, &acme_client, "/api/api_keys/list", &[]).await;
    assert!(acme_list[0]["revokedAt"].is_null(), "Acme's key is untouched");
}

#[tokio::test]
async fn the_openapi_document_describes_every_route() {
    let app = spawn_app().await;
    let response = reqwest::get(app.url("/api/v1/openapi.json")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let doc: Value = response.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = &doc["paths"];
    for (path, method) in [
        ("/api/v1/partner", "get"),
        ("/api/v1/webhooks", "get"),
        ("/api/v1/webhooks", "post"),
        ("/api/v1/webhooks/{id}", "get"),
        ("/api/v1/webhooks/{id}", "patch"),
        ("/api/v1/webhooks/{id}", "delete"),
        ("/api/v1/webhooks/{id}/activate", "post"),
        ("/api/v1/webhooks/{id}/deactivate", "post"),
        ("/api/v1/webhooks/{id}/secret", "get"),
        ("/api/v1/webhooks/{id}/secret/rotate", "post"),
        ("/api/v1/webhooks/{id}/secret/previous", "delete"),
        ("/api/v1/webhooks/{id}/recover", "post"),
        ("/api/v1/webhooks/{id}/recover", "get"),
        ("/api/v1/webhooks/{id}/test", "post"),
        ("/api/v1/events", "post"),
        ("/api/v1/event-types", "get"),
        ("/api/v1/signatures/check", "post"),
        ("/api/v1/inspectors", "get"),
        ("/api/v1/inspectors", "post"),
        ("/api/v1/inspectors/{id}", "get"),
        ("/api/v1/inspectors/{id}", "delete"),
        ("/api/v1/inspectors/{id}/requests", "get"),
    ] {
        assert!(paths[path][method].is_object(), "{method} {path} is missing");
    }
    // What the portal sends to partners: one webhook per event type, its body's schema and an
    // example of it, and the signature headers.
    for event_type in ["verification.completed", "verification.failed", "verification.expired", "review.completed"] {
        let post = &doc["webhooks"][event_type]["post"];
        let content = &post["requestBody"]["content"]["application/json"];
        assert_eq!(content["schema"]["properties"]["type"]["const"], event_type, "{post}");
        assert_eq!(content["example"]["type"], event_type);
        let headers: Vec<&str> =
            post["parameters"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
        assert!(headers.contains(&"x-webhook-signature") && headers.contains(&"webhook-signature"), "{headers:?}");
    }
    let webhook = &doc["components"]["schemas"]["WebhookView"]["properties"];
    for field in [
        "id",
        "url",
        "active",
        "deactivatedReason",
        "eventTypes",
        "authHeader",
        "payloadTemplate",
        "createdAt",
        "lastDeliveryAt",
        "successRate",
        "health",
    ] {
        assert!(webhook[field].is_object(), "WebhookView.{field} is missing");
    }
}
