//! Self-service accounts: passwords set through one-time links and changed by their owner,
//! admins who remove people and change roles (never the last admin), and the audit log.

use reqwest::StatusCode;
use reqwest::header::{ACCEPT, REFERER};
use serde_json::Value;

use crate::helpers::{TestApp, browser, location, spawn_app};

/// Opens a one-time link's form and sets `password` with it, as a browser without JavaScript
/// does; checks it signed `client` in.
pub async fn set_password_with(app: &TestApp, client: &reqwest::Client, token: &str, password: &str) {
    let response = submit_link(app, client, token, password, password).await;
    assert_eq!(location(&response).as_deref(), Some("/webhooks"), "signed in after setting the password");
}

async fn submit_link(
    app: &TestApp,
    client: &reqwest::Client,
    token: &str,
    password: &str,
    confirm: &str,
) -> reqwest::Response {
    client
        .post(app.url("/api/account/set_password"))
        .header(ACCEPT, "text/html")
        .header(REFERER, app.url(&format!("/set-password?token={token}")))
        .form(&[("token", token), ("password", password), ("confirm", confirm)])
        .send()
        .await
        .unwrap()
}

/// Ann (admin) adds `email` with `role` on the Team page: the link's token.
async fn add_member(app: &TestApp, ann: &reqwest::Client, email: &str, role: &str) -> (String, String) {
    let (status, body) = app.server_fn(ann, "team/add", &[("email", email), ("role", role)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let added: Value = serde_json::from_str(&body).unwrap();
    assert!(added.get("password").is_none(), "the admin never sees a password: {added}");
    let url = added["link"]["url"].as_str().unwrap();
    let token = url.split("token=").nth(1).unwrap().to_owned();
    (added["member"]["id"].as_str().unwrap().to_owned(), token)
}

/// Whether `client`'s session still signs it in.
async fn signed_in(app: &TestApp, client: &reqwest::Client) -> bool {
    let (_, me) = app.server_fn(client, "current_user", &[]).await;
    serde_json::from_str::<Value>(&me).is_ok_and(|me| me.is_object())
}

fn login_works(response: &reqwest::Response) -> bool {
    location(response).as_deref() == Some("/webhooks")
}

#[tokio::test]
async fn a_new_user_sets_their_own_password_through_a_link_that_works_once() {
    let app = spawn_app().await;
    let partner = app.create_partner("Acme", "ann@acme.test").await;
    let ann = app.signed_in_client(&partner).await;
    let (_, token) = add_member(&app, &ann, "vic@acme.test", "viewer").await;

    // Before the link is used, nobody can sign in as Vic, whatever they type.
    for guess in ["", "unset", "correct horse battery staple"] {
        assert!(!login_works(&app.login(&browser(), "vic@acme.test", guess).await), "{guess}");
    }
    // The link's page keeps its address to itself: no cache, no Referer.
    let page = browser().get(app.url(&format!("/set-password?token={token}"))).send().await.unwrap();
    assert_eq!(page.headers()["cache-control"], "no-store");
    assert_eq!(page.headers()["referrer-policy"], "no-referrer");
    // The link's page names who it is for; a made-up token is not a link.
    let (status, email) = app.server_fn(&browser(), "account/link", &[("token", &token)]).await;
    assert_eq!((status, email.as_str()), (StatusCode::OK, "\"vic@acme.test\""));
    let (status, _) = app.server_fn(&browser(), "account/link", &[("token", "pwl_made_up")]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A short password or a mismatch is named, and the link still works after.
    let vic = browser();
    let (status, body) = app
        .server_fn(&vic, "account/set_password", &[("token", &token), ("password", "short"), ("confirm", "short")])
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.contains("at least 12 characters"), "{body}");
    let (status, body) = app
        .server_fn(
            &vic,
            "account/set_password",
            &[("token", &token), ("password", "vic's long password"), ("confirm", "vic's long passw0rd")],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.contains("confirm") && body.contains("does not match"), "{body}");

    set_password_with(&app, &vic, &token, "vic's long password").await;
    assert!(signed_in(&app, &vic).await, "setting the password signs Vic in");
    assert!(login_works(&app.login(&browser(), "vic@acme.test", "vic's long password").await));

    // Used once, the link is spent.
    let again = submit_link(&app, &browser(), &token, "someone else's pick", "someone else's pick").await;
    assert_ne!(location(&again).as_deref(), Some("/webhooks"));
    assert!(login_works(&app.login(&browser(), "vic@acme.test", "vic's long password").await), "unchanged");

    // An expired link does nothing either.
    let (_, token) = add_member(&app, &ann, "eve@acme.test", "viewer").await;
    sqlx::query("UPDATE password_links SET expires_at = 0").execute(app.db.writer()).await.unwrap();
    let late = submit_link(&app, &browser(), &token, "eve's long password", "eve's long password").await;
    assert_ne!(location(&late).as_deref(), Some("/webhooks"));
    assert!(!login_works(&app.login(&browser(), "eve@acme.test", "eve's long password").await));
}

#[tokio::test]
async fn changing_your_password_needs_the_current_one_and_ends_your_other_sessions() {
    let app = spawn_app().await;
    let partner = app.create_partner("Acme", "ann@acme.test").await;
    let here = app.signed_in_client(&partner).await;
    let elsewhere = app.signed_in_client(&partner).await;
    let change = |current: &'static str, new: &'static str| {
        let (app, here) = (&app, &here);
        async move {
            app.server_fn(here, "account/password", &[("current", current), ("password", new), ("confirm", new)]).await
        }
    };

    let (status, body) = change("not my password at all", "a brand new password").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.contains("current") && body.contains("is not your current password"), "{body}");
    assert!(signed_in(&app, &elsewhere).await, "a wrong current password changes nothing");
    assert!(login_works(&app.login(&browser(), &partner.email, &partner.password).await));

    let (status, body) = change("correct horse battery staple", "a brand new password").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(signed_in(&app, &here).await, "the session that changed it goes on");
    assert!(!signed_in(&app, &elsewhere).await, "every other session ended");
    assert!(!login_works(&app.login(&browser(), &partner.email, &partner.password).await), "the old password");
    assert!(login_works(&app.login(&browser(), &partner.email, "a brand new password").await), "the new one");
}

#[tokio::test]
async fn admins_remove_people_and_change_roles_but_never_the_last_admin() {
    let app = spawn_app().await;
    let partner = app.create_partner("Acme", "ann@acme.test").await;
    let ann = app.signed_in_client(&partner).await;
    let (_, me) = app.server_fn(&ann, "current_user", &[]).await;
    let ann_id = serde_json::from_str::<Value>(&me).unwrap()["user_id"].as_str().unwrap().to_owned();
    let (vic_id, token) = add_member(&app, &ann, "vic@acme.test", "viewer").await;
    let vic = browser();
    set_password_with(&app, &vic, &token, "vic's long password").await;

    // An admin who has not used their link yet can sign in as nobody: they don't count.
    let (pending_id, pending_token) = add_member(&app, &ann, "pat@acme.test", "admin").await;
    let (status, body) = app.server_fn(&ann, "team/role", &[("id", &ann_id), ("role", "viewer")]).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, body) = app.server_fn(&ann, "team/remove", &[("id", &pending_id)]).await;
    assert_eq!(status, StatusCode::OK, "a pending admin can go: {body}");
    let _ = pending_token;

    // Ann is the only admin: she can't demote or remove herself.
    for (name, form) in [
        ("team/role", vec![("id", ann_id.as_str()), ("role", "viewer")]),
        ("team/remove", vec![("id", ann_id.as_str())]),
    ] {
        let (status, body) = app.server_fn(&ann, name, &form).await;
        assert_eq!(status, StatusCode::CONFLICT, "{name}: {body}");
        assert!(body.contains("last admin"), "{body}");
    }

    // Vic becomes an admin, and can change things at once; then Ann can step down.
    let (status, body) = app.server_fn(&ann, "team/role", &[("id", &vic_id), ("role", "admin")]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app.server_fn(&vic, "api_keys/create", &[("name", "vic's key")]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The key list says who made each key: the keys to revoke when someone leaves.
    let (_, keys) = app.server_fn(&ann, "api_keys/list", &[]).await;
    let keys: Vec<Value> = serde_json::from_str(&keys).unwrap();
    assert_eq!((keys[0]["name"].as_str(), keys[0]["createdBy"].as_str()), (Some("vic's key"), Some("vic@acme.test")));
    let (status, body) = app.server_fn(&ann, "team/role", &[("id", &ann_id), ("role", "viewer")]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = app.server_fn(&ann, "api_keys/create", &[("name", "ann's key")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "the new role applies at once");

    // Vic removes Ann: her session ends at once, and she can't sign in again.
    let (status, body) = app.server_fn(&vic, "team/remove", &[("id", &ann_id)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(!signed_in(&app, &ann).await);
    assert!(!login_works(&app.login(&browser(), &partner.email, &partner.password).await));

    // Another partner's admin can't touch Acme's people.
    let other = app.create_partner("Other", "olga@other.test").await;
    let olga = app.signed_in_client(&other).await;
    for (name, form) in [
        ("team/role", vec![("id", vic_id.as_str()), ("role", "viewer")]),
        ("team/remove", vec![("id", vic_id.as_str())]),
    ] {
        let (status, _) = app.server_fn(&olga, name, &form).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{name}");
    }
    assert!(signed_in(&app, &vic).await);
}

#[tokio::test]
async fn the_audit_log_names_who_did_what_for_admins_of_the_partner_only() {
    let app = &spawn_app().await;
    let partner = app.create_partner("Acme", "ann@acme.test").await;
    let ann = app.signed_in_client(&partner).await;
    let key = app.create_api_key(&partner.id).await;

    // A change in the portal, one through the API, a secret shown.
    let (_, body) =
        app.server_fn(&ann, "webhooks/save", &[("url", "https://example.com/hook"), ("active", "on")]).await;
    let id = serde_json::from_str::<Value>(&body).unwrap()["id"].as_str().unwrap().to_owned();
    let api = crate::helpers::http();
    let rotated =
        api.post(app.url(&format!("/api/v1/webhooks/{id}/secret/rotate"))).bearer_auth(&key).send().await.unwrap();
    assert_eq!(rotated.status(), StatusCode::OK);
    // Shown three times in a minute: one entry (a script reading it in a loop can't fill the log).
    for _ in 0..3 {
        let (status, _) = app.server_fn(&ann, "webhooks/secret", &[("id", &id)]).await;
        assert_eq!(status, StatusCode::OK);
    }
    let (_, token) = add_member(app, &ann, "vic@acme.test", "viewer").await;
    set_password_with(app, &browser(), &token, "vic's long password").await;

    let (status, body) = app.server_fn(&ann, "audit/list", &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let page: Value = serde_json::from_str(&body).unwrap();
    let lines: Vec<String> = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} | {} | {}",
                e["actor"].as_str().unwrap(),
                e["action"].as_str().unwrap(),
                e["subject"].as_str().unwrap()
            )
        })
        .collect();
    let hook = format!("https://example.com/hook ({id})");
    assert_eq!(
        lines,
        [
            "vic@acme.test | set password with a one-time link | vic@acme.test (link made by ann@acme.test)".to_owned(),
            "ann@acme.test | made a one-time password link | vic@acme.test".to_owned(),
            "ann@acme.test | added user | vic@acme.test as viewer".to_owned(),
            format!("ann@acme.test | revealed signing secret | {hook}"),
            format!(
                "API key \u{201c}test\u{201d} ({}\u{2026}) | rotated signing secret | {hook}",
                &key[.."whp_live_".len() + 4]
            ),
            format!("ann@acme.test | created webhook | {hook}"),
        ],
        "newest first"
    );
    assert!(page["older"].is_null());

    // Another partner's admin sees none of it; a viewer may not read it; a bad cursor is named.
    let other = app.create_partner("Other", "olga@other.test").await;
    let olga = app.signed_in_client(&other).await;
    let (_, body) = app.server_fn(&olga, "audit/list", &[]).await;
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["entries"], serde_json::json!([]));
    let (status, body) = app.server_fn(&ann, "audit/list", &[("before", "not-a-cursor")]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.contains("before"), "{body}");
}

#[tokio::test]
async fn the_audit_log_pages_back_through_older_entries() {
    let app = crate::helpers::spawn_app_with(&["--max-api-keys", "100"]).await;
    let partner = app.create_partner("Acme", "ann@acme.test").await;
    let ann = app.signed_in_client(&partner).await;
    for n in 0..(app::domain::AUDIT_PAGE + 3) {
        let (status, body) = app.server_fn(&ann, "api_keys/create", &[("name", &format!("key {n}"))]).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (_, body) = app.server_fn(&ann, "audit/list", &[]).await;
    let first: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(first["entries"].as_array().unwrap().len(), app::domain::AUDIT_PAGE);
    let cursor = first["older"].as_str().unwrap();
    let (_, body) = app.server_fn(&ann, "audit/list", &[("before", cursor)]).await;
    let second: Value = serde_json::from_str(&body).unwrap();
    let subjects: Vec<&str> =
        second["entries"].as_array().unwrap().iter().map(|e| e["subject"].as_str().unwrap()).collect();
    assert_eq!(subjects.len(), 3);
    assert!(subjects[2].starts_with("key 0 "), "{subjects:?}");
    assert!(second["older"].is_null());
}

/// Every kind of change a partner's people and keys can make leaves its entry, naming who made
/// it: webhooks and their secrets, deliveries sent again, keys, users, passwords, inspectors.
#[tokio::test]
async fn every_kind_of_change_leaves_its_entry_in_the_audit_log() {
    use crate::receiver::{Receiver, Reply, eventually};
    use serde_json::json;

    let app = &crate::helpers::spawn_app_with(&["--allow-private-targets", "true", "--retry-schedule", ""]).await;
    let partner = app.create_partner("Acme", "ann@acme.test").await;
    let ann = app.signed_in_client(&partner).await;
    let key = app.create_api_key(&partner.id).await;
    let receiver = Receiver::start(Reply::Status(200, "")).await;
    let api = |method: reqwest::Method, path: &str, body: Option<Value>| {
        let (key, path) = (&key, format!("/api/v1{path}"));
        async move {
            let (status, body) = app.api(key, method, &path, body).await;
            assert!(status.is_success(), "{status}: {body}");
            body
        }
    };
    use reqwest::Method;
    let portal = |name: &'static str, form: Vec<(&'static str, String)>| {
        let ann = &ann;
        async move {
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let (status, body) = app.server_fn(ann, name, &form).await;
            assert!(status.is_success() || status.is_redirection(), "{name}: {status} {body}");
            body
        }
    };

    // Through the API, with a key.
    let created = api(Method::POST, "/webhooks", Some(json!({"url": receiver.url}))).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let hook = format!("/webhooks/{id}");
    api(Method::PATCH, &hook, Some(json!({"url": format!("{}/changed", receiver.url)}))).await;
    api(Method::POST, &format!("{hook}/deactivate"), None).await;
    api(Method::POST, &format!("{hook}/activate"), None).await;
    api(Method::POST, &format!("{hook}/test"), None).await;
    api(Method::GET, &format!("{hook}/secret"), None).await;
    api(Method::POST, &format!("{hook}/secret/rotate"), None).await;
    api(Method::DELETE, &format!("{hook}/secret/previous"), None).await;
    let published = crate::helpers::http()
        .post(app.url("/api/v1/events"))
        .bearer_auth(crate::helpers::OPERATOR_TOKEN)
        .json(&json!({"partnerId": partner.id.to_string(), "type": "verification.completed", "status": "success",
            "id": "evt_audited", "data": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(published.status(), StatusCode::ACCEPTED);
    let log = format!("{hook}/attempts");
    eventually("the event's attempt is logged", std::time::Duration::from_secs(30), || async {
        api(Method::GET, &log, None).await["data"].as_array().unwrap().iter().any(|a| a["eventId"] == "evt_audited")
    })
    .await;
    let attempts = api(Method::GET, &log, None).await;
    let delivery =
        attempts["data"].as_array().unwrap().iter().find(|a| a["eventId"] == "evt_audited").unwrap()["deliveryId"]
            .as_str()
            .unwrap()
            .to_owned();
    api(Method::POST, &format!("/deliveries/{delivery}/resend"), None).await;
    api(Method::POST, &format!("{hook}/replay"), Some(json!({"since": "2020-01-01T00:00:00Z"}))).await;
    api(Method::POST, &format!("{hook}/recover"), Some(json!({"since": "2020-01-01T00:00:00Z"}))).await;

    // In the portal, as Ann (an admin), and as Vic, whom she adds.
    let made: Value = serde_json::from_str(&portal("api_keys/create", vec![("name", "ci".into())]).await).unwrap();
    portal("api_keys/revoke", vec![("id", made["summary"]["id"].as_str().unwrap_or_default().into())]).await;
    let (vic, token) = add_member(app, &ann, "vic@acme.test", "viewer").await;
    set_password_with(app, &browser(), &token, "vic's long password").await;
    portal("team/role", vec![("id", vic.clone()), ("role", "admin".into())]).await;
    portal("team/remove", vec![("id", vic)]).await;
    let inspector: Value = serde_json::from_str(&portal("inspectors/create", vec![]).await).unwrap();
    portal("inspectors/delete", vec![("id", inspector["id"].as_str().unwrap().into())]).await;
    api(Method::DELETE, &hook, None).await;
    let new_password = "ann's new long password";
    portal(
        "account/password",
        vec![
            ("current", partner.password.clone()),
            ("password", new_password.into()),
            ("confirm", new_password.into()),
        ],
    )
    .await;

    let (status, body) = app.server_fn(&ann, "audit/list", &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let page: Value = serde_json::from_str(&body).unwrap();
    let mut entries: Vec<(String, String)> = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["actor"].as_str().unwrap().to_owned(), e["action"].as_str().unwrap().to_owned()))
        .collect();
    entries.reverse();
    let key_actor = format!("API key \u{201c}test\u{201d} ({}\u{2026})", &key[.."whp_live_".len() + 4]);
    let by_key = |action: &str| (key_actor.clone(), action.to_owned());
    let by = |who: &str, action: &str| (who.to_owned(), action.to_owned());
    assert_eq!(
        entries,
        [
            by_key("created webhook"),
            by_key("changed webhook"),
            by_key("deactivated webhook"),
            by_key("activated webhook"),
            by_key("tested webhook"),
            by_key("revealed signing secret"),
            by_key("rotated signing secret"),
            by_key("ended the old signing secret's overlap"),
            by_key("resent delivery"),
            by_key("replayed missed events"),
            by_key("recovered failed deliveries"),
            by("ann@acme.test", "created API key"),
            by("ann@acme.test", "revoked API key"),
            by("ann@acme.test", "added user"),
            by("ann@acme.test", "made a one-time password link"),
            by("vic@acme.test", "set password with a one-time link"),
            by("ann@acme.test", "changed role"),
            by("ann@acme.test", "removed user"),
            by("ann@acme.test", "created request inspector"),
            by("ann@acme.test", "deleted request inspector"),
            by_key("deleted webhook"),
            by("ann@acme.test", "changed own password"),
        ],
        "oldest first here"
    );
}
