//! Several `portal` processes on one PostgreSQL: a web-only process takes the API calls, three
//! dispatcher-only processes share the deliveries, and one of them is killed mid-burst. Runs
//! when `TEST_DATABASE_URL` names a PostgreSQL server; says so and passes trivially otherwise.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use serde_json::json;
use sqlx::Row;

use crate::crash::spawn_portal;
use crate::helpers::{OPERATOR_TOKEN, TEST_DATABASE_URL, fresh_database_url, insert_partner, insert_webhooks};
use crate::receiver::{Receiver, Reply};

/// Most deliveries one dispatcher has in flight: all a kill can repeat.
const ONE_PROCESS_IN_FLIGHT: usize = server::dispatcher::MAX_IN_FLIGHT;

fn arrived(receiver: &Receiver) -> Vec<String> {
    receiver
        .received()
        .iter()
        .filter_map(|r| r.headers.get("webhook-id").map(|v| v.to_str().unwrap().to_owned()))
        .collect()
}

async fn wait_for_all(receiver: &Receiver, expected: &HashSet<String>, deadline: Duration) {
    let until = Instant::now() + deadline;
    loop {
        let got: HashSet<String> = arrived(receiver).into_iter().collect();
        let missing: Vec<&String> = expected.difference(&got).collect();
        if missing.is_empty() {
            return;
        }
        assert!(
            Instant::now() < until,
            "{} events never arrived: {:?}",
            missing.len(),
            &missing[..missing.len().min(10)]
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn three_dispatchers_share_a_burst_and_survive_a_kill() {
    if !std::env::var(TEST_DATABASE_URL).is_ok_and(|u| u.starts_with("postgres")) {
        eprintln!("skipped: the multi-process test needs {TEST_DATABASE_URL}=postgres://…");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let database_url = fresh_database_url(dir.path()).await;
    let receiver = Receiver::start(Reply::Hang(Duration::from_millis(20))).await;
    let common = ["--allow-private-targets", "true", "--delivery-timeout", "1s"];

    let web_args: Vec<&str> = common
        .iter()
        .copied()
        .chain(["--no-dispatcher", "--addr", "127.0.0.1:0", "--operator-token", OPERATOR_TOKEN])
        .collect();
    let (mut web, address) = spawn_portal(&database_url, &web_args, "listening on ");
    let dispatcher_args: Vec<&str> = common.iter().copied().chain(["--no-web"]).collect();
    let mut dispatchers: Vec<_> =
        (0..3).map(|_| spawn_portal(&database_url, &dispatcher_args, "listening for new deliveries").0).collect();

    let db = app::store::Db::connect(&database_url).await.unwrap();
    let partner = insert_partner(&db, "Acme", "ann@acme.test").await.id;
    // Eight webhooks, so the per-webhook bound (4 in flight) does not make the burst serial.
    insert_webhooks(&db, &partner, &receiver.url, 8).await;
    let client = crate::helpers::http();
    let publish = |i: usize| {
        let client = client.clone();
        let (address, partner) = (address.clone(), partner.to_string());
        async move {
            let response = client
                .post(format!("{address}/api/v1/events"))
                .bearer_auth(OPERATOR_TOKEN)
                .json(&json!({"partnerId": partner, "type": "verification.completed", "status": "success", "data": {"n": i}, "id": format!("evt_scale_{i}")}))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 202);
        }
    };

    // All three alive: every event arrives at each of the 8 webhooks exactly once.
    for i in 0..40 {
        publish(i).await;
    }
    let first: HashSet<String> = (0..40).map(|i| format!("evt_scale_{i}")).collect();
    wait_for_all(&receiver, &first, Duration::from_secs(30)).await;
    let until = Instant::now() + Duration::from_secs(30);
    while receiver.received().len() < 40 * 8 {
        assert!(Instant::now() < until, "only {} of 320 requests arrived", receiver.received().len());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(receiver.received().len(), 40 * 8, "no delivery was sent twice while three processes shared them");

    // One dispatcher dies mid-burst: what it held comes back after its lease, and only that.
    for i in 40..160 {
        publish(i).await;
        if i == 80 {
            dispatchers[0].kill().unwrap();
            dispatchers[0].wait().unwrap();
        }
    }
    let all: HashSet<String> = (0..160).map(|i| format!("evt_scale_{i}")).collect();
    wait_for_all(&receiver, &all, Duration::from_secs(60)).await;
    let until = Instant::now() + Duration::from_secs(60);
    let complete = loop {
        let rows = sqlx::query("SELECT COUNT(*) AS n FROM deliveries WHERE state <> 'succeeded'")
            .fetch_one(db.pool())
            .await
            .unwrap();
        let waiting: i64 = rows.get("n");
        if waiting == 0 {
            break true;
        }
        assert!(Instant::now() < until, "{waiting} deliveries never finished");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(complete);
    let received = receiver.received().len();
    assert!(received >= 160 * 8, "{received}");
    let repeats = received - 160 * 8;
    eprintln!("after the kill: {repeats} repeated requests (at most {ONE_PROCESS_IN_FLIGHT} allowed)");
    assert!(repeats <= ONE_PROCESS_IN_FLIGHT, "{repeats} repeats: more than the killed process held");

    // The log is complete: one success per delivery, and no attempt without a request.
    let rows = sqlx::query("SELECT delivery_id, outcome FROM attempts").fetch_all(db.pool()).await.unwrap();
    let mut successes: HashMap<String, usize> = HashMap::new();
    for row in &rows {
        if row.get::<String, _>("outcome") == "success" {
            *successes.entry(row.get("delivery_id")).or_default() += 1;
        }
    }
    assert_eq!(successes.len(), 160 * 8, "every delivery has a successful attempt in the log");
    assert!(rows.len() <= received, "an attempt was logged that no receiver saw");

    for child in &mut dispatchers[1..] {
        child.kill().unwrap();
        child.wait().unwrap();
    }
    web.kill().unwrap();
    web.wait().unwrap();
}

/// Benchmark, not a test (ignored by default): deliveries per second on PostgreSQL with 1, 2
/// and 3 dispatcher processes draining the same backlog into a receiver that answers at once.
/// `TEST_DATABASE_URL=postgres://root@127.0.0.1:5432/postgres cargo test --release -p server
/// --test it bench_dispatchers -- --ignored --nocapture`
#[tokio::test]
#[ignore = "a benchmark: run with --ignored --nocapture, in release, with TEST_DATABASE_URL"]
async fn bench_dispatchers() {
    const WEBHOOKS: usize = 20;
    const EVENTS: usize = 500;
    assert!(std::env::var(TEST_DATABASE_URL).is_ok_and(|u| u.starts_with("postgres")), "needs {TEST_DATABASE_URL}");
    println!("| dispatcher processes | deliveries | seconds | deliveries per second |");
    println!("|---|---|---|---|");
    for processes in 1..=3 {
        let dir = tempfile::tempdir().unwrap();
        let database_url = fresh_database_url(dir.path()).await;
        let receiver = Receiver::start(Reply::Status(200, "ok")).await;
        let db = app::store::Db::connect(&database_url).await.unwrap();
        db.migrate().await.unwrap();
        let partner = insert_partner(&db, "Acme", "ann@acme.test").await.id;
        insert_webhooks(&db, &partner, &receiver.url, WEBHOOKS).await;
        for i in 0..EVENTS {
            let id = format!("evt_{i}");
            let event = app::domain::NewEvent::parse(
                partner.as_str(),
                "verification.completed",
                "success",
                json!({"n": i}),
                Some(&id),
            )
            .unwrap();
            app::store::deliveries::publish(&db, &event).await.unwrap();
        }
        let total = WEBHOOKS * EVENTS;
        let started = Instant::now();
        let mut children: Vec<_> = (0..processes)
            .map(|_| {
                spawn_portal(&database_url, &["--no-web", "--allow-private-targets", "true"], "dispatcher started").0
            })
            .collect();
        let until = Instant::now() + Duration::from_secs(300);
        while receiver.received().len() < total {
            assert!(Instant::now() < until, "only {} of {total} arrived", receiver.received().len());
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let seconds = started.elapsed().as_secs_f64();
        println!("| {processes} | {total} | {seconds:.2} | {:.0} |", total as f64 / seconds);
        for child in &mut children {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }
}
