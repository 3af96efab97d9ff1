//! `/inspectors` and `/inspectors/:id`: the request inspector. A partner makes a throwaway
//! capture URL, points a webhook (or a test) at it, and watches what arrives: the page asks for
//! new requests every two seconds.

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

use crate::api::{CreateInspector, DeleteInspector, get_inspector, list_inspectors};
use crate::components::{CopyButton, EnvironmentField, ErrorAlert, SignedIn, format_time, machine_time};
use crate::domain::{
    CapturedRequest, INSPECTOR_KEEPS, INSPECTOR_LIFETIME_HOURS, InspectorView, MAX_CHECKED_BODY_BYTES,
};

/// How often the inspector's page asks for new requests.
const REFRESH_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// The partner's inspectors and the button that makes one.
#[component]
pub fn InspectorsPage() -> impl IntoView {
    let inspectors = Resource::new(|| (), |_| list_inspectors());
    let create = ServerAction::<CreateInspector>::new();
    let error = move || create.value().get().and_then(Result::err).map(|e| e.to_string());
    view! {
        <SignedIn title="Request inspector">
            <div class="page-head">
                <h1>"Request inspector"</h1>
                <ActionForm action=create>
                    <EnvironmentField />
                    <button type="submit" disabled=move || create.pending().get()>
                        "Create a capture URL"
                    </button>
                </ActionForm>
            </div>
            <p class="lead">
                {format!(
                    "A capture URL is a throwaway endpoint served by the portal. Point a webhook or a test at it and see exactly what your endpoint would receive: method, headers, body, time, and whether the signatures hold. It keeps the newest {INSPECTOR_KEEPS} requests ({} KiB each at most) for {INSPECTOR_LIFETIME_HOURS} hours.",
                    MAX_CHECKED_BODY_BYTES / 1024,
                )}
            </p>
            <ErrorAlert message=error />
            <Transition fallback=|| view! { <p>"Loading…"</p> }>
                <ErrorBoundary fallback=crate::components::error_list>
                    {move || inspectors.get().map(|answer| answer.map(|list| view! { <InspectorTable inspectors=list /> }))}
                </ErrorBoundary>
            </Transition>
        </SignedIn>
    }
}

