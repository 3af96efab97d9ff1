//! `kill -9` in the middle of a burst loses nothing: every event the API acknowledged reaches
//! the receiver after a restart (at least once).

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use crate::helpers::{OPERATOR_TOKEN, insert_partner};
use crate::receiver::{Receiver, Reply};

/// A `portal` child process that is killed when dropped, so a test that fails (panics) before
/// it stops its portals leaves none running.
pub struct PortalChild(Child);

impl std::ops::Deref for PortalChild {
    type Target = Child;

    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for PortalChild {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for PortalChild {
    fn drop(&mut self) {
        // Both fail harmlessly when the test already stopped it.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `portal serve` with `args`, waits until its log has a line with `ready`, and answers
/// the child and what follows `ready` on that line.
pub fn spawn_portal(database_url: &str, args: &[&str], ready: &'static str) -> (PortalChild, String) {
    let (child, rest, _) = spawn_portal_logged(database_url, args, &[], ready);
    (child, rest)
}

/// [`spawn_portal`] with extra environment variables, also answering every log line so far
/// and to come.
pub fn spawn_portal_logged(
    database_url: &str,
    args: &[&str],
    env: &[(&str, &str)],
    ready: &'static str,
) -> (PortalChild, String, Arc<Mutex<Vec<String>>>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_portal"))
        .arg("serve")
        .args(args)
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "info")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let lines: Arc<Mutex<Vec<String>>> = Arc::default();
    let (tx, rx) = std::sync::mpsc::channel();
    let kept = lines.clone();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if !sent && let Some(at) = line.find(ready) {
                // The word after `ready`: a text line ends there, a JSON line goes on with `"`.
                let rest = line[at + ready.len()..].split(['"', ' ']).next().unwrap_or_default();
                let _ = tx.send(rest.to_owned());
                sent = true;
            }
            kept.lock().unwrap().push(line);
        }
    });
    let child = PortalChild(child);
    let rest = rx.recv_timeout(Duration::from_secs(30)).expect("the portal starts");
    (child, rest, lines)
}

/// Starts `portal serve` on a free port; answers the child and its address.
fn start_portal(database_url: &str) -> (PortalChild, String) {
    spawn_portal(
        database_url,
        &["--addr", "127.0.0.1:0", "--allow-private-targets", "true", "--delivery-timeout", "1s"]
            .into_iter()
            .chain(["--operator-token", OPERATOR_TOKEN, "--retry-schedule", "200ms,200ms,200ms,200ms,200ms"])
            .collect::<Vec<_>>(),
        "listening on ",
    )
}

#[tokio::test]
async fn a_kill_in_the_middle_of_a_burst_loses_no_event() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = crate::helpers::fresh_database_url(dir.path()).await;
    // Slow enough that deliveries are in flight when the process dies.
    let receiver = Receiver::start(Reply::Hang(Duration::from_millis(50))).await;

    let (mut child, address) = start_portal(&database_url);
    let db = app::store::Db::connect(&database_url).await.unwrap();
    let partner = insert_partner(&db, "Acme", "ann@acme.test").await.id;
    let key = crate::helpers::insert_api_key(&db, &partner).await;
    let client = crate::helpers::http();
    let created = client
        .post(format!("{address}/api/v1/webhooks"))
        .bearer_auth(&key)
        .json(&json!({"url": receiver.url}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);

    let publish = |address: String, i: usize| {
        let client = client.clone();
        let partner = partner.to_string();
        async move {
            client
                .post(format!("{address}/api/v1/events"))
                .bearer_auth(OPERATOR_TOKEN)
                .json(&json!({"partnerId": partner, "type": "verification.completed", "status": "success", "data": {"n": i}, "id": format!("evt_burst_{i}")}))
                .send()
                .await
                .ok()
                .filter(|r| r.status() == 202)
                .map(|_| format!("evt_burst_{i}"))
        }
    };

    let mut acknowledged = HashSet::new();
    let mut backlog_at_kill = 0;
    for i in 0..150 {
        if let Some(id) = publish(address.clone(), i).await {
            acknowledged.insert(id);
        }
        if i == 100 {
            child.kill().unwrap(); // SIGKILL: no shutdown, no cleanup
            child.wait().unwrap();
            backlog_at_kill = acknowledged.len() - receiver.received().len();
        }
    }
    assert!(acknowledged.len() >= 100, "the burst was acknowledged up to the kill");
    assert!(backlog_at_kill > 0, "the kill came while acknowledged events were still waiting");

    let (mut child, address) = start_portal(&database_url);
    for i in 150..200 {
        if let Some(id) = publish(address.clone(), i).await {
            acknowledged.insert(id);
        }
    }
    // Leases of the killed process run out (8 s with a 1 s timeout) and are claimed again.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let arrived: HashSet<String> = receiver
            .received()
            .iter()
            .filter_map(|r| r.headers.get("webhook-id").map(|v| v.to_str().unwrap().to_owned()))
            .collect();
        let missing: Vec<&String> = acknowledged.difference(&arrived).collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} acknowledged events never arrived: {missing:?}",
            missing.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test]
async fn a_deliver_only_process_sends_what_another_process_queued() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = crate::helpers::fresh_database_url(dir.path()).await;
    let receiver = Receiver::start(Reply::Status(200, "ok")).await;
    let db = app::store::Db::connect(&database_url).await.unwrap();
    db.migrate().await.unwrap();
    let partner = insert_partner(&db, "Acme", "ann@acme.test").await.id;
    crate::helpers::insert_webhooks(&db, &partner, &receiver.url, 1).await;

    let mut child = PortalChild(
        Command::new(env!("CARGO_BIN_EXE_portal"))
            .args(["serve", "--no-web", "--allow-private-targets", "true"])
            .env("DATABASE_URL", &database_url)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // Queued by another process (the CLI): the deliver-only process picks it up by itself.
    let output = Command::new(env!("CARGO_BIN_EXE_portal"))
        .args([
            "event",
            "publish",
            "--partner",
            partner.as_str(),
            "--type",
            "review.completed",
            "--id",
            "evt_elsewhere",
        ])
        .env("DATABASE_URL", &database_url)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let got = receiver.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got[0].headers["webhook-id"], "evt_elsewhere");
    child.kill().unwrap();
    child.wait().unwrap();
}
