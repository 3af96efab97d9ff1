//! The log pages run: the webhooks list and the logs pages, in the browser and over REST, with a
//! hundred attempts stored and with a million (`BENCH_ATTEMPTS` changes the large size), each
//! request timed from outside the portal.

use std::time::{Duration, Instant};

use app::domain::{ApiKeyName, EmailAddress, NewPassword, PartnerId, PartnerName, Role, UrlPolicy, WebhookInput};
use app::store::Db;
use serde_json::Value;

use crate::portal::Portal;

const WEBHOOKS: i64 = 5;
const SAMPLES: usize = 50;
pub(crate) const EMAIL: &str = "ann@bench.test";
pub(crate) const PASSWORD: &str = "correct horse battery staple";

/// Fills the log with `n` attempts over the last 29 days, spread over the webhooks, every
/// tenth a failure, with the counters the dispatcher would have kept for the last two days.
async fn fill(db: &Db, partner: &PartnerId, webhooks: &[String], n: i64) {
    let now = app::store::now_ms();
    let step = 29 * 24 * 3600 * 1000 / n.max(1);
    let cases: String = webhooks.iter().enumerate().map(|(i, w)| format!(" WHEN {i} THEN '{w}'")).collect();
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
    .bind(partner.as_str())
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
}

/// Median and 95th percentile of `SAMPLES` GETs of `url`.
pub(crate) async fn time(client: &reqwest::Client, url: &str, key: Option<&str>) -> (Duration, Duration) {
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

/// A partner with a user who can sign in, an API key and `WEBHOOKS` webhooks, on `portal`.
pub(crate) async fn partner(portal: &Portal) -> (PartnerId, String, Vec<String>) {
    let hash = app::auth::hash_password(&NewPassword::parse(PASSWORD).unwrap()).unwrap();
    let (partner, _) = app::store::accounts::create_partner_with_user(
        &portal.db,
        &PartnerName::parse("Bench").unwrap(),
        &EmailAddress::parse(EMAIL).unwrap(),
        &hash,
    )
    .await
    .unwrap();
    let key = app::service::accounts::create_api_key(
        &portal.db,
        &partner,
        app::domain::Environment::Production,
        &app::domain::Actor::Operator,
        &ApiKeyName::parse("bench").unwrap(),
        Role::Admin,
        u32::MAX,
    )
    .await
    .unwrap()
    .unwrap()
    .key;
    let mut webhooks = Vec::new();
    for i in 0..WEBHOOKS {
        let input = WebhookInput { url: format!("https://hooks.example.com/{i}"), ..Default::default() };
        let settings = input.parse(UrlPolicy::default(), None).unwrap();
        let (view, _) = app::store::webhooks::create(&portal.db, &partner, &settings, u32::MAX).await.unwrap().unwrap();
        webhooks.push(view.id.to_string());
    }
    (partner, key, webhooks)
}

/// Each request's median and 95th percentile with `n` attempts stored.
async fn measure(n: i64) -> Vec<(&'static str, Duration, Duration)> {
    let portal = Portal::start(&[]).await;
    let (partner, key, webhooks) = partner(&portal).await;
    let started = Instant::now();
    fill(&portal.db, &partner, &webhooks, n).await;
    println!("  filled {n} attempts in {:.1} s", started.elapsed().as_secs_f64());
    let browser = reqwest::Client::builder().cookie_store(true).build().unwrap();
    let signed_in = browser
        .post(format!("{}/api/login", portal.address))
        .header("referer", format!("{}/login", portal.address))
        .form(&[("email", EMAIL), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert!(signed_in.status().is_success() || signed_in.status().is_redirection(), "sign-in: {}", signed_in.status());
    let w = &webhooks[0];
    let api = reqwest::Client::new();
    let page: Value = api
        .get(format!("{}/api/v1/webhooks/{w}/attempts?limit=100", portal.address))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let deep = page["next"].as_str().unwrap_or_default().to_owned();
    let mut out = Vec::new();
    for (name, path, key) in [
        ("webhooks list page", "/webhooks".to_owned(), None),
        ("webhook detail page (badge, chart)", format!("/webhooks/{w}"), None),
        ("webhook logs page", format!("/webhooks/{w}/logs"), None),
        ("webhook logs page, failures only", format!("/webhooks/{w}/logs?outcome=failure"), None),
        ("partner-wide logs page", "/logs".to_owned(), None),
        ("API: GET /webhooks", "/api/v1/webhooks".to_owned(), Some(key.as_str())),
        (
            "API: attempts, second page",
            format!("/api/v1/webhooks/{w}/attempts?limit=100&cursor={deep}"),
            Some(key.as_str()),
        ),
    ] {
        let client = if key.is_some() { &api } else { &browser };
        let (p50, p95) = time(client, &format!("{}{path}", portal.address), key).await;
        out.push((name, p50, p95));
    }
    crate::report(&portal, &format!("logs, {n} attempts"));
    out
}

pub async fn logs() {
    let large: i64 = std::env::var("BENCH_ATTEMPTS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let small = measure(100).await;
    let big = measure(large).await;
    println!("| request | 100 attempts p50 / p95 | {large} attempts p50 / p95 |");
    println!("|---|---|---|");
    let ms = |d: &Duration| d.as_secs_f64() * 1e3;
    for ((name, s50, s95), (_, b50, b95)) in small.iter().zip(&big) {
        println!("| {name} | {:.1} ms / {:.1} ms | {:.1} ms / {:.1} ms |", ms(s50), ms(s95), ms(b50), ms(b95));
    }
}
