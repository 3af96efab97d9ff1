//! The dispatcher's loop: claim due deliveries (a lease, committed before any HTTP call), send
//! each in its own task, log the attempt and schedule the retry or finish. It sleeps until the
//! next delivery falls due or until it is woken (a new event, a reactivated webhook, a task
//! that finished), so new events go out at once and retries fire on time.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use app::delivery::{self, AttemptResult, Sender};
use app::domain::{EventBody, PartnerId, RetrySchedule, WebhookId};
use app::store::deliveries::{self, Claimed, FinishedAttempt, Next};
use app::store::{Db, now_ms, webhooks};
use tokio::sync::{Notify, Semaphore, mpsc, oneshot, watch};

/// Deliveries in flight at once, all webhooks together.
pub const MAX_IN_FLIGHT: usize = 256;
/// Deliveries in flight at once to one webhook, so a slow one can't take every slot.
pub const MAX_IN_FLIGHT_PER_WEBHOOK: usize = 4;
/// Places no partner may take while the others have none (see
/// [`claim_due`](app::store::deliveries::claim_due)): a partner that starts sending finds them
/// free however slow the others' receivers are. A partner alone still has all the others.
pub const RESERVED_PLACES: usize = MAX_IN_FLIGHT / 8;
/// Longest sleep: wakes and due times drive the loop in this process; this picks up work that
/// another process queued (`portal event publish`, a second portal on PostgreSQL) within a second.
const IDLE_POLL: Duration = Duration::from_secs(1);
/// Most attempts the recorder writes in one transaction.
const MAX_BATCH: usize = 256;
/// How far ahead a claim reaches (ms): deliveries falling due within it are claimed together
/// and each waits in its task for its own time. Deliveries that fall due a few milliseconds
/// apart (a wave of retries) then cost one claim between them, not one each, so the wave keeps
/// to its schedule instead of falling behind it.
const LOOKAHEAD_MS: i64 = 40;
/// What [`Dispatcher::next_look`] holds while the loop is looking at the database: a task that
/// leaves a delivery pending then always wakes it.
const LOOKING: i64 = i64::MIN;

/// An attempt for the recorder, and where to say it is written.
type RecordJob = (FinishedAttempt, oneshot::Sender<anyhow::Result<()>>);

/// What the batch load found for one delivery; `None` parts are loaded on their own.
struct Loaded {
    webhook: Option<webhooks::WebhookRecord>,
    event: Option<EventBody>,
}

/// Requests under way, per webhook and per partner: what a claim shares places by.
#[derive(Default)]
struct InFlight {
    webhooks: HashMap<WebhookId, usize>,
    partners: HashMap<PartnerId, usize>,
}

/// Takes one away from `key`'s count, forgetting keys at zero.
fn decrement<K: std::hash::Hash + Eq>(counts: &mut HashMap<K, usize>, key: &K) {
    if let Some(n) = counts.get_mut(key) {
        *n -= 1;
        if *n == 0 {
            counts.remove(key);
        }
    }
}

/// One of a webhook's in-flight places ([`MAX_IN_FLIGHT_PER_WEBHOOK`]) and of its partner's,
/// held while a request to it is under way and given back (telling the loop a place is free)
/// when dropped.
struct WebhookSlot {
    webhook: WebhookId,
    partner: PartnerId,
    counts: Arc<Mutex<InFlight>>,
    freed: Arc<Notify>,
}

impl WebhookSlot {
    fn take(counts: &Arc<Mutex<InFlight>>, claimed: &Claimed, freed: &Arc<Notify>) -> Self {
        let mut held = counts.lock().expect("not poisoned");
        *held.webhooks.entry(claimed.webhook.clone()).or_default() += 1;
        *held.partners.entry(claimed.partner.clone()).or_default() += 1;
        Self {
            webhook: claimed.webhook.clone(),
            partner: claimed.partner.clone(),
            counts: counts.clone(),
            freed: freed.clone(),
        }
    }
}

impl Drop for WebhookSlot {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().expect("not poisoned");
        decrement(&mut counts.webhooks, &self.webhook);
        decrement(&mut counts.partners, &self.partner);
        drop(counts);
        self.freed.notify_one();
    }
}

