//! Sandbox and production (#20): a key of one environment can't read or change the other's
//! data on any route, events go to their environment's webhooks only, and the portal shows and
//! changes the environment the session is switched to.

use std::time::Duration;

use app::domain::{Environment, PartnerId, Role};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{OPERATOR_TOKEN, Setup, http, insert_api_key_in, setup};
use crate::receiver::{Receiver, Reply, eventually};

async fn call(s: &Setup, key: &str, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    s.app.api(key, method, &format!("/api/v1{path}"), body).await
}

async fn publish(s: &Setup, body: Value) -> (StatusCode, Value) {
    let response =
        http().post(s.app.url("/api/v1/events")).bearer_auth(OPERATOR_TOKEN).json(&body).send().await.unwrap();
    (response.status(), response.json().await.unwrap())
}

/// One environment's key, webhook, event, attempt and delivery, once its event arrived.
struct World {
    key: String,
    webhook: String,
    event: String,
    attempt: String,
    delivery: String,
    receiver: Receiver,
}

async fn world(s: &Setup, key: String, environment: Option<&str>, event: &str) -> World {
    let receiver = Receiver::start(Reply::Status(200, "")).await;
    let (status, created) = call(s, &key, Method::POST, "/webhooks", Some(json!({"url": receiver.url}))).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let webhook = created["id"].as_str().unwrap().to_owned();
    let mut body = json!({"partnerId": s.partner, "type": "verification.completed", "status": "success", "id": event,
        "data": {"verificationId": format!("ver_{event}")}});
    if let Some(environment) = environment {
        body["environment"] = json!(environment);
    }
    let (status, published) = publish(s, body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{published}");
    assert_eq!(published["deliveries"], 1, "only its own environment's webhook takes it: {published}");
    let path = format!("/webhooks/{webhook}/attempts");
    eventually("the event's attempt is logged", Duration::from_secs(30), || async {
        call(s, &key, Method::GET, &path, None).await.1["data"][0].is_object()
    })
    .await;
    let attempt = call(s, &key, Method::GET, &path, None).await.1["data"][0].clone();
    World {
        key,
        webhook,
        event: event.to_owned(),
        attempt: attempt["id"].as_str().unwrap().to_owned(),
        delivery: attempt["deliveryId"].as_str().unwrap().to_owned(),
        receiver,
    }
}

/// Every route a key can call with an id of the other environment answers 404, and changes
/// nothing; lists show only the key's own environment.
#[tokio::test]
async fn a_sandbox_key_and_a_production_key_never_reach_each_others_data() {
    let s = setup(&["--retry-schedule", ""]).await;
    let account = PartnerId::parse(&s.partner).unwrap();
    let sandbox_key = insert_api_key_in(&s.app.db, &account, Environment::Sandbox, Role::Admin).await;
    assert!(sandbox_key.starts_with("whp_sandbox_"), "the key says its environment");
    let production = world(&s, s.key.clone(), None, "evt_in_production").await;
    let sandbox = world(&s, sandbox_key, Some("sandbox"), "evt_in_sandbox").await;
    assert_eq!(production.receiver.received().len(), 1);
    assert_eq!(sandbox.receiver.received().len(), 1);
    assert!(sandbox.receiver.received()[0].body.contains("evt_in_sandbox"));

    for (env, key) in [("production", &production.key), ("sandbox", &sandbox.key)] {
        let (_, me) = call(&s, key, Method::GET, "/partner", None).await;
        assert_eq!(me["id"], s.partner.as_str(), "one partner id for both environments");
        assert_eq!(me["environment"], env);
    }

    for (mine, theirs) in [(&production, &sandbox), (&sandbox, &production)] {
        let (w, e, a, d) = (&theirs.webhook, &theirs.event, &theirs.attempt, &theirs.delivery);
        let since = json!({"since": "2020-01-01T00:00:00Z"});
        let routes = [
            (Method::GET, format!("/webhooks/{w}"), None),
            (Method::PATCH, format!("/webhooks/{w}"), Some(json!({"url": "https://evil.test/"}))),
            (Method::POST, format!("/webhooks/{w}/deactivate"), None),
            (Method::POST, format!("/webhooks/{w}/activate"), None),
            (Method::GET, format!("/webhooks/{w}/secret"), None),
            (Method::POST, format!("/webhooks/{w}/secret/rotate"), None),
            (Method::DELETE, format!("/webhooks/{w}/secret/previous"), None),
            (Method::POST, format!("/webhooks/{w}/test"), None),
            (Method::GET, format!("/webhooks/{w}/attempts"), None),
            (Method::POST, format!("/webhooks/{w}/replay"), Some(since.clone())),
            (Method::GET, format!("/webhooks/{w}/replay"), None),
            (Method::POST, format!("/webhooks/{w}/recover"), Some(since)),
            (Method::GET, format!("/webhooks/{w}/recover"), None),
            (Method::GET, format!("/attempts/{a}"), None),
            (Method::POST, format!("/deliveries/{d}/resend"), None),
            (Method::GET, format!("/events/{e}"), None),
            (Method::DELETE, format!("/webhooks/{w}"), None),
        ];
        for (method, path, body) in routes {
            let (status, answer) = call(&s, &mine.key, method.clone(), &path, body).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {answer}");
        }
        let (_, hooks) = call(&s, &mine.key, Method::GET, "/webhooks", None).await;
        let ids: Vec<&str> = hooks["data"].as_array().unwrap().iter().map(|w| w["id"].as_str().unwrap()).collect();
        assert_eq!(ids, [mine.webhook.as_str()]);
        let (_, events) = call(&s, &mine.key, Method::GET, "/events", None).await;
        let ids: Vec<&str> = events["data"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap()).collect();
        assert_eq!(ids, [mine.event.as_str()]);
        let (_, log) = call(&s, &mine.key, Method::GET, "/attempts", None).await;
        assert!(log["data"].as_array().unwrap().iter().all(|a| a["webhookId"] == mine.webhook.as_str()), "{log}");
        let (_, found) = call(&s, &mine.key, Method::GET, &format!("/events?search=ver_{}", theirs.event), None).await;
        assert_eq!(found["data"], json!([]), "search finds nothing of the other environment");
    }
    // Both webhooks are as they were: active, their URL and their one attempt.
    for world in [&production, &sandbox] {
        let (_, hook) = call(&s, &world.key, Method::GET, &format!("/webhooks/{}", world.webhook), None).await;
        assert_eq!(hook["active"], true);
        assert_eq!(hook["url"], world.receiver.url.as_str());
        assert_eq!(world.receiver.received().len(), 1, "no test, resend or replay reached it from the other side");
    }
}

#[tokio::test]
async fn publishing_names_a_bad_environment_and_an_unknown_partner() {
    let s = setup(&[]).await;
    let event = |env: &str, partner: &str| json!({"partnerId": partner, "environment": env, "type": "verification.completed", "status": "success", "data": {}});
    let (status, answer) = publish(&s, event("staging", &s.partner)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(answer["error"]["field"], "environment", "{answer}");
    let (status, answer) = publish(&s, event("sandbox", "ptn_01HZY3M7A8Q9XKJ2V5T6N4B0CD")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(answer["error"]["field"], "partnerId", "{answer}");
    // A sandbox row's own id is not a partner the operator can publish to.
    let account = PartnerId::parse(&s.partner).unwrap();
    let sandbox =
        app::store::accounts::environment_partner(&s.app.db, &account, Environment::Sandbox).await.unwrap().unwrap();
    for env in ["production", "sandbox"] {
        let (status, answer) = publish(&s, event(env, sandbox.as_str())).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{env}: {answer}");
    }
}

/// The ids of the webhooks the portal lists to `client`.
async fn list(s: &Setup, client: &reqwest::Client) -> Vec<String> {
    let (status, body) = s.app.server_fn(client, "webhooks/list", &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let hooks: Value = serde_json::from_str(&body).unwrap();
    hooks.as_array().unwrap().iter().map(|w| w["id"].as_str().unwrap().to_owned()).collect()
}

/// The portal: switching moves every page to the other environment's data; keys made there
/// belong to it; the team and the audit log are the account's, in both.
#[tokio::test]
async fn the_portal_shows_and_changes_only_the_environment_it_is_switched_to() {
    let s = setup(&[]).await;
    let client = s
        .app
        .signed_in_client(&crate::helpers::TestPartner {
            id: PartnerId::parse(&s.partner).unwrap(),
            email: "ann@acme.test".into(),
            password: "correct horse battery staple".into(),
        })
        .await;
    let receiver = Receiver::start(Reply::Status(200, "")).await;
    let (_, production_hook) = call(&s, &s.key, Method::POST, "/webhooks", Some(json!({"url": receiver.url}))).await;
    let production_id = production_hook["id"].as_str().unwrap();
    assert_eq!(list(&s, &client).await, [production_id]);
    let page = client.get(s.app.url("/webhooks")).send().await.unwrap().text().await.unwrap();
    assert!(!page.contains("sandbox-band"), "no band in production");

    // A production event delivered, so there is an attempt, a delivery and an event to reach for.
    let (status, published) = publish(
        &s,
        json!({"partnerId": s.partner, "type": "verification.completed", "status": "success", "id": "evt_portal", "data": {}}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{published}");
    let path = format!("/webhooks/{production_id}/attempts");
    eventually("the production attempt is logged", Duration::from_secs(30), || async {
        call(&s, &s.key, Method::GET, &path, None).await.1["data"][0].is_object()
    })
    .await;
    let attempt = call(&s, &s.key, Method::GET, &path, None).await.1["data"][0].clone();
    let (attempt_id, delivery_id) = (attempt["id"].as_str().unwrap(), attempt["deliveryId"].as_str().unwrap());

    let (status, body) = s.app.server_fn(&client, "switch_environment", &[("environment", "staging")]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.contains("environment"), "{body}");
    let (status, body) = s.app.server_fn(&client, "switch_environment", &[("environment", "sandbox")]).await;
    assert!(status.is_success() || status.is_redirection(), "{status} {body}");

    let (_, me) = s.app.server_fn(&client, "current_user", &[]).await;
    let me: Value = serde_json::from_str(&me).unwrap();
    assert_eq!(me["environment"], "sandbox");
    assert_eq!(list(&s, &client).await, Vec::<String>::new(), "the sandbox has none of production's webhooks");
    // Every server function given production's ids from the sandbox finds nothing.
    let w = production_id;
    let since = "2020-01-01T00:00:00Z";
    for (name, form) in [
        ("webhooks/get", vec![("id", w)]),
        ("webhooks/set_active", vec![("id", w), ("active", "false")]),
        ("webhooks/secret", vec![("id", w)]),
        ("webhooks/rotate_secret", vec![("id", w)]),
        ("webhooks/end_overlap", vec![("id", w)]),
        ("webhooks/test", vec![("id", w)]),
        ("logs/attempt", vec![("id", attempt_id)]),
        ("logs/hourly", vec![("webhook", w)]),
        ("logs/resend", vec![("delivery", delivery_id)]),
        ("logs/replay_plan", vec![("webhook", w)]),
        ("logs/replay", vec![("webhook", w), ("since", since)]),
        ("logs/replay_progress", vec![("webhook", w)]),
        ("logs/recover_plan", vec![("webhook", w), ("since", since)]),
        ("logs/recover", vec![("webhook", w), ("since", since)]),
        ("logs/recover_progress", vec![("webhook", w)]),
        ("signatures/check-attempt", vec![("attempt", attempt_id)]),
        ("events/show", vec![("id", "evt_portal")]),
        ("webhooks/delete", vec![("id", w)]),
    ] {
        let (status, answer) = s.app.server_fn(&client, name, &form).await;
        assert_eq!((status, answer.as_str()), (StatusCode::NOT_FOUND, "\"NotFound\""), "{name}");
    }
    let page = client.get(s.app.url("/webhooks")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("sandbox-band") && page.contains("Sandbox"), "every sandbox page carries the band");

    // A form drawn for production, sent after the switch (another tab), makes nothing.
    let (status, refused) = s
        .app
        .server_fn(&client, "api_keys/create", &[("name", "meant for production"), ("environment", "production")])
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert!(refused.contains("reload the page"), "{refused}");
    let (status, refused) = s
        .app
        .server_fn(&client, "webhooks/save", &[("url", "https://prod.example.com/hook"), ("environment", "production")])
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    let (status, refused) = s.app.server_fn(&client, "inspectors/create", &[("environment", "production")]).await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert_eq!(list(&s, &client).await, Vec::<String>::new(), "nothing was made in the sandbox");
    let (_, keys) = s.app.server_fn(&client, "api_keys/list", &[]).await;
    assert_eq!(keys, "[]");

    // A key made here is a sandbox key, and sees the sandbox only.
    let (status, created) =
        s.app.server_fn(&client, "api_keys/create", &[("name", "ci"), ("environment", "sandbox")]).await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let key = serde_json::from_str::<Value>(&created).unwrap()["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("whp_sandbox_"), "{key}");
    let (_, me) = call(&s, &key, Method::GET, "/partner", None).await;
    assert_eq!(me["environment"], "sandbox");
    let (_, hooks) = call(&s, &key, Method::GET, "/webhooks", None).await;
    assert_eq!(hooks["data"], json!([]));
    let (_, keys) = call(&s, &s.key, Method::GET, "/partner", None).await;
    assert_eq!(keys["environment"], "production");

    // The team is the account's in both; the audit log lists both environments' changes.
    let (_, team) = s.app.server_fn(&client, "team/list", &[]).await;
    assert!(team.contains("ann@acme.test"), "{team}");
    let (_, audit) = s.app.server_fn(&client, "audit/list", &[]).await;
    let audit: Value = serde_json::from_str(&audit).unwrap();
    let entries = audit["entries"].as_array().unwrap();
    assert!(
        entries.iter().any(|e| e["action"].as_str().unwrap().contains("API key") && e["environment"] == "sandbox"),
        "{audit}"
    );
    assert!(entries.iter().any(|e| e["environment"] == "production"), "{audit}");

    let (status, _) = s.app.server_fn(&client, "switch_environment", &[("environment", "production")]).await;
    assert!(status.is_success() || status.is_redirection());
    assert_eq!(list(&s, &client).await, [production_id], "back in production, its webhook again");
    let (_, hook) = call(&s, &s.key, Method::GET, &format!("/webhooks/{production_id}"), None).await;
    assert_eq!(hook["active"], true, "untouched from the sandbox");
    assert_eq!(receiver.received().len(), 1, "no test, resend, replay or recovery reached it from the sandbox");
}
