//! Prometheus metrics: `GET /metrics` in the text format, recorded with the `metrics` crate and
//! rendered by `metrics-exporter-prometheus`. Counters and histograms are recorded where things
//! happen (attempts in `app::delivery`, events and deactivations in `app::store::deliveries`,
//! requests in [`track_requests`]); the queue's gauges are read from the database at each
//! scrape, so every process reports the same queue.
//!
//! The main listener asks for the operator token; `--metrics-addr` serves the same page without
//! it, on an address meant for a private network.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use app::state::AppState;
use app::store::queue;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::config::OperatorToken;

/// Histogram buckets for every `*_seconds` metric: from 1 ms to the longest delivery timeout.
const SECONDS_BUCKETS: &[f64] =
    &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// The process's recorder, installed once (tests build several applications in one process).
pub fn handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
                .expect("the buckets are not empty")
                .install_recorder()
                .expect("no other metrics recorder is installed");
            describe();
            handle
        })
        .clone()
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "portal_attempts_total",
        "Delivery attempts (tests included) by outcome: 2xx, 3xx, 4xx, 5xx, timeout, connect_error, refused_target, request_error, invalid_request"
    );
    describe_histogram!(
        "portal_attempt_duration_seconds",
        Unit::Seconds,
        "Time from sending an attempt to its answer or failure"
    );
    describe_gauge!(
        "portal_deliveries_waiting",
        "Deliveries waiting, by state: due (to send now), scheduled (a later retry), held (webhook inactive)"
    );
    describe_gauge!(
        "portal_oldest_due_delivery_age_seconds",
        Unit::Seconds,
        "How long the oldest due delivery has waited past its time"
    );
    describe_counter!(
        "portal_webhooks_deactivated_total",
        "Webhooks the dispatcher switched off (failures in a row, or 410 Gone)"
    );
    describe_counter!(
        "portal_claims_total",
        "Times the dispatcher looked for due deliveries, by whether it found some (found=some) or none it could take (found=none)"
    );
    // Both series from the start, whether or not the loop has looked yet: the set of series
    // does not change while the portal runs.
    for found in ["none", "some"] {
        metrics::counter!("portal_claims_total", "found" => found).increment(0);
    }
    describe_counter!("portal_events_published_total", "Events published (new ones; a repeated id is not counted)");
    describe_counter!(
        "portal_password_checks_total",
        "Passwords checked with argon2 at sign-in (throttled and busy sign-ins check none)"
    );
    describe_counter!(
        "portal_http_requests_total",
        "Portal and API requests by method (other for any method the portal does not serve), route and status"
    );
    describe_histogram!(
        "portal_http_request_duration_seconds",
        Unit::Seconds,
        "Portal and API request time by method and route"
    );
}

/// Who may read `/metrics` on a listener.
#[derive(Clone, Debug)]
pub enum MetricsAccess {
    /// Callers with the operator token (the main listener); refused when none is set.
    Operator(Option<OperatorToken>),
    /// Anyone (the `--metrics-addr` listener).
    Open,
}

/// `GET /metrics`.
pub async fn serve(
    State(state): State<AppState>,
    axum::Extension(access): axum::Extension<Arc<MetricsAccess>>,
    headers: axum::http::HeaderMap,
) -> Response {
    if let MetricsAccess::Operator(expected) = access.as_ref() {
        let Some(expected) = expected else {
            return (
                StatusCode::FORBIDDEN,
                "metrics need the operator token: set PORTAL_OPERATOR_TOKEN, or serve them on PORTAL_METRICS_ADDR\n",
            )
                .into_response();
        };
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        if !expected.matches(given) {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                "send the operator token as `Authorization: Bearer <token>`\n",
            )
                .into_response();
        }
    }
    match queue::backlog(&state.db).await {
        Ok(backlog) => {
            metrics::gauge!("portal_deliveries_waiting", "state" => "due").set(backlog.due as f64);
            metrics::gauge!("portal_deliveries_waiting", "state" => "scheduled").set(backlog.scheduled as f64);
            metrics::gauge!("portal_deliveries_waiting", "state" => "held").set(backlog.held as f64);
            metrics::gauge!("portal_oldest_due_delivery_age_seconds").set(backlog.oldest_due_ms as f64 / 1000.0);
        }
        // The rest of the page is still worth having; the gauges keep their last values.
        Err(e) => tracing::warn!(error = format!("{e:#}"), "metrics: could not read the queue"),
    }
    let handle = handle();
    handle.run_upkeep();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], handle.render()).into_response()
}

/// Counts every request and its time, labelled with the route's pattern (`/webhooks/{id}`), never
/// the raw path, and with the method among a fixed few, so ids, probes and made-up methods don't
/// make new series (each series stays in memory for the life of the process).
pub async fn track_requests(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    let route = match request.extensions().get::<MatchedPath>() {
        Some(path) => path.as_str().to_owned(),
        None if request.uri().path().starts_with("/pkg/") => "/pkg/{file}".to_owned(),
        None => "unmatched".to_owned(),
    };
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    let elapsed = started.elapsed().as_secs_f64();
    metrics::counter!("portal_http_requests_total", "method" => method, "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("portal_http_request_duration_seconds", "method" => method, "route" => route).record(elapsed);
    response
}

/// A method as a label: the ones the portal serves by name, `other` for anything else (a
/// method is any token a client cares to send).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_are_a_fixed_few() {
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        for made_up in ["PROPFIND", "TRACE", "CONNECT", "XYZZY1234"] {
            assert_eq!(method_label(&Method::from_bytes(made_up.as_bytes()).unwrap()), "other", "{made_up}");
        }
    }
}