/// The running dispatcher's parts.
pub struct Dispatcher {
    db: Db,
    sender: Sender,
    schedule: RetrySchedule,
    wake: Arc<Notify>,
    /// Tells the loop that a place came free (a request was answered, an attempt written); it
    /// matters only when due deliveries wait for one.
    freed: Arc<Notify>,
    worker: String,
    lease_ms: i64,
    gone_deactivates: bool,
    honor_retry_after: bool,
    heartbeat: Arc<AtomicI64>,
    /// When the loop will next look for due deliveries unless woken (ms), or [`LOOKING`]. A
    /// task whose delivery falls due again later than that needn't wake it.
    next_look: AtomicI64,
    /// Hands finished attempts to the recorder task, which writes them in batches.
    recorder: mpsc::Sender<RecordJob>,
    /// The recorder's end, until `run` starts it.
    recorder_rx: Mutex<Option<mpsc::Receiver<RecordJob>>>,
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
        let (recorder, recorder_rx) = mpsc::channel(MAX_IN_FLIGHT * 2);
        Self {
            db,
            sender,
            schedule,
            wake,
            freed: Arc::default(),
            worker,
            lease_ms,
            gone_deactivates: true,
            honor_retry_after: true,
            heartbeat: Arc::default(),
            next_look: AtomicI64::new(LOOKING),
            recorder,
            recorder_rx: Mutex::new(Some(recorder_rx)),
        }
    }

    /// Whether a `410 Gone` answer deactivates the webhook at once (the default) rather than
    /// being retried like any other failure.
    pub fn gone_deactivates(mut self, yes: bool) -> Self {
        self.gone_deactivates = yes;
        self
    }

    /// Whether a `Retry-After` on a 429 or 503 answer can move the next attempt later than the
    /// schedule would (the default; capped at an hour).
    pub fn honor_retry_after(mut self, yes: bool) -> Self {
        self.honor_retry_after = yes;
        self
    }

    /// When the loop last went round (ms; 0 before it starts), for `/readyz`.
    pub fn heartbeat(&self) -> Arc<AtomicI64> {
        self.heartbeat.clone()
    }

    /// Runs until `stop` turns true, then waits for the attempts under way.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let jobs = self.recorder_rx.lock().expect("not poisoned").take().expect("run is called once");
        let recorder = tokio::spawn(record_batches(self.db.clone(), jobs));
        let this = Arc::new(self);
        let permits = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
        let in_flight: Arc<Mutex<InFlight>> = Arc::default();
        tracing::info!(worker = %this.worker, "dispatcher started");
        while !*stop.borrow() {
            this.heartbeat.store(now_ms(), Ordering::Relaxed);
            this.next_look.store(LOOKING, Ordering::SeqCst);
            let free = permits.available_permits();
            if free == 0 {
                // Every place is taken: nothing to claim, and nothing to look up until a task
                // finishes (the poll only keeps the heartbeat going).
                tokio::select! {
                    () = this.wake.notified() => {}
                    () = this.freed.notified() => {}
                    () = tokio::time::sleep(IDLE_POLL) => {}
                    _ = stop.changed() => {}
                }
                continue;
            }
            let (per_webhook, per_partner): (Vec<_>, Vec<_>) = {
                let held = in_flight.lock().expect("not poisoned");
                (
                    held.webhooks.iter().map(|(w, n)| (w.clone(), *n)).collect(),
                    held.partners.iter().map(|(p, n)| (p.clone(), *n)).collect(),
                )
            };
            let places = deliveries::Places {
                per_webhook: &per_webhook,
                per_partner: &per_partner,
                webhook_places: MAX_IN_FLIGHT_PER_WEBHOOK,
                total: MAX_IN_FLIGHT,
                reserve: RESERVED_PLACES,
            };
            let claimed = match deliveries::claim_due(
                &this.db,
                &this.worker,
                free as i64,
                now_ms() + LOOKAHEAD_MS,
                this.lease_ms,
                &places,
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
            // The batch's webhooks and events in two queries, not two per delivery.
            let (hooks, events) = match this.load_batch(&claimed).await {
                Ok(loaded) => loaded,
                Err(e) => {
                    // Each delivery loads its own below.
                    tracing::warn!(error = format!("{e:#}"), "could not load the claimed batch");
                    Default::default()
                }
            };
            for delivery in claimed {
                let loaded = Loaded {
                    webhook: hooks.get(&delivery.webhook).filter(|w| w.partner_id == delivery.partner).cloned(),
                    event: events
                        .get(&delivery.event_id)
                        .filter(|(p, _)| *p == delivery.partner)
                        .map(|(_, e)| e.clone()),
                };
                let permit = permits.clone().acquire_owned().await.expect("the semaphore is never closed");
                let slot = WebhookSlot::take(&in_flight, &delivery, &this.freed);
                let this = this.clone();
                tokio::spawn(async move {
                    let wait = delivery.due_at - now_ms();
                    if wait > 0 {
                        tokio::time::sleep(Duration::from_millis(wait as u64)).await;
                    }
                    let due_again = this.deliver(delivery, loaded, slot).await;
                    drop(permit);
                    // A new due time (a retry, say) the loop would not look for in time: wake it.
                    let look = this.next_look.load(Ordering::SeqCst);
                    match due_again {
                        Some(at) if look == LOOKING || at - LOOKAHEAD_MS / 2 < look => this.wake.notify_one(),
                        _ => this.freed.notify_one(),
                    }
                });
            }
            if got > 0 && got == free {
                continue; // slots were the limit: more may be due
            }
            // Claimed fewer than the free slots: the rest are not due, or their webhooks are
            // at their limit until a task finishes. A place coming free matters only then; a
            // new due time (an event, a retry) wakes the loop when it is sooner than the loop
            // would look anyway. The next claim waits until the next due delivery is half the
            // lookahead away, so that it takes what falls due in the other half too.
            let (wait, for_a_place) = match deliveries::next_due(&this.db).await {
                Ok(Some(due)) => match due - LOOKAHEAD_MS / 2 - now_ms() {
                    later if later > 0 => {
                        (Duration::from_millis(later.min(IDLE_POLL.as_millis() as i64) as u64), false)
                    }
                    // Due now but nothing claimable (its webhook is at its limit): a finishing
                    // task tells us; look again shortly in any case.
                    _ if got == 0 => (Duration::from_millis(50), true),
                    _ => (Duration::ZERO, false),
                },
                Ok(None) => (IDLE_POLL, false),
                Err(e) => {
                    tracing::error!(error = format!("{e:#}"), "could not find the next due delivery");
                    (Duration::from_secs(1), false)
                }
            };
            this.next_look.store(now_ms() + wait.as_millis() as i64, Ordering::SeqCst);
            tokio::select! {
                () = this.wake.notified() => {}
                () = this.freed.notified(), if for_a_place => {}
                () = tokio::time::sleep(wait) => {}
                _ = stop.changed() => {}
            }
        }
        // Let the attempts under way finish and be logged.
        let _ = permits.acquire_many(MAX_IN_FLIGHT as u32).await;
        drop(this); // the last sender: the recorder ends once it has written everything
        let _ = recorder.await;
        tracing::info!("dispatcher stopped");
    }

    /// The webhooks and events of a claimed batch, by id.
    async fn load_batch(
        &self,
        claimed: &[Claimed],
    ) -> anyhow::Result<(HashMap<WebhookId, webhooks::WebhookRecord>, HashMap<String, (PartnerId, EventBody)>)> {
        let mut hook_ids: Vec<&WebhookId> = claimed.iter().map(|c| &c.webhook).collect();
        hook_ids.sort();
        hook_ids.dedup();
        let mut event_ids: Vec<&str> = claimed.iter().map(|c| c.event_id.as_str()).collect();
        event_ids.sort_unstable();
        event_ids.dedup();
        // Two reader connections at once: the sends wait for the slower, not for both.
        Ok(tokio::try_join!(
            webhooks::records_by_id(&self.db, &hook_ids),
            deliveries::event_bodies(&self.db, &event_ids)
        )?)
    }

    /// One attempt of a claimed delivery, logged, with its next step decided. Answers when the
    /// delivery falls due again if it is still pending.
    #[tracing::instrument(skip_all, fields(delivery = %claimed.id, webhook = %claimed.webhook))]
    async fn deliver(&self, claimed: Claimed, loaded: Loaded, slot: WebhookSlot) -> Option<i64> {
        self.try_deliver(&claimed, loaded, slot).await.unwrap_or_else(|e| {
            // The lease runs out and the delivery is tried again: at least once, never lost.
            tracing::error!(error = format!("{e:#}"), "delivery step failed");
            Some(now_ms() + self.lease_ms)
        })
    }

    async fn try_deliver(&self, claimed: &Claimed, loaded: Loaded, slot: WebhookSlot) -> anyhow::Result<Option<i64>> {
        let webhook = match loaded.webhook {
            Some(webhook) => Some(webhook),
            None => webhooks::record(&self.db, &claimed.partner, &claimed.webhook).await?,
        };
        let Some(webhook) = webhook else {
            return Ok(None); // deleted since: its deliveries went with it
        };
        if !webhook.settings.active {
            deliveries::hold(&self.db, &claimed.id).await?;
            return Ok(None);
        }
        if let Some(per_second) = webhook.settings.rate_limit
            && let Err(at) = webhooks::take_send_slot(&self.db, &webhook.id, per_second).await?
        {
            // Its turn comes later; the wait is no failure and no attempt.
            deliveries::defer(&self.db, &claimed.id, at).await?;
            return Ok(Some(at));
        }
        let event = match loaded.event {
            Some(event) => Some(event),
            None => deliveries::event_body(&self.db, &claimed.partner, &claimed.event_id).await?,
        };
        let Some(event) = event else {
            return Ok(None);
        };
        let number = claimed.attempts + 1;
        let (request, mut result) = delivery::attempt(&self.sender, &webhook, &event).await;
        // The webhook's request is done: another may go to it while this one is written.
        drop(slot);
        let next = self.next_step(number, &mut result, &event.id);
        // One line per attempt, with what an operator searches by; never a secret (the body,
        // the headers and the URL's secrets stay in the database).
        tracing::info!(
            partner = %claimed.partner,
            event = %event.id,
            attempt = number,
            outcome = if result.success { "success" } else { "failure" },
            class = result.class(),
            status = result.status_code,
            latency_ms = result.latency_ms,
            error = result.error.as_deref(),
            ?next,
            "attempt"
        );
        let finished = FinishedAttempt {
            delivery: Some(claimed.id.clone()),
            partner: claimed.partner.clone(),
            webhook: claimed.webhook.clone(),
            event,
            number,
            request,
            result,
            origin: claimed.origin,
            next,
        };
        let due_again = match finished.next {
            Next::RetryAt(at) => Some(at),
            _ => None,
        };
        let (written, reply) = oneshot::channel();
        self.recorder.send((finished, written)).await.map_err(|_| anyhow::anyhow!("the recorder stopped"))?;
        reply.await.map_err(|_| anyhow::anyhow!("the recorder stopped"))??;
        Ok(due_again)
    }

    /// After attempt `number`: done, retry after the schedule's wait (or the longer one the
    /// receiver asked for, which the attempt's error then mentions), or give up.
    fn next_step(&self, number: i64, result: &mut AttemptResult, event_id: &str) -> Next {
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
            Some(scheduled) => {
                let asked = result.retry_after_secs.filter(|_| self.honor_retry_after).map(Duration::from_secs);
                let delay = match asked {
                    Some(asked) if asked > scheduled => {
                        if let Some(error) = result.error.as_mut() {
                            error.push_str(&format!(
                                "; the next attempt waits {} as asked, not the scheduled {}",
                                humantime::format_duration(asked),
                                humantime::format_duration(scheduled)
                            ));
                        }
                        asked
                    }
                    _ => scheduled,
                };
                Next::RetryAt(now_ms() + delay.as_millis() as i64)
            }
            None => Next::GiveUp {
                reason: format!(
                    "{number} attempts in a row failed to deliver event {event_id}; the last: {}",
                    result.error.as_deref().unwrap_or("failed")
                ),
            },
        }
    }
}

