//! The hostile-tenant suite: what one partner does can't take the portal away from the others.
//! Templates that build huge values or loop for long fail on their own, and a partner whose
//! receivers hang can't hold the dispatcher's places against another partner's deliveries.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{OPERATOR_TOKEN, http};
use crate::helpers::{Setup, setup};
use crate::receiver::{Receiver, Reply, eventually};

/// Builds a 100 MB string and doubles it: far past the sandbox's 64 MiB, so the render can only
/// fail (in the portal's own process it would take the memory of every partner).
const MEMORY_BOMB: &str =
    r#"{% set s = "x" * 100000000 %}{% set s = s ~ s %}{% set s = s ~ s %}{"length": {{ s|length }}}"#;

/// Constant expressions that fold to 2 GB when the template is compiled: saving must not
/// compile it in the portal's process.
fn folded_bomb() -> String {
    let terms = vec![r#"("x" * 100000000)"#; 20].join(" ~ ");
    format!(r#"{{"a": "{{{{ {terms} }}}}"}}"#)
}

/// Peak resident memory of this test process (MB): the portal under test runs in it.
fn peak_rss_mb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .unwrap()
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap();
    kb / 1024
}

/// Fine for the sample event; for an event whose data asks, builds 20 MB strings over and over,
/// seconds of work that the compiler can't fold (the sizes come from the event).
const SLOW_FOR_SOME_EVENTS: &str = r#"{% if data.rounds is defined %}{% for i in range(data.rounds) %}{% set s = "ab" * data.size %}{% endfor %}{% endif %}{"id": {{ id|tojson }}}"#;

/// Fine for the sample event; for an event whose data asks, the memory bomb.
const BIG_FOR_SOME_EVENTS: &str = r#"{% if data.bomb is defined %}{% set s = "x" * data.bomb %}{% set s = s ~ s %}{% set s = s ~ s %}{% endif %}{"id": {{ id|tojson }}}"#;

/// `GET /healthz` answers while `work` runs: polled throughout, each answer within half a second.
async fn healthz_throughout<T>(s: &Setup, work: impl std::future::Future<Output = T>) -> T {
    let client = reqwest::Client::builder().timeout(Duration::from_millis(500)).build().unwrap();
    let url = s.app.url("/healthz");
    let probe = async {
        loop {
            let answer = client.get(&url).send().await;
            assert!(
                answer.as_ref().is_ok_and(|r| r.status() == StatusCode::OK),
                "/healthz did not answer within 0.5 s: {answer:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::select! {
        out = work => out,
        () = probe => unreachable!(),
    }
}

async fn create(s: &Setup, template: &str, url: &str) -> (StatusCode, Value) {
    let response = http()
        .post(s.app.url("/api/v1/webhooks"))
        .bearer_auth(&s.key)
        .json(&json!({"url": url, "active": true, "payloadTemplate": template}))
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

// Several threads, so the /healthz probe measures the portal, not the test's own thread.
#[tokio::test(flavor = "multi_thread")]
async fn a_template_that_builds_a_huge_string_is_refused_and_the_portal_keeps_serving() {
    let s = setup(&[]).await;
    let (status, body) = healthz_throughout(&s, create(&s, MEMORY_BOMB, "https://example.com/hook")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let text = body.to_string();
    assert!(text.contains("payloadTemplate") && text.contains("more than 64 MiB"), "{text}");
    // The same render behind the page's preview, and nothing was saved.
    let partner = s.app.create_partner("Preview Partner", "pat@preview.test").await;
    let client = s.app.signed_in_client(&partner).await;
    let (status, answer) = s.app.server_fn(&client, "webhooks/preview", &[("template", MEMORY_BOMB)]).await;
    assert!(!status.is_success() && answer.contains("more than 64 MiB"), "{status} {answer}");
    // Compiling folds constants: that too happens in the sandbox, not here.
    let (status, body) = healthz_throughout(&s, create(&s, &folded_bomb(), "https://example.com/hook")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.to_string().contains("more than 64 MiB"), "{body}");
    assert!(peak_rss_mb() < 1024, "the portal's process reached {} MB", peak_rss_mb());
    let list: Value =
        http().get(s.app.url("/api/v1/webhooks")).bearer_auth(&s.key).send().await.unwrap().json().await.unwrap();
    assert_eq!(list["data"], json!([]), "nothing was saved");
}

#[tokio::test(flavor = "multi_thread")]
async fn renders_that_take_too_long_or_too_much_fail_their_attempt_with_the_reason() {
    let s = setup(&[]).await;
    let receiver = Receiver::start(Reply::Status(200, "ok")).await;
    let (status, slow) = create(&s, SLOW_FOR_SOME_EVENTS, &receiver.url).await;
    assert_eq!(status, StatusCode::CREATED, "{slow}");
    let (status, big) = create(&s, BIG_FOR_SOME_EVENTS, &receiver.url).await;
    assert_eq!(status, StatusCode::CREATED, "{big}");
    // Two bombs at once, each for both webhooks: two attempts that take seconds of work
    // and two that take gigabytes, unless the sandbox stops them.
    healthz_throughout(&s, async {
        for (id, data) in [("evt_slow", json!({"rounds": 5000, "size": 10_000_000})), ("evt_big", json!({"bomb": 100_000_000}))] {
            let (status, body) = s
                .publish(json!({"partnerId": s.partner, "type": "verification.completed", "status": "success", "id": id, "data": data}))
                .await;
            assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        }
        for (webhook, why) in [(&slow["id"], "took longer than 100 ms"), (&big["id"], "more than 64 MiB")] {
            let path = format!("/api/v1/webhooks/{}/attempts", webhook.as_str().unwrap());
            eventually(&format!("an attempt of {webhook} failed with {why:?}"), Duration::from_secs(20), || async {
                let log: Value = http().get(s.app.url(&path)).bearer_auth(&s.key).send().await.unwrap().json().await.unwrap();
                log["data"].as_array().unwrap().iter().any(|a| a.to_string().contains(why))
            })
            .await;
        }
    })
    .await;
    // The other event went out to each: a bomb fails its own attempt, nothing more.
    let got = receiver.wait_for(2, Duration::from_secs(20)).await;
    let ids: Vec<String> =
        got.iter().map(|r| serde_json::from_str::<Value>(&r.body).unwrap()["id"].to_string()).collect();
    assert!(ids.contains(&"\"evt_slow\"".to_owned()) && ids.contains(&"\"evt_big\"".to_owned()), "{ids:?}");
}

#[tokio::test]
async fn a_partner_whose_receivers_hang_does_not_delay_another_partners_deliveries() {
    // Receivers get a minute, so a place given to a hanging one stays taken for the whole test.
    let a = setup(&["--delivery-timeout", "60s"]).await;
    let hanging = Receiver::start(Reply::Hang(Duration::from_secs(120))).await;
    const HOOKS: usize = 64;
    for i in 0..HOOKS {
        let (status, body) = create(&a, "", &format!("{}/{i}", hanging.url)).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    for i in 0..40 {
        a.publish_event(&format!("evt_a_{i}")).await;
    }
    // Every place partner A may hold is taken before partner B publishes anything.
    let a_limit = server::dispatcher::MAX_IN_FLIGHT - server::dispatcher::RESERVED_PLACES;
    hanging.wait_for(a_limit, Duration::from_secs(30)).await;

    let b_partner = a.app.create_partner("Beta", "bea@beta.test").await;
    let b_key = a.app.create_api_key(&b_partner.id).await;
    let fast = Receiver::start(Reply::Status(200, "ok")).await;
    let response = http()
        .post(a.app.url("/api/v1/webhooks"))
        .bearer_auth(&b_key)
        .json(&json!({"url": fast.url, "active": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    for i in 0..20 {
        let response = http()
            .post(a.app.url("/api/v1/events"))
            .bearer_auth(OPERATOR_TOKEN)
            .json(&json!({"partnerId": b_partner.id.to_string(), "type": "verification.completed", "status": "success",
                "id": format!("evt_b_{i}"), "data": {}}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::ACCEPTED);
    }
    // Without fair places these wait for A's receivers: a minute.
    fast.wait_for(20, Duration::from_secs(15)).await;
    assert_eq!(hanging.received().len(), a_limit, "A holds no more than its share while B has work");
}

#[tokio::test]
async fn a_dispatcher_whose_due_deliveries_all_wait_for_busy_webhooks_does_not_keep_looking() {
    // A process of its own: the claim counter is the process's.
    let portal =
        crate::helpers::PortalProcess::start(&["--allow-private-targets", "true", "--delivery-timeout", "60s"]).await;
    let hanging = Receiver::start(Reply::Hang(Duration::from_secs(120))).await;
    let partner = crate::helpers::insert_partner(&portal.db, "Acme", "ann@acme.test").await;
    crate::helpers::insert_webhooks(&portal.db, &partner.id, &hanging.url, 1).await;
    for i in 0..12 {
        let response = http()
            .post(format!("{}/api/v1/events", portal.address))
            .bearer_auth(OPERATOR_TOKEN)
            .json(&json!({"partnerId": partner.id.to_string(), "type": "verification.completed",
                "status": "success", "id": format!("evt_{i}"), "data": {}}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::ACCEPTED);
    }
    // The webhook holds its places; the other 8 deliveries are due and can't be taken until one
    // of those requests ends, a minute from now.
    hanging.wait_for(server::dispatcher::START_PLACES, Duration::from_secs(30)).await;
    let empty = |page: &str| crate::helpers::sample(page, r#"portal_claims_total{found="none"}"#).unwrap_or(0.0);
    let before = empty(&portal.metrics().await);
    // An observation window, not a wait for something: a dispatcher that polls on a timer
    // claims nothing about 20 times a second here; one that waits for a place to come free
    // looks at most once a second (its idle poll).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let looked = empty(&portal.metrics().await) - before;
    assert!(looked <= 4.0, "{looked} claims found nothing in 2 s");
    assert_eq!(hanging.received().len(), server::dispatcher::START_PLACES);
}

#[tokio::test]
async fn a_request_stuck_behind_a_lock_is_answered_at_the_deadline_and_changes_nothing() {
    let s = setup(&["--request-timeout", "1s"]).await;
    // Another connection holds the lock creating a webhook needs: the writer on SQLite, the
    // partner's row (the webhook quota's lock) on PostgreSQL.
    let mut lock = s.app.db.begin_write().await.unwrap();
    if s.app.db.backend() == app::store::Backend::Postgres {
        sqlx::query("SELECT id FROM partners WHERE id = $1 FOR UPDATE")
            .bind(&s.partner)
            .execute(&mut *lock)
            .await
            .unwrap();
    }
    // Answered at its deadline, not when the lock goes (never, on PostgreSQL: the test client
    // would give up after a minute; SQLite stops waiting after 5 s with a 500 of its own).
    let (status, body) = post_json(&s, "/api/v1/webhooks", json!({"url": "https://example.com/hook"})).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], "timed_out");
    assert!(body["error"]["message"].as_str().unwrap().contains("PORTAL_REQUEST_TIMEOUT"), "{body}");
    lock.rollback().await.unwrap();

    let list: Value =
        http().get(s.app.url("/api/v1/webhooks")).bearer_auth(&s.key).send().await.unwrap().json().await.unwrap();
    assert_eq!(list["data"].as_array().unwrap().len(), 0, "the stopped request made nothing: {list}");
    let (status, body) = post_json(&s, "/api/v1/webhooks", json!({"url": "https://example.com/hook"})).await;
    assert_eq!(status, StatusCode::CREATED, "once the lock is gone the same request works: {body}");
}

/// `POST` with the partner's key; the status and the JSON answer.
async fn post_json(s: &Setup, path: &str, body: Value) -> (StatusCode, Value) {
    let response = http().post(s.app.url(path)).bearer_auth(&s.key).json(&body).send().await.unwrap();
    (response.status(), response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_partner_can_not_pass_its_limit_of_webhooks_even_in_parallel() {
    let s = setup(&["--max-webhooks", "5"]).await;
    let mut creates = tokio::task::JoinSet::new();
    for i in 0..20 {
        let (url, key) = (s.app.url("/api/v1/webhooks"), s.key.clone());
        creates.spawn(async move {
            let body = json!({"url": format!("https://example.com/{i}")});
            let response = http().post(url).bearer_auth(key).json(&body).send().await.unwrap();
            (response.status(), response.json::<Value>().await.unwrap())
        });
    }
    let answers = creates.join_all().await;
    let created = answers.iter().filter(|(status, _)| *status == StatusCode::CREATED).count();
    assert_eq!(created, 5, "{answers:?}");
    let (status, refused) = answers.iter().find(|(status, _)| *status != StatusCode::CREATED).unwrap();
    assert_eq!(*status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(refused["error"]["code"], "limit_reached");
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(message.contains("limit of 5 webhooks") && message.contains("PORTAL_MAX_WEBHOOKS"), "{message}");
    // Another partner has its own five.
    let other = s.app.create_partner("Other", "olga@other.test").await;
    let other_key = s.app.create_api_key(&other.id).await;
    let response = http()
        .post(s.app.url("/api/v1/webhooks"))
        .bearer_auth(&other_key)
        .json(&json!({"url": "https://example.com/other"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn test_sends_resends_and_replay_plans_are_limited_per_partner_and_minute() {
    let s = setup(&["--tests-per-minute", "2", "--resends-per-minute", "1", "--replay-plans-per-minute", "2"]).await;
    // The counts start again with each minute of the clock: start early in one.
    eventually("the minute has 20 s to go", Duration::from_secs(25), || async {
        chrono::Utc::now().timestamp_millis().rem_euclid(60_000) < 40_000
    })
    .await;
    let receiver = Receiver::start(Reply::Status(200, "ok")).await;
    let webhook = s.create_webhook(json!({"url": receiver.url})).await;
    let id = webhook["id"].as_str().unwrap();
    for _ in 0..2 {
        let (status, body) = post_json(&s, &format!("/api/v1/webhooks/{id}/test"), Value::Null).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, refused) = post_json(&s, &format!("/api/v1/webhooks/{id}/test"), Value::Null).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{refused}");
    assert_eq!(refused["error"]["code"], "rate_limited");
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(message.contains("2 a minute") && message.contains("PORTAL_TESTS_PER_MINUTE"), "{message}");
    assert_eq!(receiver.received().len(), 2, "the refused test sent nothing");

    s.publish_event("evt_quota").await;
    receiver.wait_for(3, Duration::from_secs(10)).await;
    let delivery = std::sync::Mutex::new(None);
    eventually("the event's attempt is logged", Duration::from_secs(10), || async {
        let log = s.log(id).await;
        let found = log["data"].as_array().unwrap().iter().find_map(|a| a["deliveryId"].as_str().map(str::to_owned));
        *delivery.lock().unwrap() = found;
        delivery.lock().unwrap().is_some()
    })
    .await;
    let delivery = delivery.into_inner().unwrap().unwrap();
    let (status, _) = post_json(&s, &format!("/api/v1/deliveries/{delivery}/resend"), Value::Null).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, refused) = post_json(&s, &format!("/api/v1/deliveries/{delivery}/resend"), Value::Null).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{refused}");
    assert!(refused["error"]["message"].as_str().unwrap().contains("Too many resends"), "{refused}");

    // A replay's plan counts the partner's events; a viewer can ask for it, so it is metered too.
    let ann = crate::helpers::TestPartner {
        id: app::domain::PartnerId::parse(&s.partner).unwrap(),
        email: "ann@acme.test".into(),
        password: "correct horse battery staple".into(),
    };
    let client = s.app.signed_in_client(&ann).await;
    for _ in 0..2 {
        let (status, plan) = s.app.server_fn(&client, "logs/replay_plan", &[("webhook", id)]).await;
        assert_eq!(status, StatusCode::OK, "{plan}");
    }
    let (status, refused) = s.app.server_fn(&client, "logs/replay_plan", &[("webhook", id)]).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{refused}");
    assert!(refused.contains("2 a minute") && refused.contains("PORTAL_REPLAY_PLANS_PER_MINUTE"), "{refused}");
}

#[tokio::test]
async fn users_and_api_keys_stop_at_their_limits_in_the_portal() {
    let s = setup(&["--max-users", "1", "--max-api-keys", "2"]).await;
    let partner = s.app.create_partner("Team", "tina@team.test").await;
    let client = s.app.signed_in_client(&partner).await;
    let (status, answer) =
        s.app.server_fn(&client, "team/add", &[("email", "new@team.test"), ("role", "viewer")]).await;
    // The portal's own calls answer a limit as the REST API does: 422, not a server error.
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert!(answer.contains("limit of 1 users") && answer.contains("PORTAL_MAX_USERS"), "{answer}");
    for _ in 0..2 {
        let (status, answer) = s.app.server_fn(&client, "api_keys/create", &[("name", "ci")]).await;
        assert!(status.is_success(), "{status} {answer}");
    }
    let (status, answer) = s.app.server_fn(&client, "api_keys/create", &[("name", "one more")]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert!(answer.contains("limit of 2 API keys"), "{status} {answer}");
}

#[tokio::test]
async fn a_replay_larger_than_a_chunk_plans_and_queues_every_missed_event() {
    let s = setup(&[]).await;
    let receiver = Receiver::start(Reply::Status(200, "ok")).await;
    let webhook = s.create_webhook(json!({"url": receiver.url, "active": false})).await;
    let id = webhook["id"].as_str().unwrap().to_owned();
    let partner = app::domain::PartnerId::parse(&s.partner).unwrap();
    const MISSED: usize = 1_234;
    for i in 0..MISSED {
        let event = app::domain::NewEvent::parse(
            &s.partner,
            None,
            "verification.completed",
            "success",
            json!({}),
            Some(&format!("evt_m_{i:05}")),
        )
        .unwrap();
        app::store::events::publish(&s.app.db, &event).await.unwrap();
    }
    s.post(&format!("/api/v1/webhooks/{id}/activate")).await;
    let webhook_id = app::domain::WebhookId::parse(&id).unwrap();
    let planned = app::store::queue::count_missed(&s.app.db, &partner, &webhook_id, 0).await.unwrap();
    assert_eq!(planned, Some(MISSED as i64), "the plan counts every missed event");
    // Three replays at once (a double click, two tabs): between them each event is queued once.
    let path = format!("/api/v1/webhooks/{id}/replay");
    let replay = || post_json(&s, &path, json!({"since": "2000-01-01T00:00:00Z"}));
    let (a, b, c) = tokio::join!(replay(), replay(), replay());
    let answers = [a, b, c];
    let mut queued = 0;
    for (status, replay) in &answers {
        assert_eq!(*status, StatusCode::ACCEPTED, "{replay}");
        queued += replay["total"].as_u64().unwrap();
    }
    assert_eq!(queued, MISSED as u64, "the replays queued each missed event once between them: {answers:?}");
    let got = receiver.wait_for(MISSED, Duration::from_secs(60)).await;
    let ids: std::collections::HashSet<String> = got
        .iter()
        .map(|r| serde_json::from_str::<Value>(&r.body).unwrap()["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), MISSED, "each missed event arrived");
    let deliveries: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM deliveries WHERE webhook_id = $1")
        .bind(&id)
        .fetch_one(s.app.db.pool())
        .await
        .unwrap();
    assert_eq!(deliveries, MISSED as i64, "no event has two deliveries");
}

#[tokio::test]
async fn a_sealed_auth_header_moved_to_another_partners_webhook_does_not_open_there() {
    let s = setup(&[]).await;
    let theirs = s
        .create_webhook(
            json!({"url": "https://example.com/a", "authHeader": {"name": "X-Key", "value": "partner-a-secret-9876"}}),
        )
        .await;
    let other = s.app.create_partner("Mallory", "mal@mallory.test").await;
    let other_key = s.app.create_api_key(&other.id).await;
    let response = http()
        .post(s.app.url("/api/v1/webhooks"))
        .bearer_auth(&other_key)
        .json(&json!({"url": "https://example.com/m", "authHeader": {"name": "X-Key", "value": "mallory-own-value"}}))
        .send()
        .await
        .unwrap();
    let mine: Value = response.json().await.unwrap();
    let mine = mine["id"].as_str().unwrap().to_owned();
    // Someone who can write to the database copies partner A's sealed value into their row.
    sqlx::query(
        "UPDATE webhooks SET auth_header_value = (SELECT auth_header_value FROM webhooks WHERE id = $1) WHERE id = $2",
    )
    .bind(theirs["id"].as_str().unwrap())
    .bind(&mine)
    .execute(s.app.db.pool())
    .await
    .unwrap();
    let webhook = app::domain::WebhookId::parse(&mine).unwrap();
    let opened = app::store::webhooks::record(&s.app.db, &other.id, &webhook).await;
    let error = format!("{:#}", opened.unwrap_err());
    assert!(error.contains("another place"), "{error}");
    let answer =
        http().get(s.app.url(&format!("/api/v1/webhooks/{mine}"))).bearer_auth(&other_key).send().await.unwrap();
    assert!(!answer.text().await.unwrap().contains("9876"), "nothing of A's value shows");
}

/// Slow on the sample event itself: string products sized by its data, so nothing folds.
const SLOW_ON_THE_SAMPLE: &str =
    r#"{% for i in range(5000) %}{% set s = "ab" * (data.sessionId * 10000) %}{% endfor %}{"id": {{ id|tojson }}}"#;

/// Process ids of `program`'s worker processes still running (zombies, killed and not yet
/// reaped, left out).
fn worker_pids(program: &std::path::Path) -> Vec<String> {
    let program = program.to_string_lossy().into_owned();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|entry| {
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            let state = stat.rsplit(')').next().and_then(|rest| rest.split_whitespace().next()).unwrap_or("Z");
            String::from_utf8_lossy(&cmdline).starts_with(&program) && state != "Z"
        })
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect()
}

fn running(program: &std::path::Path) -> usize {
    worker_pids(program).len()
}

/// Sends `signal` (`STOP`, `CONT`) to the process `pid`.
fn signal(pid: &str, signal: &str) {
    let status = std::process::Command::new("kill").arg(format!("-{signal}")).arg(pid).status().unwrap();
    assert!(status.success(), "kill -{signal} {pid}");
}

/// A sandbox whose workers have a name of their own, to find them among the processes.
fn sandbox_of_its_own(dir: &std::path::Path) -> (app::sandbox::TemplateSandbox, std::path::PathBuf) {
    let program = dir.join("portal-of-this-test");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_portal"), &program).unwrap();
    (app::sandbox::TemplateSandbox::new(program.clone()), program)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_render_nobody_waits_for_any_more_stops_its_worker() {
    use app::domain::{EventBody, PartnerId, PayloadTemplate};
    let dir = tempfile::tempdir().unwrap();
    let (sandbox, program) = sandbox_of_its_own(dir.path());
    let partner = PartnerId::generate();
    let quick = PayloadTemplate::parse(r#"{"id": {{ id|tojson }}}"#).unwrap();
    sandbox.render(&partner, &quick, &EventBody::sample()).await.unwrap();
    assert_eq!(running(&program), 1, "a worker waits for the next render");
    // The request that asked goes away mid-render (a client that disconnects drops its future).
    let slow = PayloadTemplate::parse(SLOW_ON_THE_SAMPLE).unwrap();
    let sample = EventBody::sample();
    let render = sandbox.render(&partner, &slow, &sample);
    assert!(tokio::time::timeout(Duration::from_millis(30), render).await.is_err(), "still rendering at 30 ms");
    eventually("the worker of the dropped render is killed", Duration::from_secs(3), || async {
        running(&program) == 0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_render_counts_processor_time_not_a_wait_for_a_core() {
    use app::domain::{EventBody, PartnerId, PayloadTemplate};
    use app::sandbox::RenderError;
    let dir = tempfile::tempdir().unwrap();
    let (sandbox, program) = sandbox_of_its_own(dir.path());
    let partner = PartnerId::generate();
    let quick = PayloadTemplate::parse(r#"{"id": {{ id|tojson }}}"#).unwrap();
    let sample = EventBody::sample();
    sandbox.render(&partner, &quick, &sample).await.unwrap();
    let [worker] = &worker_pids(&program)[..] else { panic!("one worker waits") };
    // The worker gets no processor for 300 ms (a busy machine): a quick template still renders.
    signal(worker, "STOP");
    let resume = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        signal(worker, "CONT");
    };
    let (rendered, ()) = tokio::join!(sandbox.render(&partner, &quick, &sample), resume);
    assert_eq!(rendered.map(|body| body.contains("evt_")), Ok(true), "a wait for a core is no fault of the template");
    // A worker that never answers is killed after a second; the render is "unavailable", not the
    // template's failure.
    signal(worker, "STOP");
    let rendered = sandbox.render(&partner, &quick, &sample).await;
    assert!(matches!(rendered, Err(RenderError::Unavailable(_))), "{rendered:?}");
    eventually("the stuck worker is killed", Duration::from_secs(3), || async { running(&program) == 0 }).await;
}

#[tokio::test]
async fn a_delivery_waits_without_counting_an_attempt_while_the_template_sandbox_is_unavailable() {
    use app::domain::{PartnerId, UrlPolicy, WebhookInput};
    // No worker can start: every render is the sandbox's failure, not the template's.
    let s = setup(&["--template-worker", "/nonexistent/portal"]).await;
    let receiver = Receiver::start(Reply::Status(200, "ok")).await;
    let input = WebhookInput {
        url: receiver.url.clone(),
        active: true,
        payload_template: r#"{"id": {{ id|tojson }}}"#.into(),
        ..Default::default()
    };
    let settings = input.parse(UrlPolicy { allow_private: true }, None).unwrap();
    let partner = PartnerId::parse(&s.partner).unwrap();
    let (webhook, _) = app::store::webhooks::create(&s.app.db, &partner, &settings, u32::MAX).await.unwrap().unwrap();
    let published: i64 = app::store::now_ms();
    s.publish_event("evt_waits").await;
    let pending = || async {
        sqlx::query_as::<_, (String, i64, i64)>("SELECT state, attempts, next_attempt_at FROM deliveries")
            .fetch_one(s.app.db.pool())
            .await
            .unwrap()
    };
    // Tried and put back more than once: a second later each time.
    eventually("the delivery is put back twice", Duration::from_secs(10), || async {
        pending().await.2 >= published + 2_000
    })
    .await;
    let (state, attempts, _) = pending().await;
    assert_eq!((state.as_str(), attempts), ("pending", 0), "no attempt counted against the partner");
    assert!(s.attempts(webhook.id.as_str()).await.is_empty(), "nothing failed in the log");
    assert_eq!(s.webhook(webhook.id.as_str()).await["active"], true);
    assert!(receiver.received().is_empty());
}

#[tokio::test]
async fn signature_checks_are_limited_per_partner_and_minute() {
    let s = setup(&["--signature-checks-per-minute", "2"]).await;
    // The counts start again with each minute of the clock: start early in one.
    eventually("the minute has 20 s to go", Duration::from_secs(25), || async {
        chrono::Utc::now().timestamp_millis().rem_euclid(60_000) < 40_000
    })
    .await;
    let webhook = s.create_webhook(json!({"url": "http://127.0.0.1:9/hook"})).await;
    let check = json!({"webhookId": webhook["id"], "headers": {}, "body": "{}"});
    for _ in 0..2 {
        let (status, body) = post_json(&s, "/api/v1/signatures/check", check.clone()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, refused) = post_json(&s, "/api/v1/signatures/check", check).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{refused}");
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(message.contains("2 a minute") && message.contains("PORTAL_SIGNATURE_CHECKS_PER_MINUTE"), "{message}");

    // Another partner checks as usual.
    let other = s.app.create_partner("Other", "olga@other.test").await;
    let key = s.app.create_api_key(&other.id).await;
    let response = http()
        .post(s.app.url("/api/v1/webhooks"))
        .bearer_auth(&key)
        .json(&json!({"url": "http://127.0.0.1:9/other"}))
        .send()
        .await
        .unwrap();
    let theirs: Value = response.json().await.unwrap();
    let response = http()
        .post(s.app.url("/api/v1/signatures/check"))
        .bearer_auth(&key)
        .json(&json!({"webhookId": theirs["id"], "headers": {}, "body": "{}"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}
