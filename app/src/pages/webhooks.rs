//! `/webhooks`: the partner's webhooks.

use leptos::prelude::*;

use crate::api::list_webhooks;
use crate::components::{HealthBadge, SignedIn, format_time, machine_time};
use crate::domain::WebhookView;

/// The webhooks list: URL, status, created date, last delivery, success rate and health.
#[component]
pub fn WebhooksPage() -> impl IntoView {
    let webhooks = Resource::new(|| (), |_| list_webhooks());
    view! {
        <SignedIn title="Webhooks">
            <div class="page-head">
                <h1>"Webhooks"</h1>
                <a class="button" href="/webhooks/new">
                    "Create Webhook"
                </a>
            </div>
            <Transition fallback=|| view! { <p>"Loading webhooks…"</p> }>
                <ErrorBoundary fallback=crate::components::error_list>
                    {move || webhooks.get().map(|answer| answer.map(|list| view! { <WebhookTable webhooks=list /> }))}
                </ErrorBoundary>
            </Transition>
        </SignedIn>
    }
}

#[component]
fn WebhookTable(webhooks: Vec<WebhookView>) -> impl IntoView {
    if webhooks.is_empty() {
        return view! {
            <section class="empty-state card">
                <h2>"No webhooks yet"</h2>
                <p>
                    "A webhook is a URL on your server. When a verification is completed, fails, "
                    "expires, or a manual review is completed, we send the result there at once "
                    "as an HTTP POST with a JSON body, signed so you can check it came from us."
                </p>
                <p>
                    <a class="button" href="/webhooks/new">
                        "Create Webhook"
                    </a>
                </p>
            </section>
        }
        .into_any();
    }
    let rows = webhooks
        .into_iter()
        .map(|w| {
            let href = format!("/webhooks/{}", w.id);
            let last_delivery = match (&w.last_delivery_at, w.last_delivery_ok) {
                (Some(at), Some(ok)) => format!("{} ({})", format_time(at), if ok { "succeeded" } else { "failed" }),
                _ => "–".to_owned(),
            };
            let rate = w.success_rate.map(|r| format!("{r:.1} %")).unwrap_or_else(|| "–".into());
            view! {
                <tr>
                    <td class="url-cell">
                        <a href=href>{w.url.clone()}</a>
                    </td>
                    <td>{if w.active { "Active" } else { "Inactive" }}</td>
                    <td>
                        <time datetime=machine_time(&w.created_at)>{format_time(&w.created_at)}</time>
                    </td>
                    <td>{last_delivery}</td>
                    <td>{rate}</td>
                    <td>
                        <HealthBadge webhook=w />
                    </td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <table class="list">
            <caption class="visually-hidden">"Your webhooks"</caption>
            <thead>
                <tr>
                    <th scope="col">"URL"</th>
                    <th scope="col">"Status"</th>
                    <th scope="col">"Created"</th>
                    <th scope="col">"Last delivery"</th>
                    <th scope="col">"Success rate"</th>
                    <th scope="col">"Health"</th>
                </tr>
            </thead>
            <tbody>{rows}</tbody>
        </table>
    }
    .into_any()
}