#[component]
fn InspectorTable(inspectors: Vec<InspectorView>) -> impl IntoView {
    if inspectors.is_empty() {
        return view! {
            <section class="empty-state card">
                <h2>"No capture URLs yet"</h2>
                <p>
                    "Create one to try webhooks before your own endpoint exists, or to see what the portal sends."
                </p>
            </section>
        }
        .into_any();
    }
    let rows = inspectors
        .into_iter()
        .map(|i| {
            let href = format!("/inspectors/{}", i.id);
            let state = if i.expired { "Expired" } else { "Open" };
            view! {
                <tr>
                    <td data-label="Capture URL">
                        <a href=href>
                            <code class="wrap">{i.url.clone()}</code>
                        </a>
                    </td>
                    <td data-label="State">{state}</td>
                    <td data-label="Requests">{i.request_count}</td>
                    <td data-label="Expires">
                        <time datetime=machine_time(&i.expires_at)>{format_time(&i.expires_at)}</time>
                    </td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <div class="table-scroll">
            <table class="list">
                <thead>
                    <tr>
                        <th scope="col">"Capture URL"</th>
                        <th scope="col">"State"</th>
                        <th scope="col">"Requests"</th>
                        <th scope="col">"Expires"</th>
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
    .into_any()
}

/// One inspector: its URL to copy, and what arrived, newest first, kept up to date.
#[component]
pub fn InspectorPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let (tick, set_tick) = signal(0_u64);
    // In the browser only: effects don't run on the server.
    Effect::new(move |_| {
        if let Ok(handle) = set_interval_with_handle(move || set_tick.update(|t| *t += 1), REFRESH_EVERY) {
            on_cleanup(move || handle.clear());
        }
    });
    let data = Resource::new(move || (id(), tick.get()), |(id, _)| get_inspector(id));
    let loaded = move || data.get().and_then(Result::ok);
    let inspector = move || loaded().map(|(view, _)| view);
    let requests = move || loaded().map(|(_, requests)| requests).unwrap_or_default();
    view! {
        <SignedIn title="Request inspector">
            <Transition fallback=|| view! { <p>"Loading…"</p> }>
                {move || {
                    data.get()
                        .and_then(Result::err)
                        .map(|e| view! { <p class="error" role="alert">{e.to_string()}</p> })
                }}
                <Show when=move || inspector().is_some()>
                    {move || inspector().map(|i| view! { <InspectorHead inspector=i /> })}
                    <section class="stack" aria-labelledby="captured-heading">
                        <h2 id="captured-heading">
                            "Requests received " <span class="hint">"(newest first, refreshed every 2 seconds)"</span>
                        </h2>
                        <Show when=move || requests().is_empty()>
                            <p class="empty-state card" data-testid="no-requests">
                                "Nothing has arrived yet. Send a test from a webhook that points here, or any HTTP request."
                            </p>
                        </Show>
                        <ol class="captured" data-testid="captured-requests">
                            <For each=requests key=|r| r.id.clone() let:request>
                                <CapturedCard request />
                            </For>
                        </ol>
                    </section>
                </Show>
            </Transition>
        </SignedIn>
    }
}

/// The inspector's URL, what to do with it, and its end.
#[component]
fn InspectorHead(inspector: InspectorView) -> impl IntoView {
    let expired = inspector.expired;
    let id = inspector.id.to_string();
    let delete = ServerAction::<DeleteInspector>::new();
    let error = move || delete.value().get().and_then(Result::err).map(|e| e.to_string());
    view! {
        <div class="page-head">
            <h1>"Request inspector"</h1>
            <a href="/inspectors">"All capture URLs"</a>
        </div>
        <section class="card stack" aria-labelledby="url-heading">
            <h2 id="url-heading">"Capture URL"</h2>
            <p>
                <code class="wrap" data-testid="capture-url">
                    {inspector.url.clone()}
                </code>
            </p>
            <CopyButton text=inspector.url.clone() label="Copy the capture URL".to_owned() testid="copy-url".to_owned() />
            <ol class="steps">
                <li>
                    <a href="/webhooks/new">"Create a webhook"</a>
                    " (or edit one) with this URL. The portal delivers to it directly, whatever the address rules."
                </li>
                <li>"Send a test from the webhook's page, or wait for real events."</li>
                <li>"Each request shows below as it arrives, with whether its signatures hold."</li>
            </ol>
            <p class="hint">
                {if expired { "Expired: it no longer takes requests and will be deleted. " } else { "" }}
                "Expires " <time datetime=machine_time(&inspector.expires_at)>{format_time(&inspector.expires_at)}</time>
                {format!(". Keeps the newest {INSPECTOR_KEEPS} requests.")}
            </p>
            <details class="danger-zone">
                <summary class="button danger">"Delete"</summary>
                <p>"Delete this capture URL and every request it kept? It answers 404 from then on."</p>
                <ActionForm action=delete>
                    <input type="hidden" name="id" value=id />
                    <button type="submit" class="danger">
                        "Yes, delete"
                    </button>
                </ActionForm>
                <ErrorAlert message=error />
            </details>
        </section>
    }
}

/// One captured request: method, time and verdict; opened, its headers, body and checks.
#[component]
fn CapturedCard(request: CapturedRequest) -> impl IntoView {
    let time = request.received_at.format("%Y-%m-%d %H:%M:%S UTC").to_string();
    let (badge, verdict) = match &request.verdict {
        Some(v) if v.report.valid => ("badge green", format!("Signature verified ({})", v.webhook_id)),
        Some(v) => ("badge red", format!("Signature not verified ({})", v.webhook_id)),
        None => ("badge none", "No webhook of yours points here: signatures not checked".to_owned()),
    };
    let headers = request
        .headers
        .iter()
        .map(|(name, value)| {
            view! {
                <tr>
                    <th scope="row">
                        <code>{name.clone()}</code>
                    </th>
                    <td>
                        <code class="wrap">{value.clone()}</code>
                    </td>
                </tr>
            }
        })
        .collect_view();
    let report = request.verdict.map(|v| crate::pages::signature::report_view(Ok(v.report)));
    let body = if request.body.is_empty() { "(empty body)".to_owned() } else { request.body };
    view! {
        <li class="card" data-testid="captured-request">
            <details>
                <summary>
                    <strong>{request.method}</strong>
                    " · "
                    <time datetime=machine_time(&request.received_at)>{time}</time>
                    " · "
                    <span class=badge data-testid="verdict">
                        {verdict}
                    </span>
                </summary>
                <div class="stack">
                    <h3>"Headers"</h3>
                    <div class="table-scroll">
                        <table class="list">
                            <tbody>{headers}</tbody>
                        </table>
                    </div>
                    <h3>"Body"</h3>
                    <pre class="code wrap" tabindex="0" data-testid="captured-body">
                        {body}
                    </pre>
                    {report}
                </div>
            </details>
        </li>
    }
}
