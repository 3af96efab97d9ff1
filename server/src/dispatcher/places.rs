//! The places a dispatcher holds: requests under way per webhook and per partner, and how many
//! each webhook may have, adapted to how its receiver answers.
//!
//! A webhook new to this process may have [`START_PLACES`] requests under way at once. Its
//! limit then follows its answers, as TCP's congestion window follows a network's: each 2xx
//! that came fast adds one place until the first sign of trouble (so the limit doubles with
//! each round of answers), and after it one place per limit's worth of fast answers; a sign of
//! trouble (a timeout, a connection that failed or broke off, 429, 5xx) halves it, down to
//! one. A 2xx that took [`SLOW_MS`] or more neither grows nor shrinks it. The limit never
//! passes [`MOST_PLACES`] nor the cap the partner set on the webhook; the claim reads that cap
//! too, so a webhook this process has not answered for yet keeps to it as well.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use app::delivery::AttemptResult;
use app::domain::{FailureCause, MAX_CONCURRENT_REQUESTS, PartnerId, WebhookId};
use app::store::queue::{Claimed, WebhookPlaces};
use tokio::sync::{Notify, OwnedSemaphorePermit};

/// Requests a webhook may have under way at once before any of its answers came back.
pub const START_PLACES: usize = 4;
/// Most requests any webhook may have under way at once.
pub const MOST_PLACES: usize = MAX_CONCURRENT_REQUESTS as usize;
/// A 2xx that took this long (ms) or longer says the receiver is busy: no more places.
pub const SLOW_MS: i64 = 1_000;
/// A webhook's limit is forgotten after this long without requests (back to the start).
const FORGET_AFTER: Duration = Duration::from_secs(600);

/// What an answer says about the receiver's load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Load {
    /// A 2xx in good time: it could take more.
    Light,
    /// Nothing to learn (a slow 2xx, a 4xx, a refused target, a template that failed).
    Unknown,
    /// It timed out, refused the connection, broke off or said 429/5xx: it wants fewer.
    Heavy,
}

impl Load {
    fn of(result: &AttemptResult) -> Self {
        match (result.success, result.status_code, result.cause) {
            (true, ..) if result.latency_ms < SLOW_MS => Self::Light,
            (true, ..) => Self::Unknown,
            (false, Some(429 | 500..=599), _) => Self::Heavy,
            (false, None, Some(FailureCause::Timeout | FailureCause::ConnectError | FailureCause::RequestError)) => {
                Self::Heavy
            }
            _ => Self::Unknown,
        }
    }
}

/// One webhook's adaptive limit.
#[derive(Debug, Clone)]
struct Limit {
    /// Places, fractional while growing by a fraction per answer.
    places: f64,
    /// Below this the limit grows by one per fast answer; at or above, by one per limit's
    /// worth. Set to half the limit at each sign of trouble.
    threshold: f64,
    /// When a request to it last started or ended.
    used: Instant,
}

impl Limit {
    fn new() -> Self {
        Self { places: START_PLACES as f64, threshold: MOST_PLACES as f64, used: Instant::now() }
    }

    fn places(&self) -> usize {
        self.places as usize
    }

    /// Learns from one answer; `cap` is the most the webhook may have (its partner's setting),
    /// `taken` the requests it had under way with this one. Places grow only while at least
    /// half are in use: a receiver sent one request at a time has shown nothing about forty.
    fn learn(&mut self, load: Load, cap: usize, taken: usize) {
        let cap = cap.clamp(1, MOST_PLACES) as f64;
        match load {
            Load::Light if (taken as f64) * 2.0 < self.places => {}
            Load::Light if self.places < self.threshold => self.places += 1.0,
            Load::Light => self.places += 1.0 / self.places,
            Load::Unknown => {}
            Load::Heavy => {
                self.places = (self.places / 2.0).max(1.0);
                self.threshold = self.places;
            }
        }
        self.places = self.places.min(cap);
        self.used = Instant::now();
    }
}

/// Requests under way, per webhook and per partner, and each webhook's limit: what a claim
/// shares places by.
#[derive(Default)]
pub(super) struct InFlight {
    webhooks: HashMap<WebhookId, usize>,
    pub(super) partners: HashMap<PartnerId, usize>,
    limits: HashMap<WebhookId, Limit>,
    /// When limits unused for long were last forgotten.
    swept: Option<Instant>,
}

impl InFlight {
    /// The places of every webhook with requests under way or a limit of its own, for a claim.
    /// Forgets, now and then, the limits of webhooks long unused.
    pub(super) fn webhook_places(&mut self) -> Vec<WebhookPlaces> {
        if self.swept.is_none_or(|at| at.elapsed() > FORGET_AFTER / 10) {
            let webhooks = &self.webhooks;
            self.limits.retain(|w, limit| webhooks.contains_key(w) || limit.used.elapsed() < FORGET_AFTER);
            self.swept = Some(Instant::now());
        }
        let mut places: Vec<WebhookPlaces> = self
            .webhooks
            .iter()
            .map(|(w, taken)| WebhookPlaces { webhook: w.clone(), taken: *taken, limit: self.limit(w) })
            .collect();
        places.extend(
            self.limits
                .iter()
                .filter(|(w, limit)| !self.webhooks.contains_key(*w) && limit.places() != START_PLACES)
                .map(|(w, limit)| WebhookPlaces { webhook: w.clone(), taken: 0, limit: limit.places() }),
        );
        places
    }

    /// The webhook's limit in this process.
    pub(super) fn limit(&self, webhook: &WebhookId) -> usize {
        self.limits.get(webhook).map_or(START_PLACES, Limit::places)
    }

