//! The dispatcher's loop: claim due deliveries (a lease, committed before any HTTP call), send
//! each in its own task, log the attempt and schedule the retry or finish. It sleeps until the
//! next delivery falls due or until it is woken (a new event, a reactivated webhook, a task
//! that finished), so new events go out at once and retries fire on time.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use app::delivery::{self, AttemptResult, Sender};
use app::domain::{RetrySchedule, WebhookId};
use app::store::deliveries::{self, AttemptRecord, Claimed, Next};
use app::store::{Db, now_ms, webhooks};
use tokio::sync::{Notify, Semaphore, watch};

/// Deliveries in flight at once, all webhooks together.
pub const MAX_IN_FLIGHT: usize = 64;
/// Deliveries in flight at once to one webhook, so a slow one can't take every slot.
pub const MAX_IN_FLIGHT_PER_WEBHOOK: usize = 4;
/// Longest sleep: wakes and due times drive the loop in this process; this picks up work that
/// another process queued (`portal event publish`, a second portal on PostgreSQL) within a second.
const IDLE_POLL: Duration = Duration::from_secs(1);

/// The running dispatcher's parts.
pub struct Dispatcher {
    db: Db,
    sender: Sender,
    schedule: RetrySchedule,
    wake: Arc<Notify>,
    worker: String,
    lease_ms: i64,
    gone_deactivates: bool,
    heartbeat: Arc<AtomicI64>,
}

/// On PostgreSQL: wakes this process's dispatcher whenever any process announces new due
/// deliveries (`NOTIFY`, see [`Db::announce_work`](app::store::Db::announce_work)), so an
/// event published through one portal goes out at once from whichever dispatcher is free.
/// The dispatcher's own polling covers the moments the listener is reconnecting.
pub async fn listen_for_work(database_url: String, wake: Arc<Notify>, mut stop: watch::Receiver<bool>) {
    while !*stop.borrow() {
        let listening = async {
            let mut listener = sqlx::postgres::PgListener::connect(&database_url).await?;
            listener.listen(app::store::WORK_CHANNEL).await?;
            tracing::info!("listening for new deliveries from every process");
            loop {
                listener.recv().await?;
                wake.notify_one();
            }
            #[allow(unreachable_code)]
            Ok::<(), sqlx::Error>(())
        };
        tokio::select! {
            result = listening => {
                if let Err(e) = result {
                    tracing::warn!(error = %e, "lost the PostgreSQL listener; polling until it is back");
                }
            }
            _ = stop.changed() => return,
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.changed() => return,
        }
    }
}

impl Dispatcher {
    /// A dispatcher over `db`; `timeout` is the receivers' time limit (leases outlast it).
    pub fn new(db: Db, sender: Sender, schedule: RetrySchedule, wake: Arc<Notify>, timeout: Duration) -> Self {
        let worker = format!("{}-{}", std::process::id(), ulid::Ulid::new());
        let lease_ms = (timeout.as_millis() as i64) * 3 + 5_000;
        Self { db, sender, schedule, wake, worker, lease_ms, gone_deactivates: true, heartbeat: Arc::default() }
    }

    /// Whether a `410 Gone` answer deactivates the webhook at once (the default) rather than
    /// being retried like any other failure.
    pub fn gone_deactivates(mut self, yes: bool) -> Self {
        self.gone_deactivates = yes;
        self
    }

    /// When the loop last went round (ms; 0 before it starts), for `/readyz`.
    pub fn heartbeat(&self) -> Arc<AtomicI64> {
        self.heartbeat.clone()
    }

