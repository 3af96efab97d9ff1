//! Benchmark, not a test (ignored by default): the webhooks list and the logs pages with a
//! million attempts stored against the same pages with a hundred. Run it with
//! `cargo test --release -p server --test it bench_log_pages -- --ignored --nocapture`
//! (`BENCH_ATTEMPTS` changes the large size). Figures go to `docs/benchmarks.md`.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::dispatcher::setup;

const WEBHOOKS: i64 = 5;
const SAMPLES: usize = 50;

/// Fills the log with `n` attempts over the last 29 days, spread over the webhooks, every
/// tenth a failure, with the counters the dispatcher would have kept for the last two days.
async fn fill(db: &app::store::Db, partner: &str, webhooks: &[String], n: i64) {
    let now = app::store::now_ms();
    let step = 29 * 24 * 3600 * 1000 / n.max(1);
    let cases: String =
        webhooks.iter().enumerate().map(|(i, w)| format!(" WHEN {i} THEN '{w}'")).collect::<Vec<_>>().join("");
    sqlx::query(&format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1) \
         INSERT INTO attempts (id, partner_id, webhook_id, delivery_id, event_id, event_type, attempt_number, outcome, \
           status_code, latency_ms, error, request_headers, request_body, response_body, test, origin, created_at) \
         SELECT 'att_' || substr('00000000000000000000000000' || i, length('00000000000000000000000000' || i) - 25), $2, CASE i % {WEBHOOKS}{cases} END, NULL, \
           'evt_' || i, 'verification.completed', 1, CASE WHEN i % 10 = 0 THEN 'failure' ELSE 'success' END, \
           CASE WHEN i % 10 = 0 THEN 500 ELSE 200 END, 42, CASE WHEN i % 10 = 0 THEN 'HTTP 500' ELSE NULL END, \
           '[[\"content-type\",\"application/json\"]]', '{{\"id\":\"evt\"}}', 'ok', 0, 'event', $3 - i * $4 FROM n"
    ))
    .bind(n)
    .bind(partner)
    .bind(now)
    .bind(step)
    .execute(db.pool())
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO webhook_minutes (webhook_id, partner_id, minute, attempts, failures) \
         SELECT webhook_id, partner_id, created_at / 60000, COUNT(*), SUM(CASE WHEN outcome = 'failure' THEN 1 ELSE 0 END) \
         FROM attempts WHERE created_at >= $1 GROUP BY webhook_id, partner_id, created_at / 60000",
    )
    .bind(now - 2 * 24 * 3600 * 1000)
    .execute(db.pool())
    .await
    .unwrap();
    sqlx::query("ANALYZE").execute(db.pool()).await.unwrap();
    // Let the dispatcher get past the long write before anything is timed.
    tokio::time::sleep(Duration::from_secs(2)).await;
}

/// Median and 95th percentile of `SAMPLES` GETs of `url`.
async fn time(client: &reqwest::Client, url: &str, key: Option<&str>) -> (Duration, Duration) {
    let mut times = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        let mut request = client.get(url);
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        let started = Instant::now();
        let response = request.send().await.unwrap();
        assert!(response.status().is_success(), "{url}: {}", response.status());
        response.bytes().await.unwrap();
        times.push(started.elapsed());
    }
    times.sort();
    (times[SAMPLES / 2], times[SAMPLES * 95 / 100])
}

async fn measure(n: i64) -> Vec<(String, Duration, Duration)> {
    let s = setup(&[]).await;
    let mut webhooks = Vec::new();
    for i in 0..WEBHOOKS {
        let created: Value = s.create_webhook(json!({"url": format!("https://hooks.example.com/{i}")})).await;
        webhooks.push(created["id"].as_str().unwrap().to_owned());
    }
    let started = Instant::now();
    fill(&s.app.db, &s.partner, &webhooks, n).await;
    eprintln!("filled {n} attempts in {:?}", started.elapsed());
    let partner = crate::helpers::TestPartner {
        id: app::domain::PartnerId::parse(&s.partner).unwrap(),
        email: "ann@acme.test".into(),
        password: "correct horse battery staple".into(),
    };
    let client = s.app.signed_in_client(&partner).await;
    let w = &webhooks[0];
    let (_, page) = {
        let response = crate::helpers::http()
            .get(s.app.url(&format!("/api/v1/webhooks/{w}/attempts?limit=100")))
            .bearer_auth(&s.key)
            .send()
            .await
            .unwrap();
        (response.status(), response.json::<Value>().await.unwrap())
    };
    let deep = page["next"].as_str().map(str::to_owned).unwrap_or_default();
    let mut out = Vec::new();
    for (name, path, key) in [
        ("webhooks list page", "/webhooks".to_owned(), None),
        ("webhook detail page (badge, chart)", format!("/webhooks/{w}"), None),
        ("webhook logs page", format!("/webhooks/{w}/logs"), None),
        ("webhook logs page, failures only", format!("/webhooks/{w}/logs?outcome=failure"), None),
        ("partner-wide logs page", "/logs".to_owned(), None),
        ("API: GET /webhooks", "/api/v1/webhooks".to_owned(), Some(s.key.as_str())),
        (
            "API: attempts, second page",
            format!("/api/v1/webhooks/{w}/attempts?limit=100&cursor={deep}"),
            Some(s.key.as_str()),
        ),
    ] {
        let (p50, p95) = time(&client, &s.app.url(&path), key).await;
        out.push((name.to_owned(), p50, p95));
    }
    out
}

#[tokio::test]
#[ignore = "a benchmark: run with --ignored --nocapture, in release"]
async fn bench_log_pages() {
    let large: i64 = std::env::var("BENCH_ATTEMPTS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let small = measure(100).await;
    let big = measure(large).await;
    println!("| request | 100 attempts p50 / p95 | {large} attempts p50 / p95 |");
    println!("|---|---|---|");
    for ((name, s50, s95), (_, b50, b95)) in small.iter().zip(&big) {
        println!(
            "| {name} | {:.1} ms / {:.1} ms | {:.1} ms / {:.1} ms |",
            s50.as_secs_f64() * 1e3,
            s95.as_secs_f64() * 1e3,
            b50.as_secs_f64() * 1e3,
            b95.as_secs_f64() * 1e3
        );
    }
}
