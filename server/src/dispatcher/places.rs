//! The places a dispatcher holds: requests under way per webhook and per partner.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use app::domain::{PartnerId, WebhookId};
use app::store::queue::Claimed;
use tokio::sync::Notify;

/// Requests under way, per webhook and per partner: what a claim shares places by.
#[derive(Default)]
pub(super) struct InFlight {
    pub(super) webhooks: HashMap<WebhookId, usize>,
    pub(super) partners: HashMap<PartnerId, usize>,
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

/// One of a webhook's in-flight places ([`MAX_IN_FLIGHT_PER_WEBHOOK`](super::MAX_IN_FLIGHT_PER_WEBHOOK)) and of its partner's,
/// held while a request to it is under way and given back (telling the loop a place is free)
/// when dropped.
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
