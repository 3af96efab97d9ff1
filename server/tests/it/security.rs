//! The protections a browser and a hostile client meet: security headers, the cross-site
//! request check, body size limits, cookies marked Secure behind HTTPS (and no start there
//! without a secret key), and sign-in throttling, bursts and the argon2 bound included.

use reqwest::StatusCode;
use reqwest::header::{ACCEPT, ORIGIN, REFERER};
use serde_json::{Value, json};
use sqlx::Row;

use app::api::AppError;
use app::store::throttle::ThrottleKey;

use crate::helpers::{
    JsonAnswer, OPERATOR_TOKEN, PortalProcess, SECRET_KEY, TestApp, assert_signed_in, assert_too_many, assert_wrong,
    browser, insert_partner, location, sample, spawn_app, spawn_app_with, throttle_row, try_login, try_login_at,
};

fn header(response: &reqwest::Response, name: &str) -> String {
    response.headers().get(name).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default()
}

#[tokio::test]
async fn pages_carry_a_policy_with_their_nonce_and_every_answer_the_security_headers() {
    let app = spawn_app().await;
    let response = browser().get(app.url("/login")).send().await.unwrap();
    let policy = header(&response, "content-security-policy");
    let nosniff = header(&response, "x-content-type-options");
    let frames = header(&response, "x-frame-options");
    let referrer = header(&response, "referrer-policy");
    let html = response.text().await.unwrap();
    let nonce = html.split(r#"nonce=""#).nth(1).and_then(|rest| rest.split('"').next()).expect("scripts carry a nonce");
    assert!(policy.contains(&format!("script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'")), "{policy}");
    assert!(policy.contains("frame-ancestors 'none'") && policy.contains("object-src 'none'"), "{policy}");
    assert!(!policy.contains("unsafe-inline"), "{policy}");
    assert_eq!((nosniff.as_str(), frames.as_str(), referrer.as_str()), ("nosniff", "DENY", "same-origin"));
    // A fresh nonce for every page.
    let again = browser().get(app.url("/login")).send().await.unwrap();
    assert!(!header(&again, "content-security-policy").contains(nonce));

    // Answers that are not pages allow nothing at all.
    let response = crate::helpers::http().get(app.url("/api/v1/partner")).send().await.unwrap();
    assert_eq!(header(&response, "content-security-policy"), "default-src 'none'; frame-ancestors 'none'");
    assert_eq!(header(&response, "x-content-type-options"), "nosniff");
    assert_eq!(header(&response, "strict-transport-security"), "", "no HSTS over plain HTTP");
}

async fn api_key_count(app: &TestApp) -> i64 {
    sqlx::query("SELECT COUNT(*) AS n FROM api_keys").fetch_one(app.db.pool()).await.unwrap().get("n")
}

#[tokio::test]
async fn state_changing_requests_from_another_site_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let partner = app.create_partner("Acme", "ann@acme.test").await;
    let ann = app.signed_in_client(&partner).await;
    let create = |origin: Option<(&'static str, String)>| {
        let mut request = ann.post(app.url("/api/api_keys/create")).form(&[("name", "from a form")]);
        if let Some((name, value)) = origin {
            request = request.header(name, value);
        }
        request.send()
    };

    for (name, value) in [
        ("origin", "https://evil.example".to_owned()),
        ("referer", "https://evil.example/attack.html".to_owned()),
        ("origin", "null".to_owned()),
        ("sec-fetch-site", "cross-site".to_owned()),
        // The same host on another port is another origin.
        ("origin", app.address.replace(app.address.rsplit(':').next().unwrap(), "1")),
    ] {
        let response = create(Some((name, value.clone()))).await.unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{name}: {value}");
        assert!(response.text().await.unwrap().contains("Refused"), "the answer says why");
    }
    assert_eq!(api_key_count(&app).await, 0, "nothing was made");

    // The portal's own pages pass.
    let response = create(Some(("origin", app.address.clone()))).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(api_key_count(&app).await, 1);

    // A login form posted from another site signs no one in.
    let visitor = browser();
    let response = visitor
        .post(app.url("/api/login"))
        .header(ACCEPT, "text/html")
        .header(ORIGIN, "https://evil.example")
        .form(&[("email", partner.email.as_str()), ("password", partner.password.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let page = visitor.get(app.url("/webhooks")).send().await.unwrap();
    assert_eq!(location(&page).as_deref(), Some("/login"), "still signed out");

    // The REST API takes bearer tokens, which a browser never adds by itself: no check there.
    let response = crate::helpers::http()
        .post(app.url("/api/v1/events"))
        .bearer_auth(OPERATOR_TOKEN)
        .header(ORIGIN, "https://elsewhere.example")
        .json(&json!({"partnerId": partner.id.to_string(), "type": "verification.completed", "status": "success", "data": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
}

#[tokio::test]
async fn bodies_over_the_limit_are_refused_with_413_and_change_nothing() {
    let app = spawn_app().await;
    let partner = app.create_partner("Acme", "ann@acme.test").await;
    let key = app.create_api_key(&partner.id).await;
    let big = "x".repeat(300 * 1024);

    let response = crate::helpers::http()
        .post(app.url("/api/v1/webhooks"))
        .bearer_auth(&key)
        .json(&json!({"url": "https://example.com/hook", "payloadTemplate": big}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "too_large");
    assert!(body["error"]["message"].as_str().unwrap().contains("256 KiB"), "{body}");
    let webhooks: i64 =
        sqlx::query("SELECT COUNT(*) AS n FROM webhooks").fetch_one(app.db.pool()).await.unwrap().get("n");
    assert_eq!(webhooks, 0);

    let response = crate::helpers::http()
        .post(app.url("/api/v1/events"))
        .bearer_auth(OPERATOR_TOKEN)
        .json(&json!({"partnerId": partner.id.to_string(), "type": "verification.completed", "status": "success", "data": {"blob": big}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let events: i64 = sqlx::query("SELECT COUNT(*) AS n FROM events").fetch_one(app.db.pool()).await.unwrap().get("n");
    assert_eq!(events, 0);

    // Forms and server functions too.
    let ann = app.signed_in_client(&partner).await;
    let response = ann
        .post(app.url("/api/webhooks/preview"))
        .header(REFERER, app.url("/webhooks/new"))
        .form(&[("template", big.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(response.text().await.unwrap().contains("256 KiB"));
}

#[tokio::test]
async fn behind_https_the_session_cookie_is_secure_and_browsers_are_told_to_stay_on_https() {
    let app = spawn_app_with(&["--public-url", "https://portal.example.test", "--secret-key", SECRET_KEY]).await;
    let partner = app.create_partner("Acme", "ann@acme.test").await;
    let response = app.login(&browser(), &partner.email, &partner.password).await;
    let cookie = header(&response, "set-cookie");
    assert!(cookie.starts_with("portal_session="), "{cookie}");
    for attribute in ["Secure", "HttpOnly", "SameSite=Lax"] {
        assert!(cookie.contains(attribute), "{attribute} missing: {cookie}");
    }
    assert_eq!(header(&response, "strict-transport-security"), "max-age=31536000");
    // The public origin is this site too.
    let response = browser()
        .post(app.url("/api/login"))
        .header(ORIGIN, "https://portal.example.test")
        .form(&[("email", partner.email.as_str()), ("password", partner.password.as_str())])
        .send()
        .await
        .unwrap();
    assert_ne!(response.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn behind_https_the_portal_refuses_to_start_without_a_secret_key() {
    use clap::Parser;
    use server::config::{Cli, Command};
    let dir = tempfile::tempdir().unwrap();
    let database_url = crate::helpers::fresh_database_url(dir.path()).await;
    let args = |flags: &[&str]| {
        let base = ["portal", "serve", "--addr", "127.0.0.1:0", "--public-url", "https://portal.example.test"];
        match Cli::try_parse_from(base.iter().chain(flags)).unwrap().command {
            Some(Command::Serve(args)) => args,
            other => panic!("{other:?}"),
        }
    };
    let Err(err) = server::startup::Application::build(&database_url, args(&[])).await else {
        panic!("a portal on https:// started with its key in a file beside the database");
    };
    let err = format!("{err:#}");
    assert!(err.contains("PORTAL_SECRET_KEY is not set") && err.contains("backup"), "says why: {err}");
    assert!(!dir.path().join(app::crypto::KEY_FILE).exists(), "and made no key file");
    // With the key it starts.
    assert!(server::startup::Application::build(&database_url, args(&["--secret-key", SECRET_KEY])).await.is_ok());
}

#[tokio::test]
async fn failed_sign_ins_lock_the_email_from_that_address_whether_or_not_it_exists() {
    let app = spawn_app().await;
    let partner = app.create_partner("Acme", "ann@acme.test").await;
    for email in [partner.email.as_str(), "nobody@acme.test"] {
        for _ in 1..=5 {
            assert_wrong(&try_login(&app, email, "wrong password, long enough", None).await, email);
        }
        // The same answer for a user and for no one: nothing tells whether the email exists.
        assert_too_many(&try_login(&app, email, "wrong password, long enough", None).await, email);
    }
    // Now even the right password waits, about 30 s, and is told so with 429, not 500.
    let wait = assert_too_many(&try_login(&app, &partner.email, &partner.password, None).await, "right password");
    assert!((25..=30).contains(&wait), "{wait} s");
    let pair = ThrottleKey::for_sign_in(&partner.email, Some("127.0.0.1")).remove(0);
    let (_, until) = throttle_row(&app, pair).await.expect("the pair is counted");
    assert!((25_000..=30_000).contains(&(until.unwrap() - app::store::now_ms())));
    // A browser without JavaScript is sent back to the form, which shows the words.
    let response = app.login(&browser(), &partner.email, &partner.password).await;
    assert_eq!(response.status(), StatusCode::FOUND);
    assert!(location(&response).unwrap().contains("__err="), "the error rides in the URL");
    // Another user from the same address is not held up by ann's lock.
    let bob = app.create_partner("Bobco", "bob@bobco.test").await;
    assert_signed_in(&try_login(&app, &bob.email, &bob.password, None).await, "bob");
}

#[tokio::test]
async fn a_successful_sign_in_takes_its_attempts_back() {
    let app = spawn_app().await;
    let partner = app.create_partner("Acme", "ann@acme.test").await;
    for round in 0..2 {
        for _ in 0..4 {
            assert_wrong(&try_login(&app, &partner.email, "a typo in the password", None).await, "typo");
        }
        // The fifth attempt of each round: counted, and taken back when right.
        assert_signed_in(&try_login(&app, &partner.email, &partner.password, None).await, &format!("round {round}"));
    }
    let pair = ThrottleKey::for_sign_in(&partner.email, Some("127.0.0.1")).remove(0);
    assert_eq!(throttle_row(&app, pair).await, None, "signed in: the pair starts again");
    let email = ThrottleKey::for_sign_in(&partner.email, None).remove(0);
    assert_eq!(throttle_row(&app, email).await.map(|(n, _)| n), Some(8), "the eight typos still count");
}

#[tokio::test]
async fn one_address_guessing_many_emails_is_locked_out() {
    let app = spawn_app_with(&["--trust-forwarded-for", "true"]).await;
    let partner = app.create_partner("Acme", "ann@acme.test").await;
    for i in 0..20 {
        assert_wrong(
            &try_login(&app, &format!("guess{i}@acme.test"), "password123456", Some("203.0.113.9")).await,
            "guess",
        );
    }
    let answer = try_login(&app, &partner.email, &partner.password, Some("203.0.113.9")).await;
    assert_too_many(&answer, "the guessing address waits, right password or not");
    let client = ThrottleKey::Client("203.0.113.9".into());
    assert!(throttle_row(&app, client).await.unwrap().1.is_some());
    // The user signs in from anywhere else.
    assert_signed_in(&try_login(&app, &partner.email, &partner.password, Some("198.51.100.7")).await, "elsewhere");
}

#[tokio::test]
async fn a_stranger_who_knows_the_email_cannot_lock_its_owner_out() {
    let app = spawn_app_with(&["--trust-forwarded-for", "true"]).await;
    let partner = app.create_partner("Acme", "ann@acme.test").await;
    for attempt in 1..=12 {
        let answer = try_login(&app, &partner.email, "a stranger's guess", Some("203.0.113.66")).await;
        if attempt <= 5 {
            assert_wrong(&answer, "guess");
        } else {
            assert_too_many(&answer, "past the limit");
        }
    }
    // The stranger's address waits, right password or not; the owner, elsewhere, does not.
    assert_too_many(&try_login(&app, &partner.email, &partner.password, Some("203.0.113.66")).await, "stranger");
    assert_signed_in(&try_login(&app, &partner.email, &partner.password, Some("198.51.100.7")).await, "the owner");
}

#[tokio::test]
async fn strangers_at_many_addresses_lock_the_email_against_themselves_not_its_owner() {
    let app = spawn_app_with(&["--trust-forwarded-for", "true"]).await;
    let partner = app.create_partner("Acme", "ann@acme.test").await;
    // 20 addresses × 5 guesses: the email's own limit (100) is reached.
    for address in 1..=20 {
        let from = format!("203.0.113.{address}");
        for _ in 0..5 {
            assert_wrong(&try_login(&app, &partner.email, "a stranger's guess", Some(&from)).await, &from);
        }
    }
    // A new address gets its one check; once it has failed, the email's lock holds it back…
    assert_wrong(&try_login(&app, &partner.email, "one more guess", Some("203.0.113.21")).await, "a new address");
    assert_too_many(&try_login(&app, &partner.email, "and another", Some("203.0.113.21")).await, "a guesser");
    // …but its owner, who never failed from their own address, signs in.
    assert_signed_in(&try_login(&app, &partner.email, &partner.password, Some("198.51.100.7")).await, "the owner");
}

#[tokio::test]
async fn ipv6_clients_are_counted_per_64_and_mapped_ipv4_as_ipv4() {
    let app = spawn_app_with(&["--trust-forwarded-for", "true"]).await;
    let partner = app.create_partner("Acme", "ann@acme.test").await;
    // Five addresses of one /64: one client.
    for host in 1..=5 {
        let from = format!("2001:db8:1:2::{host:x}");
        assert_wrong(&try_login(&app, &partner.email, "guess", Some(&from)).await, &from);
    }
    let answer = try_login(&app, &partner.email, &partner.password, Some("2001:db8:1:2:ffff:ffff:ffff:fffe")).await;
    assert_too_many(&answer, "another address of the same /64");
    // The next /64 is another client.
    assert_signed_in(&try_login(&app, &partner.email, &partner.password, Some("2001:db8:1:3::1")).await, "next /64");

    // An IPv4 address is one client however it is written.
    for _ in 0..5 {
        assert_wrong(&try_login(&app, "bob@acme.test", "guess", Some("203.0.113.9")).await, "IPv4");
    }
    assert_too_many(&try_login(&app, "bob@acme.test", "guess", Some("::ffff:203.0.113.9")).await, "mapped");
}

#[tokio::test]
async fn a_burst_of_sign_ins_checks_at_most_the_limit_of_passwords_in_little_memory() {
    let portal = PortalProcess::start(&[]).await;
    let partner = insert_partner(&portal.db, "Acme", "ann@acme.test").await;
    let checks = |page: &str| sample(page, "portal_password_checks_total").unwrap_or(0.0) as i64;
    let before = checks(&portal.metrics().await);

    let burst = (0..200).map(|i| {
        let (address, email) = (portal.address.clone(), partner.email.clone());
        tokio::spawn(async move { try_login_at(&address, &email, &format!("wrong guess {i}"), None).await })
    });
    let burst: Vec<_> = burst.collect();
    let mut answers = Vec::with_capacity(burst.len());
    for answer in burst {
        answers.push(answer.await.unwrap());
    }

    let checked = checks(&portal.metrics().await) - before;
    let wrong = answers.iter().filter(|a| a.1 == Some(AppError::WrongCredentials)).count() as i64;
    assert!((1..=5).contains(&checked), "{checked} passwords checked");
    assert_eq!(wrong, checked, "every checked guess was told it was wrong");
    for answer in answers.iter().filter(|a| a.1 != Some(AppError::WrongCredentials)) {
        // Refused unchecked: locked, or (on a slow machine) every argon2 slot busy.
        assert_eq!(answer.0, StatusCode::TOO_MANY_REQUESTS, "{answer:?}");
        let words = answer.1.as_ref().unwrap().to_string();
        assert!(words.starts_with("Too many failed sign-ins") || words.contains("busy"), "{words}");
    }
    if let Some(peak) = portal.peak_rss() {
        assert!(peak < 200 * 1024 * 1024, "peak RSS {} MiB", peak / 1024 / 1024);
    }
}

#[tokio::test]
async fn stale_throttle_rows_are_pruned_by_the_retention_pass() {
    let app = spawn_app().await;
    for email in ["old@acme.test", "locked@acme.test", "fresh@acme.test"] {
        assert_wrong(&try_login(&app, email, "guess", None).await, email);
    }
    let key = |email: &str| ThrottleKey::for_sign_in(email, None).remove(0).stored();
    let long_ago = app::store::now_ms() - app::store::throttle::WINDOW_MS - 1;
    sqlx::query("UPDATE login_throttle SET window_start = $1").bind(long_ago).execute(app.db.pool()).await.unwrap();
    sqlx::query("UPDATE login_throttle SET window_start = $1 WHERE key = $2")
        .bind(app::store::now_ms())
        .bind(key("fresh@acme.test"))
        .execute(app.db.pool())
        .await
        .unwrap();
    sqlx::query("UPDATE login_throttle SET locked_until = $1 WHERE key = $2")
        .bind(app::store::now_ms() + 60_000)
        .bind(key("locked@acme.test"))
        .execute(app.db.pool())
        .await
        .unwrap();
    let rows = || async {
        let keys: Vec<String> = sqlx::query("SELECT key FROM login_throttle")
            .fetch_all(app.db.pool())
            .await
            .unwrap()
            .into_iter()
            .map(|row| row.get("key"))
            .collect();
        ["old@acme.test", "locked@acme.test", "fresh@acme.test"].map(|email| keys.contains(&key(email)))
    };
    assert_eq!(rows().await, [true, true, true]);

    let (_stop, mut stopped) = tokio::sync::watch::channel(false);
    assert_eq!(server::retention::pass(&app.db, 30, &mut stopped).await, server::retention::Pass::Done);
    assert_eq!(rows().await, [false, true, true], "only the row whose window is over and lock is not in force goes");
}

// Multi-threaded, so the portal's renders don't share one thread with the loop that asks for
// them; and a deadline far past the lifetime, which a loaded machine still meets (it bounds the
// wait, it doesn't time anything: "not before its time" below is the timing check).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_ends_at_its_lifetime_however_active() {
    let app = spawn_app_with(&["--session-lifetime", "2s"]).await;
    let partner = app.create_partner("Acme", "ann@acme.test").await;
    let ann = app.signed_in_client(&partner).await;
    let signed_in_at = std::time::Instant::now();
    // Used all the time, it still ends. Each page is read to its end before the next is asked
    // for, as a browser would: a page's data streams after its headers, so a loop that dropped
    // the bodies would pile up renders the server is still finishing (and, on a busy machine,
    // queue the next sign-in check behind them).
    crate::receiver::eventually("the session ends", std::time::Duration::from_secs(60), || async {
        let asked = std::time::Instant::now();
        let page = ann.get(app.url("/webhooks")).send().await.unwrap();
        let status = page.status();
        let ended = location(&page).as_deref() == Some("/login");
        page.text().await.unwrap();
        // Shown only if the test fails: what each page load answered, and how long it took.
        eprintln!("{:?} after sign-in: {status} in {:?}", signed_in_at.elapsed(), asked.elapsed());
        ended
    })
    .await;
    assert!(signed_in_at.elapsed() >= std::time::Duration::from_millis(1_900), "not before its time");
    let response = ann.post(app.url("/api/api_keys/list")).header(REFERER, app.url("/")).send().await.unwrap();
    assert!(response.text().await.unwrap().contains("Unauthorized"), "server functions refuse it too");
}

#[tokio::test]
async fn webhook_secrets_are_sealed_in_the_database_and_old_plain_ones_get_sealed() {
    let app = spawn_app().await;
    let partner = app.create_partner("Acme", "ann@acme.test").await;
    let key = app.create_api_key(&partner.id).await;
    let api = crate::helpers::http();
    let created: Value = api
        .post(app.url("/api/v1/webhooks"))
        .bearer_auth(&key)
        .json(&json!({"url": "https://example.com/hook", "authHeader": {"name": "X-Partner-Key", "value": "hunter2-partner-value"}}))
        .json_answer()
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    let first_secret = created["secret"].as_str().unwrap().to_owned();
    let rotated: Value =
        api.post(app.url(&format!("/api/v1/webhooks/{id}/secret/rotate"))).bearer_auth(&key).json_answer().await;
    let second_secret = rotated["secret"].as_str().unwrap().to_owned();
    let plain = [first_secret.as_str(), second_secret.as_str(), "hunter2-partner-value"];

    let stored = |db: app::store::Db, id: String| async move {
        let row = sqlx::query("SELECT signing_secret, previous_secret, auth_header_value FROM webhooks WHERE id = $1")
            .bind(id)
            .fetch_one(db.pool())
            .await
            .unwrap();
        ["signing_secret", "previous_secret", "auth_header_value"].map(|c| row.get::<String, _>(c))
    };
    for value in stored(app.db.clone(), id.clone()).await {
        assert!(value.starts_with("enc:v2:"), "{value}");
        assert!(plain.iter().all(|p| !value.contains(p)), "{value}");
    }
    // Not in the file either (nor in its write-ahead log).
    if let Some(path) = app.database_url.strip_prefix("sqlite://") {
        for file in [path.to_owned(), format!("{path}-wal")] {
            let bytes = std::fs::read(&file).unwrap_or_default();
            let text = String::from_utf8_lossy(&bytes);
            for secret in plain {
                assert!(!text.contains(secret), "{secret} is in {file} in the clear");
            }
        }
    }
    // The portal still reads them: the API shows the secret, the masked header's end.
    let shown: Value = api.get(app.url(&format!("/api/v1/webhooks/{id}/secret"))).bearer_auth(&key).json_answer().await;
    assert_eq!(shown["secret"], second_secret.as_str());

    // A database written before sealing: its plain secrets are sealed at the next start.
    sqlx::query("UPDATE webhooks SET signing_secret = $1, auth_header_value = $2 WHERE id = $3")
        .bind("whsec_plainOldSecret")
        .bind("plain-old-value")
        .bind(&id)
        .execute(app.db.pool())
        .await
        .unwrap();
    app.db.migrate().await.unwrap();
    for value in stored(app.db.clone(), id.clone()).await {
        assert!(value.starts_with("enc:v2:"), "{value}");
    }
    let record = app::store::webhooks::record(&app.db, &partner.id, &app::domain::WebhookId::parse(&id).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.signing_secret.expose(), "whsec_plainOldSecret");
    assert_eq!(record.settings.auth_header.as_ref().unwrap().expose_value(), "plain-old-value");
}
