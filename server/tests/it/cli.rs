//! The `portal` binary's commands, run as an operator runs them.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::helpers::{browser, location, spawn_app};

/// Runs the `portal` command and waits for it. The tests that call it while a portal runs in
/// the test's own process are `multi_thread`: this wait blocks the test's thread, and on a
/// single-threaded runtime it would freeze that portal too, possibly between the `BEGIN
/// IMMEDIATE` and the `COMMIT` of one of its transactions, so the command would find the
/// database locked for as long as it waits.
fn portal(database_url: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_portal"))
        .args(args)
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "warn")
        .env_remove("PORTAL_PUBLIC_URL")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("portal runs");
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn stdout_json(output: &Output) -> Value {
    assert!(output.status.success(), "failed: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("one JSON object")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partner_made_on_the_command_line_can_sign_in() {
    let app = spawn_app().await;
    let output =
        portal(&app.database_url, &["partner", "create", "--name", "Acme", "--email", "Ann@Acme.test", "--json"], None);
    let created = stdout_json(&output);
    assert!(created["id"].as_str().unwrap().starts_with("ptn_"));
    assert_eq!(created["email"], "ann@acme.test");
    let password = created["password"].as_str().unwrap();
    assert_eq!(password.len(), 20);

    let response = app.login(&browser(), "ann@acme.test", password).await;
    assert_eq!(location(&response).as_deref(), Some("/webhooks"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_can_come_from_stdin() {
    let app = spawn_app().await;
    let output = portal(
        &app.database_url,
        &["partner", "create", "--name", "Acme", "--email", "ann@acme.test", "--password-stdin", "--json"],
        Some("my own long passphrase\n"),
    );
    let created = stdout_json(&output);
    assert!(created["password"].is_null(), "a given password is not echoed");
    let response = app.login(&browser(), "ann@acme.test", "my own long passphrase").await;
    assert_eq!(location(&response).as_deref(), Some("/webhooks"));

    let short = portal(
        &app.database_url,
        &["partner", "create", "--name", "Other", "--email", "bob@acme.test", "--password-stdin"],
        Some("short\n"),
    );
    assert!(!short.status.success());
    assert!(stderr(&short).contains("password must be at least 12 characters"), "{}", stderr(&short));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_partner_input_is_one_clear_line_and_changes_nothing() {
    let app = spawn_app().await;
    portal(&app.database_url, &["partner", "create", "--name", "Acme", "--email", "ann@acme.test"], None);
    for (args, expected) in [
        (vec!["--name", "Dup", "--email", "ANN@acme.test"], "--email `ann@acme.test` is already used"),
        (vec!["--name", "Bad", "--email", "not-an-email"], "--email `not-an-email` is not an email address"),
        (vec!["--name", "  ", "--email", "new@acme.test"], "--name is required"),
    ] {
        let output = portal(&app.database_url, &[&["partner", "create"][..], &args].concat(), None);
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        let err = stderr(&output);
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
        assert!(err.starts_with("error: ") && err.contains(expected), "{err}");
    }
    let list = stdout_json(&portal(&app.database_url, &["partner", "list", "--json"], None));
    assert_eq!(list.as_array().unwrap().len(), 1, "only the first partner exists: {list}");
    assert_eq!(list[0]["name"], "Acme");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_from_the_command_line_work_on_the_api() {
    let app = spawn_app().await;
    let partner = app.create_partner("Acme", "ann@acme.test").await;
    let created = stdout_json(&portal(
        &app.database_url,
        &["api-key", "create", "--partner", partner.id.as_str(), "--json"],
        None,
    ));
    let key = created["key"].as_str().unwrap();
    let response = crate::helpers::http().get(app.url("/api/v1/partner")).bearer_auth(key).send().await.unwrap();
    assert_eq!(response.status(), 200);

    let missing =
        portal(&app.database_url, &["api-key", "create", "--partner", "ptn_01HZY3M7A8Q9XKJ2V5T6N4B0CD"], None);
    assert!(stderr(&missing).contains("no such partner"), "{}", stderr(&missing));
    let malformed = portal(&app.database_url, &["api-key", "create", "--partner", "acme"], None);
    assert!(stderr(&malformed).contains("`acme` is not a valid partner id"), "{}", stderr(&malformed));
}

#[test]
fn bad_configuration_stops_the_server_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/p.db", dir.path().display());
    let output = Command::new(env!("CARGO_BIN_EXE_portal"))
        .env("DATABASE_URL", &url)
        .env("PORTAL_ADDR", "not-an-address")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(err.lines().next().unwrap().contains("invalid value 'not-an-address' for '--addr"), "{err}");

    let output = Command::new(env!("CARGO_BIN_EXE_portal"))
        .env("DATABASE_URL", "mysql://localhost/x")
        .arg("migrate")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(stderr(&output).trim(), "error: DATABASE_URL must start with sqlite: or postgres:, not `mysql:`");
}

#[test]
fn migrate_prepares_a_fresh_database() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/new/folder/p.db", dir.path().display());
    let output = portal(&url, &["migrate"], None);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(dir.path().join("new/folder/p.db").is_file());
    let again = portal(&url, &["migrate"], None);
    assert!(again.status.success(), "migrating twice is harmless");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_publishes_from_the_command_line() {
    let app = spawn_app().await;
    let partner = app.create_partner("Acme", "ann@acme.test").await;
    let args = [
        "event",
        "publish",
        "--partner",
        partner.id.as_str(),
        "--type",
        "verification.failed",
        "--status",
        "failed",
        "--data",
        r#"{"verificationId": "ver_1"}"#,
        "--id",
        "evt_cli_1",
        "--json",
    ];
    let published = stdout_json(&portal(&app.database_url, &args, None));
    assert_eq!(published, serde_json::json!({"id": "evt_cli_1", "deliveries": 0}));
    let again = stdout_json(&portal(&app.database_url, &args, None));
    assert_eq!(again, published, "publishing the same id twice creates nothing new");

    let bad = portal(
        &app.database_url,
        &["event", "publish", "--partner", partner.id.as_str(), "--type", "nope", "--data", "[]"],
        None,
    );
    assert_eq!(bad.status.code(), Some(1));
    let err = stderr(&bad);
    assert!(err.contains("--type has `nope`") && err.contains("--data must be a JSON object"), "{err}");

    let unknown = portal(
        &app.database_url,
        &["event", "publish", "--partner", "ptn_01HZY3M7A8Q9XKJ2V5T6N4B0CD", "--type", "review.completed"],
        None,
    );
    assert_eq!(unknown.status.code(), Some(1));
    assert!(stderr(&unknown).contains("no such partner"), "{}", stderr(&unknown));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_prints_a_reset_link() {
    let app = spawn_app().await;
    let partner = app.create_partner("Acme", "ann@acme.test").await;
    let printed = stdout_json(&portal(
        &app.database_url,
        &["user", "reset-password", "--email", "ann@acme.test", "--public-url", &app.url("/"), "--json"],
        None,
    ));
    let link = printed["link"].as_str().unwrap();
    assert!(link.starts_with(&app.url("/set-password?token=pwl_")), "{link}");
    assert!(printed["expiresAt"].is_string());
    // The old password works until the link is used; then only the new one does.
    let signed_in = |r: reqwest::Response| crate::helpers::location(&r).as_deref() == Some("/webhooks");
    assert!(signed_in(app.login(&crate::helpers::browser(), &partner.email, &partner.password).await));
    let token = link.split("token=").nth(1).unwrap();
    crate::accounts::set_password_with(&app, &crate::helpers::browser(), token, "ann's brand new password").await;
    assert!(!signed_in(app.login(&crate::helpers::browser(), &partner.email, &partner.password).await));
    assert!(signed_in(app.login(&crate::helpers::browser(), &partner.email, "ann's brand new password").await));

    let output = portal(&app.database_url, &["user", "reset-password", "--email", "nobody@acme.test"], None);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("--email `nobody@acme.test`: no user signs in with it"), "{}", stderr(&output));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_are_added_to_a_partner_with_a_role() {
    let app = spawn_app().await;
    let created = stdout_json(&portal(
        &app.database_url,
        &["partner", "create", "--name", "Acme", "--email", "ann@acme.test", "--json"],
        None,
    ));
    let partner = created["id"].as_str().unwrap();
    let added = stdout_json(&portal(
        &app.database_url,
        &["user", "add", "--partner", partner, "--email", "vic@acme.test", "--role", "viewer", "--json"],
        None,
    ));
    assert_eq!(added["role"], "viewer");
    assert_eq!(added["partnerId"], partner);
    assert!(added.get("password").is_none(), "nobody but the new user knows their password: {added}");
    let link = added["link"].as_str().unwrap();
    assert!(link.starts_with("http://127.0.0.1:3000/set-password?token=pwl_"), "{link}");
    // The link, on this portal, sets the password; then the new user signs in with it.
    let token = link.split("token=").nth(1).unwrap();
    let client = crate::helpers::browser();
    crate::accounts::set_password_with(&app, &client, token, "vic's own password").await;
    let response = app.login(&crate::helpers::browser(), "vic@acme.test", "vic's own password").await;
    assert_eq!(crate::helpers::location(&response).as_deref(), Some("/webhooks"), "the new user signs in");

    for (args, expected) in [
        (vec!["--partner", partner, "--email", "vic@acme.test"], "--email `vic@acme.test` is already used"),
        (vec!["--partner", partner, "--email", "x@acme.test", "--role", "owner"], "--role must be `admin` or `viewer`"),
        (vec!["--partner", "ptn_01KAQ3M7A8Q9XKJ2V5T6N4B0CD", "--email", "x@acme.test"], "no such partner"),
    ] {
        let output = portal(&app.database_url, &[&["user", "add"][..], &args].concat(), None);
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        assert!(stderr(&output).contains(expected), "{}", stderr(&output));
    }
}
