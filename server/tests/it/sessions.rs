//! Signing in and out, and which pages need a session.

use reqwest::StatusCode;

use crate::helpers::{browser, location, spawn_app};

#[tokio::test]
async fn pages_send_visitors_without_a_session_to_login() {
    let app = spawn_app().await;
    let client = browser();
    for path in ["/", "/webhooks", "/settings/api-keys", "/webhooks/new", "/logs"] {
        let response = client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(location(&response).as_deref(), Some("/login"), "{path}");
    }
}

#[tokio::test]
async fn login_page_has_labelled_fields() {
    let app = spawn_app().await;
    let response = browser().get(app.url("/login")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await.unwrap();
    assert!(html.contains(r#"<label for="email">Email</label>"#), "{html}");
    assert!(html.contains(r#"<label for="password">Password</label>"#), "{html}");
    assert!(html.contains(r#"action="/api/login""#), "{html}");
    assert!(html.contains("/pkg/portal.js"), "the page loads the hydration script");
}

#[tokio::test]
async fn a_user_signs_in_sees_the_partner_and_signs_out() {
    let app = spawn_app().await;
    let partner = app.create_partner("Acme Verification", "ann@acme.test").await;
    let client = browser();

    let response = app.login(&client, "ANN@acme.test ", &partner.password).await;
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(location(&response).as_deref(), Some("/webhooks"));

    let page = client.get(app.url("/webhooks")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"class="partner-name">Acme Verification</span>"#), "the header names the partner: {html}");
    assert!(html.contains("Log out"));

    // Signed in, `/` and `/login` lead to the webhooks.
    for path in ["/", "/login"] {
        let response = client.get(app.url(path)).send().await.unwrap();
        assert_eq!(location(&response).as_deref(), Some("/webhooks"), "{path}");
    }

    let response = client
        .post(app.url("/api/logout"))
        .header("accept", "text/html")
        .header("referer", app.url("/webhooks"))
        .send()
        .await
        .unwrap();
    assert_eq!(location(&response).as_deref(), Some("/login"));
    let response = client.get(app.url("/webhooks")).send().await.unwrap();
    assert_eq!(location(&response).as_deref(), Some("/login"), "logged out means no access");
}

#[tokio::test]
async fn wrong_password_and_unknown_email_answer_alike() {
    let app = spawn_app().await;
    let partner = app.create_partner("Acme", "ann@acme.test").await;

    let wrong_password = app.login(&browser(), &partner.email, "not the password at all").await;
    let unknown_email = app.login(&browser(), "nobody@acme.test", "not the password at all").await;
    let malformed_email = app.login(&browser(), "nobody", "not the password at all").await;
    for response in [&wrong_password, &unknown_email, &malformed_email] {
        assert_eq!(response.status(), StatusCode::FOUND);
        let to = location(response).unwrap();
        assert!(to.starts_with(&app.url("/login?")) && to.contains("__err="), "{to}");
    }
    assert_eq!(location(&wrong_password), location(&unknown_email));
    assert_eq!(location(&wrong_password), location(&malformed_email));

    // The login page shows the error from the URL, for browsers without JavaScript.
    let page = browser().get(location(&wrong_password).unwrap()).send().await.unwrap();
    let html = page.text().await.unwrap();
    assert!(html.contains("Wrong email or password."), "{html}");
}

#[tokio::test]
async fn a_failed_login_grants_nothing() {
    let app = spawn_app().await;
    let partner = app.create_partner("Acme", "ann@acme.test").await;
    let client = browser();
    app.login(&client, &partner.email, "wrong password, long enough").await;
    let response = client.get(app.url("/webhooks")).send().await.unwrap();
    assert_eq!(location(&response).as_deref(), Some("/login"));
}

#[tokio::test]
async fn the_session_id_changes_at_login() {
    let app = spawn_app().await;
    let partner = app.create_partner("Acme", "ann@acme.test").await;
    let client = browser();
    let first = app.login(&client, &partner.email, &partner.password).await;
    let first_cookie = session_cookie(&first).expect("login sets the session cookie");
    let second = app.login(&client, &partner.email, &partner.password).await;
    let second_cookie = session_cookie(&second).expect("a second login sets it again");
    assert_ne!(first_cookie, second_cookie, "a login must not keep the session id it came with");

    // The old id is dead: a client that still holds it is not signed in.
    let stale = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(crate::helpers::ANSWER_DEADLINE)
        .build()
        .unwrap();
    let response = stale
        .get(app.url("/webhooks"))
        .header("cookie", format!("portal_session={first_cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(location(&response).as_deref(), Some("/login"));
}

#[tokio::test]
async fn the_session_cookie_is_http_only_and_same_site() {
    let app = spawn_app().await;
    let partner = app.create_partner("Acme", "ann@acme.test").await;
    let response = app.login(&browser(), &partner.email, &partner.password).await;
    let cookie = response.headers().get("set-cookie").unwrap().to_str().unwrap().to_owned();
    assert!(cookie.starts_with("portal_session="), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
}

#[tokio::test]
async fn server_functions_refuse_callers_without_a_session() {
    let app = spawn_app().await;
    let response = browser().post(app.url("/api/api_keys/list")).send().await.unwrap();
    assert!(!response.status().is_success(), "{}", response.status());
    let body = response.text().await.unwrap();
    assert!(body.contains("Unauthorized"), "{body}");
}

#[tokio::test]
async fn unknown_pages_say_not_found() {
    let app = spawn_app().await;
    let partner = app.create_partner("Acme", "ann@acme.test").await;
    let client = app.signed_in_client(&partner).await;
    let response = client.get(app.url("/no/such/page")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(response.text().await.unwrap().contains("Page not found"));
}

fn session_cookie(response: &reqwest::Response) -> Option<String> {
    response.headers().get_all("set-cookie").iter().find_map(|v| {
        let text = v.to_str().ok()?;
        let value = text.strip_prefix("portal_session=")?;
        Some(value.split(';').next()?.to_owned())
    })
}

#[tokio::test]
async fn pages_are_compressed_for_browsers_that_accept_it() {
    let app = spawn_app().await;
    let response = browser().get(app.url("/login")).header("accept-encoding", "gzip").send().await.unwrap();
    assert_eq!(response.headers().get("content-encoding").map(|v| v.to_str().unwrap()), Some("gzip"));
    let plain = browser().get(app.url("/login")).send().await.unwrap();
    assert!(plain.headers().get("content-encoding").is_none());
}

#[tokio::test]
async fn the_database_keeps_a_hash_of_each_session_id_never_the_id() {
    let app = spawn_app().await;
    let partner = app.create_partner("Acme", "ann@acme.test").await;
    let response = app.login(&browser(), &partner.email, &partner.password).await;
    let cookie = session_cookie(&response).expect("login sets the session cookie");
    let table = if app.database_url.starts_with("postgres") { "tower_sessions.session" } else { "tower_sessions" };
    let ids: Vec<String> = sqlx::query(&format!("SELECT id FROM {table}"))
        .fetch_all(app.db.pool())
        .await
        .unwrap()
        .iter()
        .map(|row| sqlx::Row::get::<String, _>(row, "id"))
        .collect();
    assert!(!ids.contains(&cookie), "the cookie's id is in the database: {ids:?}");
    let id: tower_sessions::session::Id = cookie.parse().unwrap();
    assert!(ids.contains(&server::session_ids::stored_id(&id).to_string()), "{ids:?}");
    // A copy of that row is no way in: presenting the stored id signs no one in.
    let stolen = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let page =
        stolen.get(app.url("/webhooks")).header("cookie", format!("portal_session={}", ids[0])).send().await.unwrap();
    assert_eq!(location(&page).as_deref(), Some("/login"));
}
