//! Pieces of UI that several pages use.

mod chart;
mod copy;
mod layout;

pub use chart::{HourlyChart, hourly_svg};
pub use copy::CopyButton;
pub use layout::{AlertsRefresh, EnvironmentField, Mark, SignedIn};

use chrono::{DateTime, Utc};
use leptos::prelude::*;

use crate::domain::{Health, WebhookView};

/// A webhook's health, in words and colour; "–" while an active webhook has no deliveries.
/// Hover or focus shows why, with the webhook's numbers.
#[component]
pub fn HealthBadge(webhook: WebhookView) -> impl IntoView {
    let no_data = webhook.active && webhook.last_delivery_at.is_none() && webhook.health == Health::Green;
    let (class, label) =
        if no_data { ("none", "– No deliveries yet") } else { (webhook.health.class(), webhook.health.label()) };
    let tip_id = format!("health-{}", webhook.id);
    view! {
        <span class="has-tip">
            <span class=format!("badge {class}") tabindex="0" aria-describedby=tip_id.clone() data-testid="health">
                {label}
            </span>
            <span class="tip" role="tooltip" id=tip_id>
                {webhook.health_reason()}
            </span>
        </span>
    }
}

/// An error announced to screen readers, shown only while there is one.
#[component]
pub fn ErrorAlert(message: impl Fn() -> Option<String> + Send + Sync + 'static) -> impl IntoView {
    move || message().map(|text| view! { <p class="error" role="alert">{text}</p> })
}

/// What an `<ErrorBoundary>` shows: the errors' own words.
pub fn error_list(errors: ArcRwSignal<Errors>) -> impl IntoView {
    view! {
        <p class="error" role="alert">
            {move || errors.get().into_iter().map(|(_, e)| e.to_string()).collect::<Vec<_>>().join(" ")}
        </p>
    }
}

/// A webhook's last delivery as lists and its page show it: when, and how it went.
pub fn last_delivery(webhook: &WebhookView) -> String {
    match (&webhook.last_delivery_at, webhook.last_delivery_ok) {
        (Some(at), Some(ok)) => format!("{} ({})", format_time(at), if ok { "succeeded" } else { "failed" }),
        (Some(at), None) => format_time(at),
        _ => "–".to_owned(),
    }
}

/// What Test Webhook says of its result, in seed 004's words.
pub fn test_headline(result: &crate::domain::AttemptResult) -> String {
    match (result.success, result.status_code) {
        (true, Some(code)) => {
            format!("Success: Your endpoint is working correctly. It answered {code} in {} ms.", result.latency_ms)
        }
        (false, Some(code)) => format!(
            "Failure: your endpoint answered {code} in {} ms. Check the error message and fix your endpoint.",
            result.latency_ms
        ),
        (_, None) => {
            format!("Failure after {} ms. Check the error message and fix your endpoint.", result.latency_ms)
        }
    }
}

/// A time as the portal shows it: `2026-01-15 14:30 UTC`. One format everywhere, the same on
/// the server and in the browser, so hydration never disagrees.
pub fn format_time(time: &DateTime<Utc>) -> String {
    time.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// A time in the machine-readable form of `<time datetime=…>`.
pub fn machine_time(time: &DateTime<Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// An error under a field, tied to it for screen readers by `aria-describedby`.
#[component]
pub fn FieldErrorText(
    #[prop(into)] id: String,
    message: impl Fn() -> Option<String> + Send + Sync + 'static,
) -> impl IntoView {
    view! {
        <p class="error field-error" id=id aria-live="polite">
            {message}
        </p>
    }
}

/// "Admin" or "Viewer", as a form's `role` field.
#[component]
pub fn RoleSelect(
    /// The select's id.
    id: &'static str,
    /// Its label.
    label: &'static str,
) -> impl IntoView {
    view! {
        <div class="field">
            <label for=id>{label}</label>
            <select id=id name="role">
                <option value="admin" selected>
                    "Admin: changes webhooks, keys and users"
                </option>
                <option value="viewer">"Viewer: reads webhooks and logs only"</option>
            </select>
        </div>
    }
}