    /// Runs until `stop` turns true, then waits for the attempts under way.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let this = Arc::new(self);
        let permits = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
        let per_webhook: Arc<Mutex<HashMap<WebhookId, usize>>> = Arc::default();
        tracing::info!(worker = %this.worker, "dispatcher started");
        while !*stop.borrow() {
            this.heartbeat.store(now_ms(), Ordering::Relaxed);
            let free = permits.available_permits();
            let in_flight: Vec<(WebhookId, usize)> =
                per_webhook.lock().expect("not poisoned").iter().map(|(w, n)| (w.clone(), *n)).collect();
            let claimed = match deliveries::claim_due(
                &this.db,
                &this.worker,
                free as i64,
                this.lease_ms,
                MAX_IN_FLIGHT_PER_WEBHOOK,
                &in_flight,
            )
            .await
            {
                Ok(claimed) => claimed,
                Err(e) => {
                    tracing::error!(error = format!("{e:#}"), "could not claim deliveries");
                    Vec::new()
                }
            };
            let got = claimed.len();
            for delivery in claimed {
                let permit = permits.clone().acquire_owned().await.expect("the semaphore is never closed");
                *per_webhook.lock().expect("not poisoned").entry(delivery.webhook.clone()).or_default() += 1;
                let (this, per_webhook) = (this.clone(), per_webhook.clone());
                tokio::spawn(async move {
                    let webhook = delivery.webhook.clone();
                    this.deliver(delivery).await;
                    let mut counts = per_webhook.lock().expect("not poisoned");
                    if let Some(n) = counts.get_mut(&webhook) {
                        *n -= 1;
                        if *n == 0 {
                            counts.remove(&webhook);
                        }
                    }
                    drop(counts);
                    drop(permit);
                    this.wake.notify_one();
                });
            }
            if got > 0 && got == free {
                continue; // slots were the limit: more may be due
            }
            // Claimed fewer than the free slots: the rest are not due, or their webhooks are
            // at their limit until a task finishes (which wakes us).
            let wait = match deliveries::next_due(&this.db).await {
                Ok(Some(due)) => match due - now_ms() {
                    later if later > 0 => Duration::from_millis(later.min(IDLE_POLL.as_millis() as i64) as u64),
                    // Due now but nothing claimable (slots or its webhook busy): a finishing
                    // task wakes us; look again shortly in any case.
                    _ if got == 0 => Duration::from_millis(50),
                    _ => Duration::ZERO,
                },
                Ok(None) => IDLE_POLL,
                Err(e) => {
                    tracing::error!(error = format!("{e:#}"), "could not find the next due delivery");
                    Duration::from_secs(1)
                }
            };
            tokio::select! {
                () = this.wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
                _ = stop.changed() => {}
            }
        }
        // Let the attempts under way finish and be logged.
        let _ = permits.acquire_many(MAX_IN_FLIGHT as u32).await;
        tracing::info!("dispatcher stopped");
    }

    /// One attempt of a claimed delivery, logged, with its next step decided.
    #[tracing::instrument(skip_all, fields(delivery = %claimed.id, webhook = %claimed.webhook))]
    async fn deliver(&self, claimed: Claimed) {
        if let Err(e) = self.try_deliver(&claimed).await {
            // The lease runs out and the delivery is tried again: at least once, never lost.
            tracing::error!(error = format!("{e:#}"), "delivery step failed");
        }
    }

    async fn try_deliver(&self, claimed: &Claimed) -> anyhow::Result<()> {
        let Some(webhook) = webhooks::record(&self.db, &claimed.partner, &claimed.webhook).await? else {
            return Ok(()); // deleted since: its deliveries went with it
        };
        if !webhook.settings.active {
            return deliveries::hold(&self.db, &claimed.id).await;
        }
        let Some(event) = deliveries::event_body(&self.db, &claimed.partner, &claimed.event_id).await? else {
            return Ok(());
        };
        let number = claimed.attempts + 1;
        let (request, result) = delivery::attempt(&self.sender, &webhook, &event).await;
        let next = self.next_step(number, &result, &event.id);
        // One line per attempt, with what an operator searches by; never a secret (the body,
        // the headers and the URL's secrets stay in the database).
        tracing::info!(
            partner = %claimed.partner,
            event = %event.id,
            attempt = number,
            outcome = if result.success { "success" } else { "failure" },
            status = result.status_code,
            latency_ms = result.latency_ms,
            error = result.error.as_deref(),
            ?next,
            "attempt"
        );
        let log = AttemptRecord {
            delivery: Some(&claimed.id),
            partner: &claimed.partner,
            webhook: &claimed.webhook,
            event: &event,
            number,
            request: request.as_ref(),
            result: &result,
            origin: claimed.origin,
        };
        deliveries::record(&self.db, &log, &next).await
    }

    /// After attempt `number`: done, retry after the schedule's wait, or give up.
    fn next_step(&self, number: i64, result: &AttemptResult, event_id: &str) -> Next {
        if result.success {
            return Next::Succeeded;
        }
        if self.gone_deactivates && result.status_code == Some(410) {
            return Next::GiveUp {
                reason: format!(
                    "the endpoint answered 410 Gone to event {event_id}: it asked not to be sent more events"
                ),
            };
        }
        match self.schedule.delay_before_retry(number as usize) {
            Some(delay) => Next::RetryAt(now_ms() + delay.as_millis() as i64),
            None => Next::GiveUp {
                reason: format!(
                    "{number} attempts in a row failed to deliver event {event_id}; the last: {}",
                    result.error.as_deref().unwrap_or("failed")
                ),
            },
        }
    }
}
