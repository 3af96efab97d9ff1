//! Roles inside a partner: admins change things, viewers read webhooks and logs only, in the
//! portal (server functions) and in the REST API (viewer keys).

use app::domain::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::Row;

use crate::helpers::{JsonAnswer, TestApp, TestPartner, insert_api_key_with_role, spawn_app};

/// Calls a server function as the portal's page would; answers the status and the body.
/// What a change would have touched, to prove nothing moved.
async fn snapshot(app: &TestApp) -> (String, i64, i64, i64, String) {
    let webhook =
        sqlx::query("SELECT url, active, signing_secret FROM webhooks").fetch_one(app.db.pool()).await.unwrap();
    let count = |table: &'static str| async move {
        sqlx::query(&format!("SELECT COUNT(*) AS n FROM {table}"))
            .fetch_one(app.db.pool())
            .await
            .unwrap()
            .get::<i64, _>("n")
    };
    (
        webhook.get("url"),
        webhook.get("active"),
        count("api_keys").await,
        count("users").await,
        webhook.get("signing_secret"),
    )
}

/// A partner with an admin (Ann, who adds a viewer, Vic, through the Team page's server
/// function) and one webhook.
async fn team(app: &TestApp) -> (TestPartner, reqwest::Client, reqwest::Client, String) {
    let partner = app.create_partner("Acme", "ann@acme.test").await;
    let ann = app.signed_in_client(&partner).await;
    let (status, body) = app.server_fn(&ann, "team/add", &[("email", "vic@acme.test"), ("role", "viewer")]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let added: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(added["member"]["role"], "viewer");
    let token = added["link"]["url"].as_str().unwrap().split("token=").nth(1).unwrap().to_owned();
    let vic = crate::helpers::browser();
    crate::accounts::set_password_with(app, &vic, &token, "vic's long password").await;
    let (status, body) =
        app.server_fn(&ann, "webhooks/save", &[("url", "https://example.com/hook"), ("active", "on")]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let id = serde_json::from_str::<Value>(&body).unwrap()["id"].as_str().unwrap().to_owned();
    (partner, ann, vic, id)
}

#[tokio::test]
async fn a_viewer_reads_webhooks_and_logs_and_every_change_is_refused() {
    let app = spawn_app().await;
    let (_, _, vic, id) = team(&app).await;
    let (_, me) = app.server_fn(&vic, "current_user", &[]).await;
    assert_eq!(serde_json::from_str::<Value>(&me).unwrap()["role"], "viewer");

    for (name, form) in [
        ("webhooks/list", vec![]),
        ("webhooks/get", vec![("id", id.as_str())]),
        ("logs/page", vec![("query[limit]", "10")]),
        ("logs/hourly", vec![("webhook", id.as_str())]),
        ("logs/replay_progress", vec![("webhook", id.as_str())]),
        ("alerts/open", vec![]),
    ] {
        let (status, body) = app.server_fn(&vic, name, &form).await;
        assert_eq!(status, StatusCode::OK, "{name} is a read: {body}");
    }

    let before = snapshot(&app).await;
    for (name, form) in [
        ("webhooks/save", vec![("id", id.as_str()), ("url", "https://evil.example/hook")]),
        ("webhooks/save", vec![("url", "https://evil.example/new")]),
        ("webhooks/set_active", vec![("id", id.as_str()), ("active", "false")]),
        ("webhooks/delete", vec![("id", id.as_str())]),
        ("webhooks/secret", vec![("id", id.as_str())]),
        ("webhooks/rotate_secret", vec![("id", id.as_str())]),
        ("webhooks/end_overlap", vec![("id", id.as_str())]),
        ("webhooks/test", vec![("id", id.as_str())]),
        ("logs/replay", vec![("webhook", id.as_str())]),
        ("logs/recover", vec![("webhook", id.as_str()), ("since", "2026-01-01T00:00")]),
        ("logs/resend", vec![("delivery", "dlv_01KAQ3M7A8Q9XKJ2V5T6N4B0CD")]),
        ("api_keys/list", vec![]),
        ("api_keys/create", vec![("name", "mine")]),
        ("api_keys/revoke", vec![("id", "key_01KAQ3M7A8Q9XKJ2V5T6N4B0CD")]),
        ("team/list", vec![]),
        ("team/add", vec![("email", "eve@acme.test"), ("role", "admin")]),
        ("team/role", vec![("id", "usr_01KAQ3M7A8Q9XKJ2V5T6N4B0CD"), ("role", "admin")]),
        ("team/remove", vec![("id", "usr_01KAQ3M7A8Q9XKJ2V5T6N4B0CD")]),
        ("audit/list", vec![]),
        ("alerts/dismiss", vec![("id", "alr_01KAQ3M7A8Q9XKJ2V5T6N4B0CD")]),
    ] {
        let (status, body) = app.server_fn(&vic, name, &form).await;
        assert!(!status.is_success() && body.contains("Forbidden"), "{name} must be refused: {status} {body}");
    }
    assert_eq!(snapshot(&app).await, before, "nothing changed");
}

#[tokio::test]
async fn admins_add_people_to_their_own_partner_only() {
    let app = spawn_app().await;
    let (partner, ann, vic, _) = team(&app).await;
    // Vic signs in to Acme's portal.
    let (_, me) = app.server_fn(&vic, "current_user", &[]).await;
    assert_eq!(serde_json::from_str::<Value>(&me).unwrap()["partner_id"], partner.id.to_string());
    let (_, list) = app.server_fn(&ann, "team/list", &[]).await;
    let emails: Vec<String> = serde_json::from_str::<Vec<Value>>(&list)
        .unwrap()
        .iter()
        .map(|m| format!("{} {}", m["email"].as_str().unwrap(), m["role"].as_str().unwrap()))
        .collect();
    assert_eq!(emails, ["ann@acme.test admin", "vic@acme.test viewer"]);

    // Another partner's admin sees only their own team.
    let other = app.create_partner("Other", "olga@other.test").await;
    let olga = app.signed_in_client(&other).await;
    let (_, list) = app.server_fn(&olga, "team/list", &[]).await;
    assert_eq!(serde_json::from_str::<Vec<Value>>(&list).unwrap().len(), 1);

    // A taken email and a bad role are named.
    let (_, body) = app.server_fn(&ann, "team/add", &[("email", "olga@other.test"), ("role", "viewer")]).await;
    assert!(body.contains("already used"), "{body}");
    let (_, body) = app.server_fn(&ann, "team/add", &[("email", "new@acme.test"), ("role", "owner")]).await;
    assert!(body.contains("role") && body.contains("admin"), "{body}");
}

#[tokio::test]
async fn a_viewer_api_key_reads_and_every_write_route_answers_403() {
    let app = spawn_app().await;
    let partner = app.create_partner("Acme", "ann@acme.test").await;
    let admin = insert_api_key_with_role(&app.db, &partner.id, Role::Admin).await;
    let viewer = insert_api_key_with_role(&app.db, &partner.id, Role::Viewer).await;
    let client = crate::helpers::http();
    let created: Value = client
        .post(app.url("/api/v1/webhooks"))
        .bearer_auth(&admin)
        .json(&json!({"url": "https://example.com/hook"}))
        .json_answer()
        .await;
    let id = created["id"].as_str().unwrap();

    for path in [
        "/api/v1/webhooks".to_owned(),
        format!("/api/v1/webhooks/{id}"),
        format!("/api/v1/webhooks/{id}/attempts"),
        "/api/v1/attempts".to_owned(),
        format!("/api/v1/webhooks/{id}/replay"),
        "/api/v1/partner".to_owned(),
    ] {
        let response = client.get(app.url(&path)).bearer_auth(&viewer).send().await.unwrap();
        assert!(response.status() == StatusCode::OK || response.status() == StatusCode::NOT_FOUND, "GET {path}");
        assert_ne!(response.status(), StatusCode::FORBIDDEN, "GET {path}");
    }
    let before = snapshot(&app).await;
    for (method, path, body) in [
        ("POST", "/api/v1/webhooks".to_owned(), json!({"url": "https://evil.example/hook"})),
        ("PATCH", format!("/api/v1/webhooks/{id}"), json!({"url": "https://evil.example/hook"})),
        ("DELETE", format!("/api/v1/webhooks/{id}"), json!({})),
        ("POST", format!("/api/v1/webhooks/{id}/deactivate"), json!({})),
        ("POST", format!("/api/v1/webhooks/{id}/activate"), json!({})),
        ("GET", format!("/api/v1/webhooks/{id}/secret"), json!({})),
        ("POST", format!("/api/v1/webhooks/{id}/secret/rotate"), json!({})),
        ("DELETE", format!("/api/v1/webhooks/{id}/secret/previous"), json!({})),
        ("POST", format!("/api/v1/webhooks/{id}/test"), json!({})),
        ("POST", format!("/api/v1/webhooks/{id}/replay"), json!({})),
        ("POST", format!("/api/v1/webhooks/{id}/recover"), json!({"since": "2026-01-01T00:00:00Z"})),
        ("POST", "/api/v1/deliveries/dlv_01KAQ3M7A8Q9XKJ2V5T6N4B0CD/resend".to_owned(), json!({})),
    ] {
        let request = client.request(method.parse().unwrap(), app.url(&path)).bearer_auth(&viewer);
        let request = if method == "GET" || method == "DELETE" { request } else { request.json(&body) };
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{method} {path}");
        let error: Value = response.json().await.unwrap();
        assert!(error["error"]["message"].as_str().unwrap().contains("viewer key"), "{error}");
    }
    assert_eq!(snapshot(&app).await, before, "nothing changed");
}
