//! The dispatcher benchmark: drives a real `portal serve` process end to end and measures
//! deliveries per second, publish-to-first-attempt latency, retry timing and the effect of
//! hanging webhooks, one partner's hanging receivers beside another's, sign-in bursts and the
//! log pages' speed with a million attempts stored, with the portal's peak memory and CPU time.
//!
//! ```text
//! cargo build --release -p server --bin portal --example bench
//! target/release/examples/bench [throughput|latency|retries|slow|tenants|signin|logs|all]
//! BENCH_DATABASE=postgres://root@127.0.0.1:5432/postgres target/release/examples/bench dispatchers
//! BENCH_DATABASE=postgres://root@127.0.0.1:5432/postgres target/release/examples/bench throughput
//! ```
//!
//! `PORTAL_BIN` names the portal to run (a wrapper that starts it under a profiler, say), and
//! `BENCH_EVENTS` the events per partner of the throughput run (200) or of the latency run
//! (5,000), `BENCH_RATE` the latency run's events per second (500), `BENCH_ATTEMPTS` the
//! attempts stored for the logs run's large case (1,000,000).
//!
//! Events are published through the real API (`POST /api/v1/events`, operator token) by
//! concurrent clients; a receiver in this process (axum on 127.0.0.1) answers 200 at once, or
//! 500, or hangs, by path, and notes when each request arrived. Each run has a fresh database:
//! a SQLite file in a temporary folder, or a new PostgreSQL database on the server named by
//! `BENCH_DATABASE`.

mod dispatchers;
mod events;
mod logs;
mod portal;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use app::domain::PartnerId;
use serde_json::json;

use portal::{Log, Portal, TOKEN, receiver};

