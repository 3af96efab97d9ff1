//! One attempt of a claimed delivery: build, send, decide what comes next, hand it to the
//! recorder.

use app::delivery;
use app::domain::{EventBody, EventId};
use app::store::attempts::{FinishedAttempt, Next};
use app::store::events;
use app::store::queue::{self, Claimed};
use app::store::{now_ms, webhooks};
use tokio::sync::oneshot;

use super::places::Held;
use super::{AttemptResult, Dispatcher};

/// How long a delivery waits when the template sandbox could not render it (busy, starting).
const SANDBOX_WAIT_MS: i64 = 1_000;

/// What the batch load found for one delivery; `None` parts are loaded on their own.
pub(super) struct Loaded {
    pub(super) webhook: Option<webhooks::WebhookRecord>,
    pub(super) event: Option<EventBody>,
}

impl Dispatcher {
    /// One attempt of a claimed delivery, logged, with its next step decided. Answers when the
    /// delivery falls due again if it is still pending.
    #[tracing::instrument(skip_all, fields(delivery = %claimed.id, webhook = %claimed.webhook))]
    pub(super) async fn deliver(&self, claimed: Claimed, loaded: Loaded, held: Held) -> Option<i64> {
        self.try_deliver(&claimed, loaded, held).await.unwrap_or_else(|e| {
            // The lease runs out and the delivery is tried again: at least once, never lost.
            tracing::error!(error = format!("{e:#}"), "delivery step failed");
            Some(now_ms() + self.lease_ms)
        })
    }

    async fn try_deliver(&self, claimed: &Claimed, loaded: Loaded, held: Held) -> anyhow::Result<Option<i64>> {
        let webhook = match loaded.webhook {
            Some(webhook) => Some(webhook),
            None => webhooks::record(&self.db, &claimed.partner, &claimed.webhook).await?,
        };
        let Some(webhook) = webhook else {
            return Ok(None); // deleted since: its deliveries went with it
        };
        if !webhook.settings.active {
            queue::hold(&self.db, &claimed.id).await?;
            return Ok(None);
        }
        if let Some(per_second) = webhook.settings.rate_limit
            && let Err(at) = webhooks::take_send_slot(&self.db, &webhook.id, per_second).await?
        {
            // Its turn comes later; the wait is no failure and no attempt.
            queue::defer(&self.db, &claimed.id, at).await?;
            return Ok(Some(at));
        }
        let event = match loaded.event {
            Some(event) => Some(event),
            None => events::event_body(&self.db, &claimed.partner, &claimed.event_id).await?,
        };
        let Some(event) = event else {
            return Ok(None);
        };
        let number = claimed.attempts + 1;
        let (request, mut result) = match delivery::attempt(&self.sender, &webhook, &event).await {
            Ok(attempted) => attempted,
            Err(busy) => {
                // The template sandbox could not render now: no fault of the partner's, so no
                // attempt is counted; the delivery waits a moment and is claimed again.
                drop(held);
                tracing::warn!(partner = %claimed.partner, why = %busy, "delivery waits for the template sandbox");
                let at = now_ms() + SANDBOX_WAIT_MS;
                queue::defer(&self.db, &claimed.id, at).await?;
                return Ok(Some(at));
            }
        };
        // The request is done: its place goes to another while the attempt waits to be written
        // (once there is room for it among those waiting), and its answer adapts how many
        // requests its webhook may have.
        let _unwritten =
            self.unwritten.clone().acquire_owned().await.map_err(|_| anyhow::anyhow!("the dispatcher stopped"))?;
        held.answered(&result, webhook.settings.max_concurrent_requests);
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

    /// After attempt `number`: the policy's decision, its note (the receiver's longer wait
    /// chosen) added to the attempt's error.
    fn next_step(&self, number: i64, result: &mut AttemptResult, event_id: &EventId) -> Next {
        let decision = self.policy.decide(result, number, event_id, now_ms());
        if let (Some(note), Some(error)) = (decision.note, result.error.as_mut()) {
            error.push_str("; ");
            error.push_str(&note);
        }
        decision.next
    }
}
