//! The dispatcher's loop: claim due deliveries (a lease, committed before any HTTP call), send
//! each in its own task, log the attempt and schedule the retry or finish. It sleeps until the
//! next delivery falls due or until it is woken (a new event, a reactivated webhook, a task
//! that finished), so new events go out at once and retries fire on time.
//!
//! - `mod.rs`: the loop (claim, start, sleep);
//! - `places.rs`: the places held per webhook and partner, given back when a request ends,
//!   and each webhook's limit, adapted to how its receiver answers;
//! - `attempt.rs`: one attempt (build, send, decide with the [`RetryPolicy`], hand over);
//! - `recorder.rs`: the task that writes attempts in batches;
//! - `listen.rs`: PostgreSQL's `LISTEN` for work other processes queued.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod attempt;
mod listen;
mod places;
mod recorder;

use app::delivery::{AttemptResult, Sender};
use app::domain::{EventBody, EventId, PartnerId, RetryPolicy, RetrySchedule, WebhookId};
use app::store::queue::{self, Claimed};
use app::store::{Db, now_ms, webhooks};
use tokio::sync::{Notify, Semaphore, mpsc, watch};

use attempt::Loaded;
pub use listen::listen_for_work;
use places::{Held, InFlight, WebhookSlot};
use recorder::RecordJob;

/// Requests under way at once, all webhooks together: a place is taken when a delivery is
/// claimed and given back when its receiver has answered.
pub const MAX_IN_FLIGHT: usize = 256;
/// Attempts answered and not yet written, at most: the recorder's queue. A request's place is
/// given back as soon as the answer is in, while its attempt waits to be written, so the places
/// are not held through the write; when this many wait, requests keep their places until the
/// recorder catches up. A killed process repeats at most these and the requests under way.
pub const MAX_UNWRITTEN: usize = MAX_IN_FLIGHT * 2;
pub use places::START_PLACES;
/// Places no partner may take while the others have none (see
/// [`claim_due`](app::store::queue::claim_due)): a partner that starts sending finds them
/// free however slow the others' receivers are. A partner alone still has all the others.
pub const RESERVED_PLACES: usize = MAX_IN_FLIGHT / 8;
/// Longest sleep: wakes and due times drive the loop in this process; this picks up work that
/// another process queued (`portal event publish`, a second portal on PostgreSQL) within a second.
const IDLE_POLL: Duration = Duration::from_secs(1);
/// How far ahead a claim reaches (ms): deliveries falling due within it are claimed together
/// and each waits in its task for its own time. Deliveries that fall due a few milliseconds
/// apart (a wave of retries) then cost one claim between them, not one each, so the wave keeps
/// to its schedule instead of falling behind it.
const LOOKAHEAD_MS: i64 = 40;
/// What [`Dispatcher::next_look`] holds while the loop is looking at the database: a task that
/// leaves a delivery pending then always wakes it.
const LOOKING: i64 = i64::MIN;

/// The running dispatcher's parts.
pub struct Dispatcher {
    db: Db,
    sender: Sender,
    policy: RetryPolicy,
    wake: Arc<Notify>,
    /// Tells the loop that a place came free (a request was answered, an attempt written); it
    /// matters only when due deliveries wait for one.
    freed: Arc<Notify>,
    worker: String,
    lease_ms: i64,
    heartbeat: Arc<AtomicI64>,
    /// When the loop will next look for due deliveries unless woken (ms), or [`LOOKING`]. A
    /// task whose delivery falls due again later than that needn't wake it.
    next_look: AtomicI64,
    /// Hands finished attempts to the recorder task, which writes them in batches.
    recorder: mpsc::Sender<RecordJob>,
    /// One permit per attempt answered and not yet written ([`MAX_UNWRITTEN`]).
    unwritten: Arc<Semaphore>,
    /// The recorder's end, until `run` starts it.
    recorder_rx: Mutex<Option<mpsc::Receiver<RecordJob>>>,
}