/// Publishes `count` events for each partner, `rate` per second in all (`None`: as fast as
/// `concurrency` clients go), with ids that start `evt_{prefix}`; answers when each was
/// accepted, by event id.
async fn publish(
    portal: &Portal,
    partners: &[PartnerId],
    count: usize,
    rate: Option<f64>,
    concurrency: usize,
    prefix: &str,
) -> HashMap<String, Instant> {
    // The setting up is done: the bench's own connections go, so that the run measures the
    // portal alone (on SQLite they checkpointed the portal's database from this process every
    // second, and the latency run's slow events came with those checkpoints).
    portal.db.pool().close().await;
    portal.db.writer().close().await;
    let client = reqwest::Client::new();
    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let jobs: Vec<(String, PartnerId)> = (0..count)
        .flat_map(|i| {
            partners.iter().enumerate().map(move |(p, partner)| (format!("evt_{prefix}{i}_{p}"), partner.clone()))
        })
        .collect();
    let jobs =
        Arc::new(Mutex::new(jobs.into_iter().enumerate().collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>()));
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, jobs, sent, url) =
                (client.clone(), jobs.clone(), sent.clone(), format!("{}/api/v1/events", portal.address));
            tokio::spawn(async move {
                loop {
                    let Some((n, (id, partner))) = jobs.lock().unwrap().pop() else { break };
                    if let Some(rate) = rate {
                        let at = started + Duration::from_secs_f64(n as f64 / rate);
                        tokio::time::sleep_until(at.into()).await;
                    }
                    let body = json!({"partnerId": partner, "type": "verification.completed", "status": "success", "id": id, "data": {"n": n}});
                    let before = Instant::now();
                    let response = client.post(&url).bearer_auth(TOKEN).json(&body).send().await.unwrap();
                    assert_eq!(response.status(), 202, "{}", response.text().await.unwrap_or_default());
                    sent.lock().unwrap().insert(id, before);
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.unwrap();
    }
    Arc::try_unwrap(sent).unwrap().into_inner().unwrap()
}

/// Waits until `n` requests on paths starting with `path` have arrived.
pub(crate) async fn wait_for(log: &Log, path: &str, n: usize, deadline: Duration) {
    let until = Instant::now() + deadline;
    // Counting all is O(1); the bench shares the cores with the portal.
    let arrived = || {
        let log = log.lock().unwrap();
        if path.is_empty() { log.len() } else { log.iter().filter(|(hook, _, _)| hook.starts_with(path)).count() }
    };
    while arrived() < n {
        assert!(Instant::now() < until, "only {} of {n} requests arrived", arrived());
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Publish (request sent) to arrival at the receiver, in ms, for each request received on a
/// path starting with `path`.
fn latencies(log: &Log, sent: &HashMap<String, Instant>, path: &str) -> Vec<f64> {
    timed(log, sent, path).into_iter().map(|(_, ms)| ms).collect()
}

/// For each request received on a path starting with `path`: when its event was published,
/// and its latency in ms.
fn timed(log: &Log, sent: &HashMap<String, Instant>, path: &str) -> Vec<(Instant, f64)> {
    let log = log.lock().unwrap();
    log.iter()
        .filter(|(hook, _, _)| hook.starts_with(path))
        .filter_map(|(_, id, at)| sent.get(id).map(|s| (*s, at.duration_since(*s).as_secs_f64() * 1000.0)))
        .collect()
}

fn percentiles(mut ms: Vec<f64>) -> String {
    ms.sort_by(f64::total_cmp);
    let at = |p: f64| ms[((ms.len() as f64 - 1.0) * p).round() as usize];
    format!("p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (n = {})", at(0.5), at(0.99), at(1.0), ms.len())
}

pub(crate) fn report(portal: &Portal, what: &str) {
    let (rss, cpu) = portal.resources();
    let (voluntary, all) = portal.switches();
    println!("  portal: peak RSS {rss:.1} MB, CPU {cpu:.1} s, {all} context switches ({voluntary} voluntary) ({what})");
}

/// Sustained deliveries per second: 10 partners × 10 webhooks, events published as fast as
/// 16 clients go, from the first publish to the last request received.
async fn throughput() {
    let (url, log) = receiver().await;
    let portal = Portal::start(&[]).await;
    let mut partners = Vec::new();
    for p in 0..10 {
        partners.push(portal.partner(&(0..10).map(|w| format!("{url}/ok/{p}-{w}")).collect::<Vec<_>>()).await);
    }
    // BENCH_EVENTS: fewer for a run under a profiler (callgrind runs the portal ~50× slower).
    let events: usize = std::env::var("BENCH_EVENTS").ok().and_then(|n| n.parse().ok()).unwrap_or(200);
    let total = events * partners.len() * 10;
    let started = Instant::now();
    let sent = publish(&portal, &partners, events, None, 16, "b").await;
    let published = started.elapsed();
    wait_for(&log, "", total, Duration::from_secs(600)).await;
    let seconds = started.elapsed().as_secs_f64();
    println!("throughput: {total} deliveries in {seconds:.2} s = {:.0} per second", total as f64 / seconds);
    println!("  publishing {} events took {:.2} s", events * partners.len(), published.as_secs_f64());
    println!("  latency at saturation: {}", percentiles(latencies(&log, &sent, "")));
    report(&portal, "throughput");
}

/// Publish-to-first-attempt latency at a steady 500 events per second (one webhook each).
async fn latency() {
    let (url, log) = receiver().await;
    let portal = Portal::start(&[]).await;
    let partners = vec![portal.partner(&[format!("{url}/ok/0")]).await];
    let rate: f64 = std::env::var("BENCH_RATE").ok().and_then(|n| n.parse().ok()).unwrap_or(500.0);
    let events: usize = std::env::var("BENCH_EVENTS").ok().and_then(|n| n.parse().ok()).unwrap_or(5_000);
    let sent = publish(&portal, &partners, events, Some(rate), 32, "b").await;
    wait_for(&log, "", events, Duration::from_secs(120)).await;
    println!("latency at {rate} events/s: {}", percentiles(latencies(&log, &sent, "")));
    // Where the tail comes from: one stall shows as the slow events bunched in time.
    let first = sent.values().min().copied().unwrap_or_else(Instant::now);
    let mut slow: Vec<(f64, f64)> = timed(&log, &sent, "")
        .into_iter()
        .filter(|(_, ms)| *ms > 20.0)
        .map(|(at, ms)| (at.duration_since(first).as_secs_f64(), ms))
        .collect();
    slow.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Bunches: slow events published less than 100 ms apart (start s, count, worst ms).
    let mut bunches: Vec<(f64, usize, f64)> = Vec::new();
    let mut last = f64::NEG_INFINITY;
    for (when, ms) in slow {
        match bunches.last_mut() {
            Some(bunch) if when - last < 0.1 => {
                bunch.1 += 1;
                bunch.2 = bunch.2.max(ms);
            }
            _ => bunches.push((when, 1, ms)),
        }
        last = when;
    }
    let shown: Vec<String> =
        bunches.iter().map(|(at, n, worst)| format!("{n} at {at:.2} s (worst {worst:.0} ms)")).collect();
    println!("  events over 20 ms, bunched: {}", shown.join(", "));
    report(&portal, "latency");
}

/// Retry timing with 1,000 failing deliveries in flight: the gaps between attempts of each
/// event against the 1, 2, 4, 8, 16 s schedule.
async fn retries() {
    let (url, log) = receiver().await;
    let portal = Portal::start(&[]).await;
    // One event to 1,000 webhooks: 1,000 deliveries failing together, each tried 6 times (a
    // webhook of its own each, so one giving up holds no other).
    let partners = vec![portal.partner(&(0..1000).map(|w| format!("{url}/fail/{w}")).collect::<Vec<_>>()).await];
    publish(&portal, &partners, 1, None, 1, "b").await;
    wait_for(&log, "", 1000 * 6, Duration::from_secs(120)).await;
    let mut by_delivery: HashMap<(String, String), Vec<Instant>> = HashMap::new();
    for (hook, id, at) in log.lock().unwrap().iter() {
        by_delivery.entry((hook.clone(), id.clone())).or_default().push(*at);
    }
    let schedule = [1.0, 2.0, 4.0, 8.0, 16.0];
    // Each retry's lateness, by retry number, with when it fell due.
    let mut late: Vec<Vec<(Instant, f64)>> = vec![Vec::new(); schedule.len()];
    for times in by_delivery.values() {
        for (i, pair) in times.windows(2).enumerate().take(schedule.len()) {
            let ms = (pair[1].duration_since(pair[0]).as_secs_f64() - schedule[i]) * 1000.0;
            late[i].push((pair[0] + Duration::from_secs_f64(schedule[i]), ms));
        }
    }
    println!(
        "retry lateness against the schedule: {}",
        percentiles(late.concat().into_iter().map(|(_, ms)| ms).collect())
    );
    for (i, mut wave) in late.into_iter().enumerate() {
        // Late from the first due on (a late start), or more and more (a slow wave)?
        wave.sort_by_key(|(due, _)| *due);
        let spread = wave.last().map_or(0.0, |(last, _)| last.duration_since(wave[0].0).as_secs_f64() * 1000.0);
        let by_place: Vec<String> =
            [0.0, 0.5, 1.0].iter().map(|p| format!("{:.0}", wave[((wave.len() - 1) as f64 * p) as usize].1)).collect();
        println!(
            "  retry {} (after {} s): {}; due over {spread:.0} ms, first/middle/last due late by {} ms",
            i + 1,
            schedule[i],
            percentiles(wave.iter().map(|(_, ms)| *ms).collect()),
            by_place.join("/")
        );
    }
    report(&portal, "retries");
}

/// Healthy webhooks' latency while 10% of webhooks hang until the timeout, against the same
/// run with none hanging.
async fn slow() {
    for hanging in [0, 2] {
        let (url, log) = receiver().await;
        let portal = Portal::start(&["--delivery-timeout", "10s"]).await;
        let urls: Vec<String> =
            (0..20).map(|w| if w < hanging { format!("{url}/hang/{w}") } else { format!("{url}/ok/{w}") }).collect();
        let partners = vec![portal.partner(&urls).await];
        let events = 250; // 50 events/s for 5 s, × 20 webhooks
        let sent = publish(&portal, &partners, events, Some(50.0), 8, "b").await;
        wait_for(&log, "ok/", events * (20 - hanging), Duration::from_secs(120)).await;
        let ms = latencies(&log, &sent, "ok/");
        println!("healthy webhooks with {hanging} of 20 hanging: {}", percentiles(ms));
        report(&portal, "slow");
    }
}

/// Tenant isolation: partner B's publish-to-arrival latency at 20 events per second to one
/// fast webhook, while partner A's 64 webhooks hang (30 s) with thousands of deliveries queued.
async fn tenants() {
    let (url, log) = receiver().await;
    let portal = Portal::start(&["--delivery-timeout", "30s"]).await;
    let a = portal.partner(&(0..64).map(|w| format!("{url}/hang/{w}")).collect::<Vec<_>>()).await;
    let b = portal.partner(&[format!("{url}/ok/b")]).await;
    let queued = publish(&portal, &[a], 100, None, 16, "a").await;
    // Every place A may hold is taken before B publishes.
    wait_for(&log, "hang/", 224, Duration::from_secs(60)).await;
    let sent = publish(&portal, &[b], 200, Some(20.0), 4, "b").await;
    wait_for(&log, "ok/", 200, Duration::from_secs(120)).await;
    println!(
        "partner B while partner A's 64 hanging webhooks have {} deliveries queued: {}",
        queued.len() * 64,
        percentiles(latencies(&log, &sent, "ok/"))
    );
    let held = log.lock().unwrap().iter().filter(|(hook, _, _)| hook.starts_with("hang/")).count();
    println!("  requests to A's hanging webhooks under way: {held}");
    report(&portal, "tenants");
    drop(portal);

    // A backlog behind webhooks at their limit: A's 10 hanging webhooks hold 40 places (less
    // than A's share, so A is not left out of claims) and 50,000 deliveries wait behind them.
    let (url, log) = receiver().await;
    let portal = Portal::start(&["--delivery-timeout", "30s"]).await;
    let a = portal.partner(&(0..10).map(|w| format!("{url}/hang/{w}")).collect::<Vec<_>>()).await;
    let b = portal.partner(&[format!("{url}/ok/b")]).await;
    let queued = publish(&portal, &[a], 5_000, None, 16, "a").await;
    wait_for(&log, "hang/", 40, Duration::from_secs(60)).await;
    let (_, cpu_before) = portal.resources();
    let sent = publish(&portal, &[b], 200, Some(20.0), 4, "b").await;
    wait_for(&log, "ok/", 200, Duration::from_secs(120)).await;
    let (_, cpu_after) = portal.resources();
    println!(
        "partner B while {} deliveries wait for partner A's 10 hanging webhooks: {}; portal CPU over B's 10 s: {:.1} s",
        queued.len() * 10,
        percentiles(latencies(&log, &sent, "ok/")),
        cpu_after - cpu_before
    );
    report(&portal, "tenants (backlog)");
}

/// 200 wrong sign-ins at once: all for one email from one address, then each for another
/// email from another address (so the throttle lets each through and only the argon2 slots
/// bound the work). How they were answered, how many passwords were checked, peak memory.
async fn signin() {
    for spread in [false, true] {
        let portal = Portal::start(&["--trust-forwarded-for", "true"]).await;
        let password = app::domain::NewPassword::parse("correct horse battery staple").unwrap();
        let hash = app::auth::hash_password(&password).unwrap();
        app::store::accounts::create_partner_with_user(
            &portal.db,
            &app::domain::PartnerName::parse("Bench").unwrap(),
            &app::domain::EmailAddress::parse("owner@bench.test").unwrap(),
            &hash,
        )
        .await
        .unwrap();
        let (rss_before, _) = portal.resources();
        let client = reqwest::Client::new();
        let started = Instant::now();
        let attempts: Vec<_> = (0..200)
            .map(|i| {
                let (client, address) = (client.clone(), portal.address.clone());
                let (email, from) = if spread {
                    (format!("user{i}@bench.test"), format!("198.51.{}.{}", i / 250, i % 250 + 1))
                } else {
                    ("owner@bench.test".to_owned(), "198.51.100.1".to_owned())
                };
                tokio::spawn(async move {
                    let response = client
                        .post(format!("{address}/api/login"))
                        .header("referer", format!("{address}/login"))
                        .header("x-forwarded-for", from)
                        .form(&[("email", email.as_str()), ("password", &format!("wrong password {i}"))])
                        .send()
                        .await
                        .unwrap();
                    response.status().as_u16()
                })
            })
            .collect();
        let mut statuses: HashMap<u16, usize> = HashMap::new();
        for attempt in attempts {
            *statuses.entry(attempt.await.unwrap()).or_default() += 1;
        }
        let seconds = started.elapsed().as_secs_f64();
        let metrics = client
            .get(format!("{}/metrics", portal.address))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let checks = metrics
            .lines()
            .find(|l| l.starts_with("portal_password_checks_total"))
            .unwrap_or("portal_password_checks_total ?");
        let mut statuses: Vec<_> = statuses.into_iter().collect();
        statuses.sort_unstable();
        let what = if spread { "200 emails from 200 addresses" } else { "one email from one address" };
        println!("sign-in burst, {what}: answered in {seconds:.2} s, by status {statuses:?}; {checks}");
        println!("  peak RSS before the burst {rss_before:.1} MB");
        report(&portal, "signin");
    }
}

#[tokio::main]
async fn main() {
    let which = std::env::args().nth(1).unwrap_or_else(|| "all".into());
    let backend = std::env::var("BENCH_DATABASE").map(|_| "PostgreSQL").unwrap_or("SQLite");
    println!("== {which} on {backend}");
    match which.as_str() {
        "throughput" => throughput().await,
        "latency" => latency().await,
        "retries" => retries().await,
        "slow" => slow().await,
        "tenants" => tenants().await,
        "signin" => signin().await,
        "logs" => logs::logs().await,
        "events" => events::events().await,
        "dispatchers" => dispatchers::dispatchers().await,
        "all" => {
            throughput().await;
            latency().await;
            retries().await;
            slow().await;
            tenants().await;
            signin().await;
            logs::logs().await;
            events::events().await;
        }
        other => panic!(
            "unknown benchmark `{other}`: throughput, latency, retries, slow, tenants, signin, logs, events, dispatchers (PostgreSQL) or all"
        ),
    }
}