/// The recorder: writes finished attempts (the log, the counters, the delivery's next step) in
/// one transaction per batch of whatever has queued up, up to [`MAX_BATCH`], and tells each
/// attempt's task when it is written. When a batch fails, its attempts are written one by one,
/// so one bad attempt can't hold up the rest.
async fn record_batches(db: app::store::Db, mut jobs: mpsc::Receiver<RecordJob>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while jobs.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let (attempts, replies): (Vec<FinishedAttempt>, Vec<_>) = batch.drain(..).unzip();
        let started = std::time::Instant::now();
        let written = deliveries::record_many(&db, &attempts).await;
        tracing::debug!(n = attempts.len(), ms = started.elapsed().as_secs_f64() * 1000.0, "recorded a batch");
        match written {
            Ok(()) => {
                for reply in replies {
                    let _ = reply.send(Ok(()));
                }
            }
            Err(e) if attempts.len() > 1 => {
                tracing::warn!(
                    error = format!("{e:#}"),
                    n = attempts.len(),
                    "a batch of attempts failed; writing them one by one"
                );
                for (attempt, reply) in attempts.iter().zip(replies) {
                    let _ = reply.send(deliveries::record_many(&db, std::slice::from_ref(attempt)).await);
                }
            }
            Err(e) => {
                for reply in replies {
                    let _ = reply.send(Err(anyhow::anyhow!("{e:#}")));
                }
            }
        }
    }
}
