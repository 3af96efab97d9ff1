//! Retention: attempts older than the retention period are deleted in the background, in
//! small batches so the dispatcher's writes never wait long behind them. The success-rate
//! counters are separate from the attempts, so pruning never changes a rate or a badge. Each
//! pass also deletes the sign-in throttle's rows that no longer count, which strangers can
//! make as fast as they can send sign-ins, and the request inspectors that expired, with what
//! they captured.

use std::time::Duration;

use app::store::{Db, inspectors, log, now_ms, throttle};
use tokio::sync::watch;

/// Attempts deleted per statement.
const BATCH: i64 = 1_000;
/// Pause between batches, so other writers get the database in between.
const BETWEEN_BATCHES: Duration = Duration::from_millis(20);
/// How often a pass runs (the first runs at start).
const EVERY: Duration = Duration::from_secs(10 * 60);

/// Prunes every [`EVERY`] until `stop` turns true.
pub async fn run(db: Db, retention_days: u32, mut stop: watch::Receiver<bool>) {
    while !*stop.borrow() {
        if pass(&db, retention_days, &mut stop).await == Pass::Stopped {
            return;
        }
        tokio::select! {
            () = tokio::time::sleep(EVERY) => {}
            _ = stop.changed() => {}
        }
    }
}

/// How a pass ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// Everything due was pruned (or logged as failed, to be tried at the next pass).
    Done,
    /// `stop` turned true between batches.
    Stopped,
}

/// One pass: the delivery log older than `retention_days`, batch by batch, then the events
/// of that age with no delivery left, the search values of events from before event search, the stale sign-in throttle rows, the expired request
/// inspectors and password links, and audit entries older than a year.
pub async fn pass(db: &Db, retention_days: u32, stop: &mut watch::Receiver<bool>) -> Pass {
    let keep_ms = i64::from(retention_days) * 24 * 3600 * 1000;
    let cutoff = now_ms() - keep_ms;
    let mut total = 0;
    loop {
        match log::prune(db, cutoff, BATCH).await {
            Ok(n) => {
                total += n;
                if (n as i64) < BATCH {
                    break;
                }
            }
            Err(e) => {
                tracing::error!(error = format!("{e:#}"), "could not prune the delivery log");
                break;
            }
        }
        tokio::select! {
            () = tokio::time::sleep(BETWEEN_BATCHES) => {}
            _ = stop.changed() => return Pass::Stopped,
        }
    }
    if total > 0 {
        tracing::info!(attempts = total, retention_days, "pruned old delivery log rows");
    }
    if prune_events(db, cutoff, stop).await == Pass::Stopped {
        return Pass::Stopped;
    }
    if key_old_events(db, stop).await == Pass::Stopped {
        return Pass::Stopped;
    }
    match throttle::prune(db, now_ms()).await {
        Ok(0) => {}
        Ok(rows) => tracing::info!(rows, "pruned stale sign-in throttle rows"),
        Err(e) => tracing::error!(error = format!("{e:#}"), "could not prune the sign-in throttle"),
    }
    let year_ago = now_ms() - app::domain::AUDIT_RETENTION_DAYS * 24 * 3600 * 1000;
    match app::store::audit::prune(db, year_ago).await {
        Ok(0) => {}
        Ok(entries) => tracing::info!(entries, "pruned audit log entries older than a year"),
        Err(e) => tracing::error!(error = format!("{e:#}"), "could not prune the audit log"),
    }
    match app::store::accounts::prune_password_links(db, now_ms()).await {
        Ok(0) => {}
        Ok(links) => tracing::info!(links, "deleted expired password links"),
        Err(e) => tracing::error!(error = format!("{e:#}"), "could not delete expired password links"),
    }
    match inspectors::prune(db, now_ms()).await {
        Ok(0) => {}
        Ok(inspectors) => tracing::info!(inspectors, "deleted expired request inspectors"),
        Err(e) => tracing::error!(error = format!("{e:#}"), "could not delete expired request inspectors"),
    }
    Pass::Done
}

/// Events stored before event search have their search values filled in, batch by batch (a
/// no-op once they all have).
async fn key_old_events(db: &Db, stop: &mut watch::Receiver<bool>) -> Pass {
    let mut total = 0;
    loop {
        match app::store::event_search::key_old_events(db, BATCH).await {
            Ok(n) => {
                total += n;
                if (n as i64) < BATCH {
                    break;
                }
            }
            Err(e) => {
                tracing::error!(error = format!("{e:#}"), "could not index old events for search");
                break;
            }
        }
        tokio::select! {
            () = tokio::time::sleep(BETWEEN_BATCHES) => {}
            _ = stop.changed() => return Pass::Stopped,
        }
    }
    if total > 0 {
        tracing::info!(events = total, "indexed events stored before event search");
    }
    Pass::Done
}

/// Events older than `cutoff` with no delivery left, partner by partner, batch by batch.
async fn prune_events(db: &Db, cutoff: i64, stop: &mut watch::Receiver<bool>) -> Pass {
    let partners = match log::partner_ids(db).await {
        Ok(partners) => partners,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "could not list the partners to prune their events");
            return Pass::Done;
        }
    };
    let mut total = 0;
    for partner in partners {
        loop {
            match log::prune_events(db, &partner, cutoff, BATCH).await {
                Ok(n) => {
                    total += n;
                    if (n as i64) < BATCH {
                        break;
                    }
                }
                Err(e) => {
                    tracing::error!(error = format!("{e:#}"), "could not prune old events");
                    break;
                }
            }
            tokio::select! {
                () = tokio::time::sleep(BETWEEN_BATCHES) => {}
                _ = stop.changed() => return Pass::Stopped,
            }
        }
    }
    if total > 0 {
        tracing::info!(events = total, "pruned events older than the log's retention");
    }
    Pass::Done
}
