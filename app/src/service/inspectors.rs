//! Request inspectors: a partner makes a throwaway capture URL, points a webhook (or a test)
//! at it, and sees what arrives. [`Inspectors`] is the receiving side, shared by the capture
//! route (`/inspect/{id}`, open to anyone who has the URL) and the dispatcher, which hands the
//! requests for capture URLs to it in-process ([`crate::delivery::LocalReceiver`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::audit::note;
use crate::delivery::{LocalAnswer, LocalReceiver, OutgoingRequest};
use crate::domain::{
    Actor, AuditAction, CAPTURED_HEADERS, CaptureVerdict, CapturedRequest, Counted, INSPECTOR_REQUESTS_PER_SECOND,
    InspectorId, InspectorView, PartnerId, capture_url, captured_by,
};
use crate::error::AppError;
use crate::state::AppState;
use crate::store::{Db, inspectors as store};

/// Webhooks of the partner pointing at an inspector that one request is checked against.
const CHECKED_WEBHOOKS: u32 = 3;
/// Signature checks of captured requests under way at once, over all inspectors: each hashes
/// up to 256 KiB a few times, on the blocking pool.
const CHECKS_AT_ONCE: usize = 2;

/// A new inspector for the partner, refused when it has as many as the operator allows.
pub async fn create(state: &AppState, partner: &PartnerId, by: &Actor) -> Result<InspectorView, AppError> {
    let quotas = &state.settings.quotas;
    let created = store::create(&state.db, partner, &state.settings.public_url, quotas.inspectors).await?;
    let view = created.ok_or_else(|| AppError::LimitReached(Counted::Inspectors.refusal(quotas)))?;
    tracing::info!(partner = %partner, inspector = %view.id, "request inspector created");
    note(&state.db, partner, by, AuditAction::InspectorCreated, &view.id.to_string()).await;
    Ok(view)
}

/// The partner's inspectors, newest first.
pub async fn list(state: &AppState, partner: &PartnerId) -> Result<Vec<InspectorView>, AppError> {
    Ok(store::list(&state.db, partner, &state.settings.public_url).await?)
}

/// One of the partner's inspectors; [`AppError::NotFound`] for another partner's.
pub async fn get(state: &AppState, partner: &PartnerId, id: &InspectorId) -> Result<InspectorView, AppError> {
    store::get(&state.db, partner, id, &state.settings.public_url).await?.ok_or(AppError::NotFound)
}

/// What one of the partner's inspectors captured, newest first.
pub async fn requests(
    state: &AppState,
    partner: &PartnerId,
    id: &InspectorId,
) -> Result<Vec<CapturedRequest>, AppError> {
    store::requests(&state.db, partner, id).await?.ok_or(AppError::NotFound)
}

/// Deletes one of the partner's inspectors and what it captured.
pub async fn delete(state: &AppState, partner: &PartnerId, by: &Actor, id: &InspectorId) -> Result<(), AppError> {
    if !store::delete(&state.db, partner, id).await? {
        return Err(AppError::NotFound);
    }
    tracing::info!(partner = %partner, inspector = %id, "request inspector deleted");
    note(&state.db, partner, by, AuditAction::InspectorDeleted, &id.to_string()).await;
    Ok(())
}

/// Most inspectors counted in one second. A stranger can send well-formed made-up ids as fast
/// as they like: the count of one second is dropped whole when the next begins (never searched
/// request by request), and at this size refuses ids it has not counted yet, until the second
/// ends (let through uncounted, they would pass any inspector's limit, the flooder's own).
const COUNTED_PER_SECOND: usize = 10_000;

/// The requests each inspector received in the current second.
#[derive(Debug, Default)]
struct ThisSecond {
    second: u64,
    counts: HashMap<InspectorId, u32>,
}

impl ThisSecond {
    /// Counts a request to `id` in `second`; `false` past [`INSPECTOR_REQUESTS_PER_SECOND`],
    /// and for an id not counted yet once [`COUNTED_PER_SECOND`] are. A caller that read the
    /// clock before another took the lock may bring an earlier second: it counts in the current
    /// one (the clock never goes back, so the count is never cleared twice).
    fn admit(&mut self, id: &InspectorId, second: u64) -> bool {
        if second > self.second {
            self.second = second;
            self.counts.clear();
        }
        if self.counts.len() >= COUNTED_PER_SECOND && !self.counts.contains_key(id) {
            return false;
        }
        let count = self.counts.entry(id.clone()).or_insert(0);
        *count += 1;
        *count <= INSPECTOR_REQUESTS_PER_SECOND
    }
}

/// The receiving side of every inspector: checks and keeps what arrives at a capture URL.
/// Cheap to clone; clones share the rate limit.
#[derive(Debug, Clone)]
pub struct Inspectors {
    db: Db,
    public: url::Url,
    /// This second's requests per inspector.
    seconds: Arc<Mutex<ThisSecond>>,
    checks: Arc<tokio::sync::Semaphore>,
    started: Instant,
}

impl Inspectors {
    /// The inspectors of the portal reached at `public`.
    pub fn new(db: Db, public: url::Url) -> Self {
        Self {
            db,
            public,
            seconds: Arc::default(),
            checks: Arc::new(tokio::sync::Semaphore::new(CHECKS_AT_ONCE)),
            started: Instant::now(),
        }
    }