    fn learn(&mut self, webhook: &WebhookId, result: &AttemptResult, cap: usize) {
        let taken = self.webhooks.get(webhook).copied().unwrap_or(1);
        self.limits.entry(webhook.clone()).or_insert_with(Limit::new).learn(Load::of(result), cap, taken);
    }
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

/// What a claimed delivery holds until its receiver answers: one of the process's places
/// ([`MAX_IN_FLIGHT`](super::MAX_IN_FLIGHT)) and its webhook's and partner's.
pub(super) struct Held {
    pub(super) place: OwnedSemaphorePermit,
    pub(super) slot: WebhookSlot,
}

impl Held {
    /// Gives them back once the receiver has answered, the webhook's limit adapted to the
    /// answer (`cap` is the partner's cap on the webhook, if any); the loop hears of it.
    pub(super) fn answered(self, result: &AttemptResult, cap: Option<u32>) {
        let Self { place, slot } = self;
        drop(place);
        slot.answered(result, cap);
    }
}

/// One of a webhook's in-flight places and of its partner's, held while a request to it is
/// under way and given back (telling the loop a place is free) when dropped.
pub(super) struct WebhookSlot {
    webhook: WebhookId,
    partner: PartnerId,
    counts: Arc<Mutex<InFlight>>,
    freed: Arc<Notify>,
}

impl WebhookSlot {
    pub(super) fn take(counts: &Arc<Mutex<InFlight>>, claimed: &Claimed, freed: &Arc<Notify>) -> Self {
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

    /// Gives the place back, the webhook's limit adapted to how its receiver answered; `cap`
    /// is the partner's cap on the webhook, if any.
    pub(super) fn answered(self, result: &AttemptResult, cap: Option<u32>) {
        let cap = cap.map_or(MOST_PLACES, |n| n as usize);
        self.counts.lock().expect("not poisoned").learn(&self.webhook, result, cap);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: Option<u16>, cause: Option<FailureCause>, latency_ms: i64) -> AttemptResult {
        AttemptResult {
            success: matches!(status, Some(200..=299)),
            status_code: status,
            latency_ms,
            response_body: None,
            error: None,
            cause,
            retry_after_secs: None,
        }
    }

    fn ok() -> AttemptResult {
        answer(Some(200), None, 3)
    }

    #[test]
    fn fast_answers_double_the_places_each_round_up_to_the_most() {
        let mut limit = Limit::new();
        for _ in 0..START_PLACES {
            limit.learn(Load::of(&ok()), MOST_PLACES, MOST_PLACES);
        }
        assert_eq!(limit.places(), 2 * START_PLACES, "one round of answers");
        for _ in 0..1_000 {
            limit.learn(Load::of(&ok()), MOST_PLACES, MOST_PLACES);
        }
        assert_eq!(limit.places(), MOST_PLACES);
    }

    #[test]
    fn trouble_halves_the_places_down_to_one_and_growth_slows_after_it() {
        let mut limit = Limit::new();
        for _ in 0..28 {
            limit.learn(Load::of(&ok()), MOST_PLACES, MOST_PLACES);
        }
        assert_eq!(limit.places(), 32);
        for trouble in [
            answer(Some(429), None, 5),
            answer(Some(503), None, 5),
            answer(None, Some(FailureCause::Timeout), 10_000),
            answer(None, Some(FailureCause::ConnectError), 1),
        ] {
            let before = limit.places();
            limit.learn(Load::of(&trouble), MOST_PLACES, MOST_PLACES);
            assert_eq!(limit.places(), (before / 2).max(1), "{trouble:?}");
        }
        assert_eq!(limit.places(), 2);
        for _ in 0..6 {
            limit.learn(Load::of(&answer(Some(500), None, 5)), MOST_PLACES, MOST_PLACES);
        }
        assert_eq!(limit.places(), 1, "never fewer than one");
        // Past the trouble, one place per limit's worth of fast answers.
        for _ in 0..3 {
            limit.learn(Load::of(&ok()), MOST_PLACES, MOST_PLACES);
        }
        assert_eq!(limit.places(), 2, "1, then 2, 2.5, 2.9");
    }

    #[test]
    fn slow_successes_and_the_partners_faults_teach_nothing() {
        let mut limit = Limit::new();
        for nothing in [
            answer(Some(200), None, SLOW_MS),
            answer(Some(404), None, 5),
            answer(Some(410), None, 5),
            answer(None, Some(FailureCause::RefusedTarget), 0),
            answer(None, Some(FailureCause::InvalidRequest), 0),
        ] {
            limit.learn(Load::of(&nothing), MOST_PLACES, MOST_PLACES);
            assert_eq!(limit.places(), START_PLACES, "{nothing:?}");
        }
    }

    #[test]
    fn places_grow_only_while_half_are_in_use() {
        let mut limit = Limit::new();
        for _ in 0..100 {
            limit.learn(Load::of(&ok()), MOST_PLACES, 1);
        }
        assert_eq!(limit.places(), START_PLACES, "one at a time shows nothing about more");
        limit.learn(Load::of(&ok()), MOST_PLACES, START_PLACES / 2);
        assert_eq!(limit.places(), START_PLACES + 1);
    }

    #[test]
    fn the_partners_cap_bounds_the_places() {
        let mut limit = Limit::new();
        limit.learn(Load::of(&ok()), 2, MOST_PLACES);
        assert_eq!(limit.places(), 2);
        for _ in 0..100 {
            limit.learn(Load::of(&ok()), 6, MOST_PLACES);
        }
        assert_eq!(limit.places(), 6);
        limit.learn(Load::of(&ok()), 0, MOST_PLACES);
        assert_eq!(limit.places(), 1, "a cap is at least one");
    }
}
