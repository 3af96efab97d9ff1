//! The dispatchers run (PostgreSQL only): a backlog of 10,000 deliveries (500 events × 20
//! webhooks) drained by 1, 2 and 3 `portal serve --no-web` processes on one database, into a
//! receiver that answers 200 at once; from starting the dispatchers to the last request
//! received.

use std::process::Command;
use std::time::{Duration, Instant};

use app::domain::NewEvent;
use app::store::Db;
use serde_json::json;

use crate::portal::{add_partner, drop_database, fresh_database, portal_binary, receiver};

const WEBHOOKS: usize = 20;
const EVENTS: usize = 500;

pub async fn dispatchers() {
    assert!(
        std::env::var("BENCH_DATABASE").is_ok_and(|u| u.starts_with("postgres")),
        "the dispatchers run needs BENCH_DATABASE=postgres://…"
    );
    println!("| dispatcher processes | deliveries | seconds | deliveries per second |");
    println!("|---|---|---|---|");
    for processes in 1..=3 {
        let dir = tempfile::tempdir().unwrap();
        let (database_url, postgres) = fresh_database(dir.path()).await;
        let db = Db::connect(&database_url).await.unwrap();
        db.migrate().await.unwrap();
        let (url, log) = receiver().await;
        let urls: Vec<String> = (0..WEBHOOKS).map(|i| format!("{url}/ok/{i}")).collect();
        let partner = add_partner(&db, &urls).await;
        for i in 0..EVENTS {
            let id = format!("evt_{i}");
            let event = NewEvent::parse(
                partner.as_str(),
                None,
                "verification.completed",
                "success",
                json!({"n": i}),
                Some(&id),
            )
            .unwrap();
            app::store::events::publish(&db, &event).await.unwrap();
        }
        let total = WEBHOOKS * EVENTS;
        let started = Instant::now();
        let mut children: Vec<_> = (0..processes)
            .map(|_| {
                Command::new(portal_binary())
                    .args(["serve", "--no-web", "--allow-private-targets", "true"])
                    .env("DATABASE_URL", &database_url)
                    .env("RUST_LOG", "warn")
                    .spawn()
                    .expect("the portal runs (cargo build --release -p server --bin portal)")
            })
            .collect();
        crate::wait_for(&log, "", total, Duration::from_secs(300)).await;
        let seconds = started.elapsed().as_secs_f64();
        println!("| {processes} | {total} | {seconds:.2} | {:.0} |", total as f64 / seconds);
        for child in &mut children {
            child.kill().unwrap();
            child.wait().unwrap();
        }
        if let Some(postgres) = postgres {
            drop_database(&db, postgres);
        }
    }
}