impl Dispatcher {
    /// A dispatcher over `db`; `timeout` is the receivers' time limit (leases outlast it).
    pub fn new(db: Db, sender: Sender, schedule: RetrySchedule, wake: Arc<Notify>, timeout: Duration) -> Self {
        let worker = format!("{}-{}", std::process::id(), ulid::Ulid::new());
        let lease_ms = (timeout.as_millis() as i64) * 3 + 5_000;
        let (recorder, recorder_rx) = mpsc::channel(MAX_UNWRITTEN);
        Self {
            db,
            sender,
            policy: RetryPolicy { schedule, ..RetryPolicy::default() },
            wake,
            freed: Arc::default(),
            worker,
            lease_ms,
            heartbeat: Arc::default(),
            next_look: AtomicI64::new(LOOKING),
            recorder,
            unwritten: Arc::new(Semaphore::new(MAX_UNWRITTEN)),
            recorder_rx: Mutex::new(Some(recorder_rx)),
        }
    }

    /// Whether a `410 Gone` answer deactivates the webhook at once (the default) rather than
    /// being retried like any other failure.
    pub fn gone_deactivates(mut self, yes: bool) -> Self {
        self.policy.gone_deactivates = yes;
        self
    }

    /// Whether a `Retry-After` on a 429 or 503 answer can move the next attempt later than the
    /// schedule would (the default; capped at an hour).
    pub fn honor_retry_after(mut self, yes: bool) -> Self {
        self.policy.honor_retry_after = yes;
        self
    }

    /// When the loop last went round (ms; 0 before it starts), for `/readyz`.
    pub fn heartbeat(&self) -> Arc<AtomicI64> {
        self.heartbeat.clone()
    }

