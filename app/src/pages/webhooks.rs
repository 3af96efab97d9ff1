//! `/webhooks`: the partner's webhooks, each with seed 004's actions: Edit, Test, View Logs,
//! Activate/Deactivate and Delete.

use leptos::prelude::*;

use crate::api::{DeleteWebhook, SetWebhookActive, TestWebhook, list_webhooks};
use crate::components::{HealthBadge, SignedIn, format_time, last_delivery, machine_time, test_headline};
use crate::domain::WebhookView;
use crate::pages::webhook_detail::DeleteWebhookForm;

/// The webhooks list: URL, status, created date, last delivery, success rate, health, and a
/// menu of actions per row.
#[component]
pub fn WebhooksPage() -> impl IntoView {
    let set_active = ServerAction::<SetWebhookActive>::new();
    let delete = ServerAction::<DeleteWebhook>::new();
    let test = ServerAction::<TestWebhook>::new();
    let webhooks = Resource::new(
        move || (set_active.version().get(), delete.version().get(), test.version().get()),
        |_| list_webhooks(),
    );
    // Switching one on or off may end a deactivation banner.
    Effect::new(move |_| {
        if set_active.version().get() > 0 {
            crate::components::AlertsRefresh::bump();
        }
    });
    let actions = RowActions { set_active, delete, test };
    let outcome = move || {
        let error = set_active
            .value()
            .get()
            .and_then(Result::err)
            .or_else(|| delete.value().get().and_then(Result::err))
            .map(|e| view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any());
        let tested = test.value().get().map(|answer| match answer {
            Ok(result) => {
                let class = if result.success { "test-result ok" } else { "test-result failed" };
                view! {
                    <div class=class data-testid="test-result">
                        <p>
                            <strong>{test_headline(&result)}</strong>
                        </p>
                        {result.error.map(|e| view! { <p class="error">{e}</p> })}
                    </div>
                }
                .into_any()
            }
            Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
        });
        (error, tested)
    };
    view! {
        <SignedIn title="Webhooks">
            <div class="page-head">
                <h1>"Webhooks"</h1>
                <a class="button" href="/webhooks/new">
                    "Create Webhook"
                </a>
            </div>
            <div role="status" aria-live="polite">
                {outcome}
            </div>
            <Transition fallback=|| view! { <p>"Loading webhooks…"</p> }>
                <ErrorBoundary fallback=crate::components::error_list>
                    {move || {
                        webhooks.get().map(|answer| answer.map(|list| view! { <WebhookTable webhooks=list actions /> }))
                    }}
                </ErrorBoundary>
            </Transition>
        </SignedIn>
    }
}

/// The actions a row's menu submits.
#[derive(Clone, Copy)]
struct RowActions {
    set_active: ServerAction<SetWebhookActive>,
    delete: ServerAction<DeleteWebhook>,
    test: ServerAction<TestWebhook>,
}

#[component]
fn WebhookTable(webhooks: Vec<WebhookView>, actions: RowActions) -> impl IntoView {
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
            let rate = w.success_rate.map(|r| format!("{r:.1} %")).unwrap_or_else(|| "–".into());
            let last = last_delivery(&w);
            view! {
                <tr data-testid="webhook-row">
                    <td class="url-cell" data-label="URL">
                        <a href=href>{w.url.clone()}</a>
                    </td>
                    <td data-label="Status">{if w.active { "Active" } else { "Inactive" }}</td>
                    <td data-label="Created date">
                        <time datetime=machine_time(&w.created_at)>{format_time(&w.created_at)}</time>
                    </td>
                    <td data-label="Last delivery">{last}</td>
                    <td data-label="Success rate">{rate}</td>
                    <td data-label="Health">
                        <HealthBadge webhook=w.clone() />
                    </td>
                    <td class="row-actions">
                        <RowMenu webhook=w actions />
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
                    <th scope="col">"Created date"</th>
                    <th scope="col">"Last delivery"</th>
                    <th scope="col">"Success rate"</th>
                    <th scope="col">"Health"</th>
                    <th scope="col">
                        <span class="visually-hidden">"Actions"</span>
                    </th>
                </tr>
            </thead>
            <tbody>{rows}</tbody>
        </table>
    }
    .into_any()
}

/// One webhook's actions, in a menu built on `<details>` (it works without JavaScript and with
/// a keyboard): Edit, Test, View Logs, Activate or Deactivate, and Delete after a confirmation
/// that names the URL.
#[component]
fn RowMenu(webhook: WebhookView, actions: RowActions) -> impl IntoView {
    let id = webhook.id.to_string();
    let url = webhook.url.clone();
    let (toggle_label, toggle_to) = if webhook.active { ("Deactivate", "false") } else { ("Activate", "true") };
    let menu_label = format!("Actions for {url}");
    let (test_id, toggle_id, delete_id) = (id.clone(), id.clone(), id.clone());
    view! {
        <details class="row-menu">
            <summary class="button secondary" aria-label=menu_label>
                "Actions"
            </summary>
            <div class="menu">
                <a href=format!("/webhooks/{id}/edit")>"Edit"</a>
                <ActionForm action=actions.test>
                    <input type="hidden" name="id" value=test_id />
                    <button type="submit" class="link">
                        "Test"
                    </button>
                </ActionForm>
                <a href=format!("/webhooks/{id}/logs")>"View Logs"</a>
                <ActionForm action=actions.set_active>
                    <input type="hidden" name="id" value=toggle_id />
                    <input type="hidden" name="active" value=toggle_to />
                    <button type="submit" class="link">
                        {toggle_label}
                    </button>
                </ActionForm>
                <DeleteWebhookForm id=delete_id url delete=actions.delete in_menu=true />
            </div>
        </details>
    }
}
