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

/// Most deliveries one dispatcher holds leased and not yet written: its requests under way and
/// the answered attempts waiting for the recorder. All a kill can repeat.
const ONE_PROCESS_IN_FLIGHT: usize = server::dispatcher::MAX_IN_FLIGHT + server::dispatcher::MAX_UNWRITTEN;

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

/// Publishes `n` events of `partner` straight in the store, ids `{prefix}{i}`.
async fn publish_in_store(db: &app::store::Db, partner: &app::domain::PartnerId, prefix: &str, n: usize) {
    for i in 0..n {
        let id = format!("{prefix}{i}");
        let event = app::domain::NewEvent::parse(
            partner.as_str(),
            None,
            "verification.completed",
            "success",
            json!({}),
            Some(&id),
        )
        .unwrap();
        app::store::events::publish(db, &event).await.unwrap();
    }
}

#[tokio::test]
async fn two_dispatchers_each_keep_places_for_another_partner_while_one_partners_receivers_hang() {
    if !std::env::var(TEST_DATABASE_URL).is_ok_and(|u| u.starts_with("postgres")) {
        eprintln!("skipped: the multi-process test needs {TEST_DATABASE_URL}=postgres://…");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let database_url = fresh_database_url(dir.path()).await;
    let args = ["--allow-private-targets", "true", "--delivery-timeout", "60s", "--no-web"];
    let mut dispatchers: Vec<_> =
        (0..2).map(|_| spawn_portal(&database_url, &args, "listening for new deliveries").0).collect();
    let db = app::store::Db::connect(&database_url).await.unwrap();

    // Partner A: 200 webhooks whose receivers hang, 2,000 deliveries; without fair places each
    // process would give A all of its own 256.
    let hanging = Receiver::start(Reply::Hang(Duration::from_secs(120))).await;
    let a = insert_partner(&db, "Acme", "ann@acme.test").await.id;
    insert_webhooks(&db, &a, &hanging.url, 200).await;
    publish_in_store(&db, &a, "evt_a_", 10).await;
    let a_share = server::dispatcher::MAX_IN_FLIGHT - server::dispatcher::RESERVED_PLACES;
    let until = Instant::now() + Duration::from_secs(30);
    while hanging.received().len() < 2 * a_share {
        assert!(Instant::now() < until, "only {} of A's requests went out", hanging.received().len());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Partner B publishes 20 events to a fast receiver: every one arrives while A's hang.
    let fast = Receiver::start(Reply::Status(200, "ok")).await;
    let b = insert_partner(&db, "Beta", "bea@beta.test").await.id;
    insert_webhooks(&db, &b, &fast.url, 1).await;
    publish_in_store(&db, &b, "evt_b_", 20).await;
    let expected: HashSet<String> = (0..20).map(|i| format!("evt_b_{i}")).collect();
    wait_for_all(&fast, &expected, Duration::from_secs(15)).await;
    assert_eq!(hanging.received().len(), 2 * a_share, "A holds no more than its share in each process");

    for child in &mut dispatchers {
        child.kill().unwrap();
        child.wait().unwrap();
    }
}

/// While the recorder can't write (another transaction holds the webhook's row), the dispatcher
/// sends at most its places and the answered attempts it may keep waiting, then stops claiming:
/// a request's place is given back at the answer, but an answered attempt waits under a bound
/// of its own (`MAX_UNWRITTEN`), or a stalled writer would let answered attempts, each holding
/// its event, pile up without end while the loop claimed more. Once the row is free every
/// delivery is written and none was sent twice.
#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_recorder_stops_the_sends_at_the_places_and_the_attempts_waiting() {
    use sqlx::{Connection, Executor};
    if !std::env::var(TEST_DATABASE_URL).is_ok_and(|u| u.starts_with("postgres")) {
        eprintln!("skipped: the row lock that stalls the recorder needs {TEST_DATABASE_URL}=postgres://…");
        return;
    }
    const EVENTS: usize = 1_200;
    let bound = server::dispatcher::MAX_IN_FLIGHT + server::dispatcher::MAX_UNWRITTEN;
    let dir = tempfile::tempdir().unwrap();
    let database_url = fresh_database_url(dir.path()).await;
    let db = app::store::Db::connect(&database_url).await.unwrap();
    db.migrate().await.unwrap();
    let receiver = Receiver::start(Reply::Status(200, "ok")).await;
    let partner = insert_partner(&db, "Acme", "ann@acme.test").await.id;
    insert_webhooks(&db, &partner, &receiver.url, 1).await;
    // The webhook's row, held as an update would hold it: the recorder's update of the
    // webhook's newest attempt waits for it; queuing deliveries (a key share) does not.
    let mut holder = sqlx::AnyConnection::connect(&database_url).await.unwrap();
    holder.execute("BEGIN").await.unwrap();
    holder.execute("SELECT id FROM webhooks FOR NO KEY UPDATE").await.unwrap();
    publish_in_store(&db, &partner, "evt_", EVENTS).await;

    let sender = app::delivery::Sender::new(
        true,
        Duration::from_secs(10),
        app::sandbox::TemplateSandbox::new(env!("CARGO_BIN_EXE_portal").into()),
    )
    .unwrap();
    let dispatcher = server::dispatcher::Dispatcher::new(
        db.clone(),
        sender,
        app::domain::RetrySchedule::default(),
        std::sync::Arc::default(),
        Duration::from_secs(10),
    );
    let heartbeat = dispatcher.heartbeat();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(dispatcher.run(stopped));

    // The answered attempts fill their bound first (the recorder's first batch is stuck).
    let waiting = server::dispatcher::MAX_UNWRITTEN;
    let until = Instant::now() + Duration::from_secs(30);
    while receiver.received().len() < waiting {
        assert!(Instant::now() < until, "only {} requests went out", receiver.received().len());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The loop turns at least once a second; wait until it has looked for work for 2.5 s
    // more, by its own heartbeat: no more than the bound may have gone out meanwhile (without
    // it, every delivery would have).
    let seen = heartbeat.load(std::sync::atomic::Ordering::Relaxed);
    let until = Instant::now() + Duration::from_secs(15);
    while heartbeat.load(std::sync::atomic::Ordering::Relaxed) < seen + 2_500 {
        assert!(Instant::now() < until, "the dispatcher's loop stopped turning");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let sent = receiver.received().len();
    eprintln!("while nothing could be written: {sent} requests sent (at most {bound} allowed)");
    assert!(sent <= bound, "{sent} requests sent while nothing could be written (at most {bound})");

    // The row is free: every delivery is written, each sent once.
    holder.execute("ROLLBACK").await.unwrap();
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let done: i64 = sqlx::query("SELECT COUNT(*) AS n FROM deliveries WHERE state = 'succeeded'")
            .fetch_one(db.pool())
            .await
            .unwrap()
            .get("n");
        if done == EVENTS as i64 {
            break;
        }
        assert!(Instant::now() < until, "{done} of {EVENTS} deliveries written");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(receiver.received().len(), EVENTS, "each delivery sent once");
    stop.send(true).unwrap();
    running.await.unwrap();
}
