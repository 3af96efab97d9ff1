//! `/settings/audit`: who changed, tested, revealed or rotated what, and when (admins).

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use crate::api::list_audit;
use crate::components::{SignedIn, format_time, machine_time};
use crate::domain::AuditEntry;

/// The partner's audit log, newest first, a page at a time ("Older entries").
#[component]
pub fn AuditPage() -> impl IntoView {
    let query = use_query_map();
    let before = move || query.read().get("before");
    let page = Resource::new(before, list_audit);
    view! {
        <SignedIn title="Audit log">
            <h1>"Audit log"</h1>
            <p class="lead">
                "Every change to your webhooks, keys and team, every test, secret shown or rotated, resend and replay: who did it and when. Kept for a year."
            </p>
            <Transition fallback=|| view! { <p>"Loading the audit log…"</p> }>
                <ErrorBoundary fallback=crate::components::error_list>
                    {move || {
                        page.get()
                            .map(|answer| {
                                answer
                                    .map(|page| {
                                        let older = page
                                            .older
                                            .map(|cursor| {
                                                view! {
                                                    <p>
                                                        <a href=format!("/settings/audit?before={cursor}")>"Older entries"</a>
                                                    </p>
                                                }
                                            });
                                        view! {
                                            <AuditTable entries=page.entries />
                                            {older}
                                        }
                                    })
                            })
                    }}
                </ErrorBoundary>
            </Transition>
        </SignedIn>
    }
}

#[component]
fn AuditTable(entries: Vec<AuditEntry>) -> impl IntoView {
    if entries.is_empty() {
        return view! {
            <p class="empty card">
                "Nothing yet. Changes to your webhooks, API keys and team will be listed here as they happen."
            </p>
        }
        .into_any();
    }
    let rows = entries
        .into_iter()
        .map(|e| {
            view! {
                <tr data-testid="audit-row">
                    <td data-label="When">
                        <time datetime=machine_time(&e.at)>{format_time(&e.at)}</time>
                    </td>
                    <td data-label="Who">{e.actor}</td>
                    <td data-label="What">{e.action}</td>
                    <td class="url-cell" data-label="To what">{e.subject}</td>
                    <td data-label="Environment">{e.environment.label()}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <table class="list">
            <caption class="visually-hidden">"Audit log, newest first"</caption>
            <thead>
                <tr>
                    <th scope="col">"When"</th>
                    <th scope="col">"Who"</th>
                    <th scope="col">"What"</th>
                    <th scope="col">"To what"</th>
                    <th scope="col">"Environment"</th>
                </tr>
            </thead>
            <tbody>{rows}</tbody>
        </table>
    }
    .into_any()
}