    /// Counts one request to `id` in this second; `false` past [`INSPECTOR_REQUESTS_PER_SECOND`].
    fn admit(&self, id: &InspectorId) -> bool {
        let second = self.started.elapsed().as_secs();
        self.seconds.lock().unwrap_or_else(std::sync::PoisonError::into_inner).admit(id, second)
    }

    /// Takes a request that arrived at inspector `id` (the text of the capture URL's last
    /// segment): 200 with the captured request's id, 404 for no such inspector (or an expired
    /// one), 429 past the rate, 500 when it could not be kept.
    pub async fn receive(&self, id: &str, method: &str, headers: Vec<(String, String)>, body: &str) -> LocalAnswer {
        let answer = |status: u16, body: serde_json::Value| LocalAnswer { status, body: body.to_string() };
        let gone = || {
            answer(
                404,
                serde_json::json!({"error": "no such request inspector: it may have expired (they last 24 hours) or been deleted"}),
            )
        };
        let Ok(id) = InspectorId::parse(id) else { return gone() };
        if !self.admit(&id) {
            return answer(
                429,
                serde_json::json!({"error": format!("this request inspector takes at most {INSPECTOR_REQUESTS_PER_SECOND} requests a second")}),
            );
        }
        match self.keep(&id, method, headers, body).await {
            Ok(Some(captured)) => {
                answer(200, serde_json::json!({"captured": captured.as_str(), "inspector": id.as_str()}))
            }
            Ok(None) => gone(),
            Err(e) => {
                tracing::error!(error = format!("{e:#}"), inspector = %id, "could not keep a captured request");
                answer(500, serde_json::json!({"error": "the request could not be kept; try again"}))
            }
        }
    }

    async fn keep(
        &self,
        id: &InspectorId,
        method: &str,
        mut headers: Vec<(String, String)>,
        body: &str,
    ) -> anyhow::Result<Option<crate::domain::CapturedId>> {
        let Some(partner) = store::owner(&self.db, id).await? else { return Ok(None) };
        headers.truncate(CAPTURED_HEADERS);
        for (name, _) in &mut headers {
            name.make_ascii_lowercase();
        }
        let url = capture_url(&self.public, id);
        let webhooks = crate::store::webhooks::records_by_url(&self.db, &partner, &url, CHECKED_WEBHOOKS).await?;
        let verdict = if webhooks.is_empty() {
            None
        } else {
            let _permit = self.checks.acquire().await?;
            let (headers, body) = (headers.clone(), body.to_owned());
            tokio::task::spawn_blocking(move || verdict(&webhooks, &headers, &body)).await?
        };
        let capture = store::NewCapture { method, headers: &headers, body, verdict: verdict.as_ref() };
        store::capture(&self.db, id, &capture).await
    }
}

/// The checks against the first of `webhooks` whose signature the request carries, else
/// against the first.
fn verdict(
    webhooks: &[crate::store::webhooks::WebhookRecord],
    headers: &[(String, String)],
    body: &str,
) -> Option<CaptureVerdict> {
    let now = chrono::Utc::now().timestamp();
    let mut first = None;
    for record in webhooks {
        let report = super::webhooks::signature_report(record, headers, body, now);
        let verdict = CaptureVerdict { webhook_id: record.id.clone(), report };
        if verdict.report.valid {
            return Some(verdict);
        }
        first.get_or_insert(verdict);
    }
    first
}

impl LocalReceiver for Inspectors {
    fn owns(&self, url: &str) -> bool {
        // Asked for every send: a URL without an inspector's id in it (nearly all of them) is
        // answered without parsing it. Parsing never makes `ins_` appear (it decodes no
        // percent-escapes in a path), so nothing a parse would accept is turned away here.
        url.contains(InspectorId::PREFIX) && captured_by(&self.public, url).is_some()
    }

    fn receive<'a>(
        &'a self,
        request: &'a OutgoingRequest,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = LocalAnswer> + Send + 'a>> {
        Box::pin(async move {
            let Some(id) = captured_by(&self.public, &request.url) else {
                return LocalAnswer { status: 404, body: String::new() };
            };
            let mut headers = request.headers.clone();
            headers.push(("content-length".to_owned(), request.body.len().to_string()));
            Inspectors::receive(self, id.as_str(), "POST", headers, &request.body).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_inspector_takes_its_requests_a_second_and_made_up_ids_cant_grow_the_count() {
        let mut this = ThisSecond::default();
        let real = InspectorId::generate();
        let admitted = (0..INSPECTOR_REQUESTS_PER_SECOND + 5).filter(|_| this.admit(&real, 7)).count();
        assert_eq!(admitted, INSPECTOR_REQUESTS_PER_SECOND as usize);
        // A flood of made-up ids in the same second: the count stays bounded, the inspector
        // already counted stays refused until its second ends, and an id the flood left no
        // room for is refused too, not let through uncounted (past any limit).
        for _ in 0..3 * COUNTED_PER_SECOND {
            this.admit(&InspectorId::generate(), 7);
        }
        assert_eq!(this.counts.len(), COUNTED_PER_SECOND);
        assert!(!this.admit(&real, 7));
        let another = InspectorId::generate();
        assert!((0..5).all(|_| !this.admit(&another, 7)));
        // The next second starts from nothing; a caller that read the clock a moment earlier
        // counts in it and does not clear it again.
        assert!(this.admit(&real, 8));
        assert!(this.admit(&another, 7));
        assert_eq!((this.second, this.counts.len()), (8, 2));
    }
}
