//! Event search (#20): the `/events` page and the API's list, search and event calls with a
//! hundred events stored and with a million (`BENCH_EVENTS_STORED` changes the large size),
//! each request timed from outside the portal.

use std::time::{Duration, Instant};

use app::domain::PartnerId;
use app::store::Db;

use crate::logs::{EMAIL, PASSWORD, partner, time};
use crate::portal::Portal;

/// Fills `partner`'s events with `n` over the last 29 days, four types in turn, each with its
/// own `verificationId` (`ver_<i>`) and one `sessionId` per ten (`ses_<i / 10>`), as publishing
/// stores them.
async fn fill(db: &Db, partner: &PartnerId, n: i64) -> (i64, i64) {
    let now = app::store::now_ms();
    let step = 29 * 24 * 3600 * 1000 / n.max(1);
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1) \
         INSERT INTO events (id, partner_id, type, status, data, verification_id, session_id, created_at, unkeyed) \
         SELECT 'evt_' || i, $2, CASE i % 4 WHEN 0 THEN 'verification.completed' WHEN 1 THEN 'verification.failed' \
           WHEN 2 THEN 'verification.expired' ELSE 'review.completed' END, 'success', \
           '{\"verificationId\": \"ver_' || i || '\", \"sessionId\": \"ses_' || (i / 10) || '\"}', \
           'ver_' || i, 'ses_' || (i / 10), $3 - i * $4, NULL FROM n",
    )
    .bind(n)
    .bind(partner.as_str())
    .bind(now)
    .bind(step)
    .execute(db.pool())
    .await
    .unwrap();
    sqlx::query("ANALYZE").execute(db.pool()).await.unwrap();
    (now, step)
}

/// Each request's median and 95th percentile with `n` events stored.
async fn measure(n: i64) -> Vec<(&'static str, Duration, Duration)> {
    let portal = Portal::start(&[]).await;
    let (partner, key, _) = partner(&portal).await;
    let started = Instant::now();
    let (now, step) = fill(&portal.db, &partner, n).await;
    println!("  filled {n} events in {:.1} s", started.elapsed().as_secs_f64());
    let browser = reqwest::Client::builder().cookie_store(true).build().unwrap();
    let signed_in = browser
        .post(format!("{}/api/login", portal.address))
        .header("referer", format!("{}/login", portal.address))
        .form(&[("email", EMAIL), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert!(signed_in.status().is_success() || signed_in.status().is_redirection(), "sign-in: {}", signed_in.status());
    let api = reqwest::Client::new();
    // Values from the oldest end, the far side of every index from the newest events.
    let (old, old_session) = (n - 3, (n - 3) / 10);
    // A page from the middle of the list: the cursor of event n / 2.
    let middle = format!("{}.evt_{}", now - (n / 2) * step, n / 2);
    let mut out = Vec::new();
    for (name, path, key) in [
        ("/events page", "/events".to_owned(), None),
        ("/events page, search by verificationId", format!("/events?search=ver_{old}"), None),
        ("API: GET /events", "/api/v1/events".to_owned(), Some(key.as_str())),
        ("API: a page from the middle (cursor)", format!("/api/v1/events?cursor={middle}"), Some(key.as_str())),
        ("API: type filter", "/api/v1/events?type=review.completed".to_owned(), Some(key.as_str())),
        ("API: search by verificationId", format!("/api/v1/events?search=ver_{old}"), Some(key.as_str())),
        (
            "API: search by sessionId (10 events)",
            format!("/api/v1/events?search=ses_{old_session}"),
            Some(key.as_str()),
        ),
        ("API: search by event id", format!("/api/v1/events?search=evt_{old}"), Some(key.as_str())),
        ("API: GET /events/{id}", format!("/api/v1/events/evt_{old}"), Some(key.as_str())),
    ] {
        let client = if key.is_some() { &api } else { &browser };
        let (p50, p95) = time(client, &format!("{}{path}", portal.address), key).await;
        out.push((name, p50, p95));
    }
    crate::report(&portal, &format!("events, {n} stored"));
    out
}

pub async fn events() {
    let large: i64 = std::env::var("BENCH_EVENTS_STORED").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let small = measure(100).await;
    let big = measure(large).await;
    println!("| request | 100 events p50 / p95 | {large} events p50 / p95 |");
    println!("|---|---|---|");
    let ms = |d: &Duration| d.as_secs_f64() * 1e3;
    for ((name, s50, s95), (_, b50, b95)) in small.iter().zip(&big) {
        println!("| {name} | {:.1} ms / {:.1} ms | {:.1} ms / {:.1} ms |", ms(s50), ms(s95), ms(b50), ms(b95));
    }
}