    /// Runs until `stop` turns true, then waits for the attempts under way: claim what is due
    /// for the free places, start each in its own task, sleep until more is due or a place
    /// comes free.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let jobs = self.recorder_rx.lock().expect("not poisoned").take().expect("run is called once");
        let recorder = tokio::spawn(recorder::record_batches(self.db.clone(), jobs));
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
                this.sleep(IDLE_POLL, true, &mut stop).await;
                continue;
            }
            let claimed = this.claim(free, &in_flight).await;
            let got = claimed.len();
            this.start(claimed, &permits, &in_flight).await;
            if got > 0 && got == free {
                continue; // slots were the limit: more may be due
            }
            let (wait, for_a_place) = this.next_wait(got).await;
            this.next_look.store(now_ms() + wait.as_millis() as i64, Ordering::SeqCst);
            this.sleep(wait, for_a_place, &mut stop).await;
        }
        // Let the attempts under way finish and be logged.
        let _ = permits.acquire_many(MAX_IN_FLIGHT as u32).await;
        let _ = this.unwritten.acquire_many(MAX_UNWRITTEN as u32).await;
        drop(this); // the last sender: the recorder ends once it has written everything
        let _ = recorder.await;
        tracing::info!("dispatcher stopped");
    }

    /// Sleeps `wait`, or until woken (new work), a place comes free (when `for_a_place`), or
    /// `stop` changes.
    async fn sleep(&self, wait: Duration, for_a_place: bool, stop: &mut watch::Receiver<bool>) {
        tokio::select! {
            () = self.wake.notified() => {}
            () = self.freed.notified(), if for_a_place => {}
            () = tokio::time::sleep(wait) => {}
            _ = stop.changed() => {}
        }
    }

    /// Leases up to `free` due deliveries, shared fairly by the places held (`in_flight`).
    async fn claim(&self, free: usize, in_flight: &Mutex<InFlight>) -> Vec<Claimed> {
        let (per_webhook, per_partner): (Vec<_>, Vec<_>) = {
            let mut held = in_flight.lock().expect("not poisoned");
            (held.webhook_places(), held.partners.iter().map(|(p, n)| (p.clone(), *n)).collect())
        };
        let places = queue::Places {
            per_webhook: &per_webhook,
            per_partner: &per_partner,
            webhook_places: START_PLACES,
            total: MAX_IN_FLIGHT,
            reserve: RESERVED_PLACES,
        };
        let horizon = now_ms() + LOOKAHEAD_MS;
        let started = std::time::Instant::now();
        let claimed = queue::claim_due(&self.db, &self.worker, free as i64, horizon, self.lease_ms, &places)
            .await
            .unwrap_or_else(|e| {
                tracing::error!(error = format!("{e:#}"), "could not claim deliveries");
                Vec::new()
            });
        tracing::debug!(free, n = claimed.len(), ms = started.elapsed().as_secs_f64() * 1000.0, "claimed");
        let found = if claimed.is_empty() { "none" } else { "some" };
        metrics::counter!("portal_claims_total", "found" => found).increment(1);
        claimed
    }

    /// Starts each claimed delivery in its own task, holding a place and its webhook's slot
    /// until its receiver answers.
    async fn start(
        self: &Arc<Self>,
        claimed: Vec<Claimed>,
        permits: &Arc<Semaphore>,
        in_flight: &Arc<Mutex<InFlight>>,
    ) {
        // The batch's webhooks and events in two queries, not two per delivery.
        let (hooks, events) = self.load_batch(&claimed).await.unwrap_or_else(|e| {
            // Each delivery loads its own.
            tracing::warn!(error = format!("{e:#}"), "could not load the claimed batch");
            Default::default()
        });
        for delivery in claimed {
            let loaded = Loaded {
                webhook: hooks.get(&delivery.webhook).filter(|w| w.partner_id == delivery.partner).cloned(),
                event: events.get(&delivery.event_id).filter(|(p, _)| *p == delivery.partner).map(|(_, e)| e.clone()),
            };
            let permit = permits.clone().acquire_owned().await.expect("the semaphore is never closed");
            let slot = WebhookSlot::take(in_flight, &delivery, &self.freed);
            let this = self.clone();
            tokio::spawn(async move {
                let wait = delivery.due_at - now_ms();
                if wait > 0 {
                    tokio::time::sleep(Duration::from_millis(wait as u64)).await;
                }
                let due_again = this.deliver(delivery, loaded, Held { place: permit, slot }).await;
                // A new due time (a retry, say) the loop would not look for in time: wake it.
                let look = this.next_look.load(Ordering::SeqCst);
                match due_again {
                    Some(at) if look == LOOKING || at - LOOKAHEAD_MS / 2 < look => this.wake.notify_one(),
                    _ => this.freed.notify_one(),
                }
            });
        }
    }

    /// After claiming `got`, fewer than the free places: how long to sleep, and whether a place
    /// coming free should end the sleep. The rest are not due, or their webhooks are at their
    /// limit until a task finishes; a place coming free matters only then. A new due time (an
    /// event, a retry) wakes the loop when it is sooner than the loop would look anyway. The
    /// next claim waits until the next due delivery is half the lookahead away, so that it
    /// takes what falls due in the other half too.
    async fn next_wait(&self, got: usize) -> (Duration, bool) {
        match queue::next_due(&self.db).await {
            Ok(Some(due)) => match due - LOOKAHEAD_MS / 2 - now_ms() {
                later if later > 0 => (Duration::from_millis(later.min(IDLE_POLL.as_millis() as i64) as u64), false),
                // Due now but nothing claimable: its webhooks, or its partner, hold all their
                // places. Only a request ending changes that, and its task tells us (`freed`);
                // looking again on a timer would claim nothing, over and over, while a hostile
                // partner's receivers hang.
                _ if got == 0 => (IDLE_POLL, true),
                _ => (Duration::ZERO, false),
            },
            Ok(None) => (IDLE_POLL, false),
            Err(e) => {
                tracing::error!(error = format!("{e:#}"), "could not find the next due delivery");
                (Duration::from_secs(1), false)
            }
        }
    }

    /// The webhooks and events of a claimed batch, by id.
    async fn load_batch(
        &self,
        claimed: &[Claimed],
    ) -> anyhow::Result<(HashMap<WebhookId, webhooks::WebhookRecord>, HashMap<EventId, (PartnerId, EventBody)>)> {
        let mut hook_ids: Vec<&WebhookId> = claimed.iter().map(|c| &c.webhook).collect();
        hook_ids.sort();
        hook_ids.dedup();
        let mut event_ids: Vec<&EventId> = claimed.iter().map(|c| &c.event_id).collect();
        event_ids.sort_unstable();
        event_ids.dedup();
        // Two reader connections at once: the sends wait for the slower, not for both.
        Ok(tokio::try_join!(
            webhooks::records_by_id(&self.db, &hook_ids),
            app::store::events::event_bodies(&self.db, &event_ids)
        )?)
    }
}
