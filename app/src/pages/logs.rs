//! `/logs` (all webhooks) and `/webhooks/{id}/logs` (one): the delivery log, newest first,
//! with filters that live in the URL, keyset paging, and new attempts shown while it is open.
//! `/webhooks/{id}/logs/{attempt}`: one attempt's request and answer, with Resend.

use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};
use leptos_router::params::ParamsMap;

use crate::api::{ResendDelivery, list_webhooks, load_attempt, load_attempt_page};
use crate::components::{SignedIn, machine_time};
use crate::domain::{AttemptDetail, AttemptPage, AttemptSummary, EventType, LogQuery, Origin, Outcome, WebhookView};

/// How often an open first page looks for new attempts.
const REFRESH_MS: u64 = 3_000;

fn query_from(params: &ParamsMap, webhook: Option<String>) -> LogQuery {
    LogQuery {
        webhook: webhook.or_else(|| params.get("webhook")),
        outcome: params.get("outcome"),
        event_type: params.get("eventType"),
        from: params.get("from"),
        to: params.get("to"),
        cursor: params.get("cursor"),
        limit: params.get("limit"),
    }
}

/// The partner's log across all its webhooks.
#[component]
pub fn LogsPage() -> impl IntoView {
    view! {
        <SignedIn title="Delivery logs">
            <div class="page-head">
                <h1>"Delivery logs"</h1>
            </div>
            <Log webhook=None />
        </SignedIn>
    }
}

/// One webhook's log ("View Logs").
#[component]
pub fn WebhookLogsPage() -> impl IntoView {
    let params = use_params_map();
    let id = params.read_untracked().get("id").unwrap_or_default();
    let back = format!("/webhooks/{id}");
    view! {
        <SignedIn title="Webhook logs">
            <p class="crumbs">
                <a href=back>"← Back to the webhook"</a>
            </p>
            <div class="page-head">
                <h1>"Webhook logs"</h1>
            </div>
            <Log webhook=Some(id) />
        </SignedIn>
    }
}

/// Filters, the table and the pager. `webhook` fixes the webhook (its own log); without it the
/// filters offer one.
#[component]
fn Log(webhook: Option<String>) -> impl IntoView {
    let query_map = use_query_map();
    let fixed = webhook.clone();
    let query = Memo::new(move |_| query_from(&query_map.read(), fixed.clone()));
    let page = Resource::new(move || query.get(), load_attempt_page);
    // Names for the webhook filter and column, only on the partner-wide log.
    let show_webhook_filter = webhook.is_none();
    let webhooks = Resource::new(
        move || show_webhook_filter,
        |wanted| async move { if wanted { list_webhooks().await } else { Ok(Vec::new()) } },
    );
    let resend = ServerAction::<ResendDelivery>::new();
    // The newest page looks for new attempts while it is open; older pages stay put.
    Effect::new(move |_| {
        if query.get().cursor.is_none()
            && let Ok(handle) =
                set_interval_with_handle(move || page.refetch(), std::time::Duration::from_millis(REFRESH_MS))
        {
            on_cleanup(move || handle.clear());
        }
    });
    let base = match &webhook {
        Some(id) => format!("/webhooks/{id}/logs"),
        None => "/logs".to_owned(),
    };
    let resent = move || {
        resend.value().get().map(|answer| match answer {
            Ok(id) => view! {
                <p class="notice card" role="status">
                    {format!("Sent again as delivery {id}. Its attempt appears at the top of the log.")}
                </p>
            }
            .into_any(),
            Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
        })
    };
    let table_base = base.clone();
    view! {
        {view! { <Filters query base=base.clone() webhooks show_webhook_filter /> }.into_any()}
        <div aria-live="polite">{resent}</div>
        <Transition fallback=|| view! { <p>"Loading the log…"</p> }>
            <ErrorBoundary fallback=crate::components::error_list>
                {move || {
                    let base = table_base.clone();
                    page.get()
                        .map(|answer| {
                            answer
                                .map(|page| {
                                    let names = webhooks
                                        .get()
                                        .and_then(Result::ok)
                                        .filter(|_| show_webhook_filter)
                                        .unwrap_or_default();
                                    view! { <LogTable page query=query.get() base names resend /> }.into_any()
                                })
                        })
                }}
            </ErrorBoundary>
        </Transition>
    }
}

/// The filter form: a GET form, so a filtered view is a URL to bookmark and share.
#[component]
fn Filters(
    query: Memo<LogQuery>,
    base: String,
    webhooks: Resource<Result<Vec<WebhookView>, crate::api::AppError>>,
    show_webhook_filter: bool,
) -> impl IntoView {
    let q = query.get_untracked();
    let selected = move |value: &str, current: &Option<String>| current.as_deref() == Some(value);
    let outcome = q.outcome.clone();
    let event_type = q.event_type.clone();
    let webhook_choice = q.webhook.clone();
    let types = EventType::ALL
        .iter()
        .map(|t| {
            let name = t.as_str();
            view! {
                <option value=name selected=selected(name, &event_type)>
                    {name}
                </option>
            }
        })
        .collect_view();
    let webhook_filter = show_webhook_filter.then(|| {
        view! {
            <div class="field">
                <label for="filter-webhook">"Webhook"</label>
                <select id="filter-webhook" name="webhook">
                    <option value="">"All webhooks"</option>
                    <Suspense fallback=|| ()>
                        {move || {
                            let choice = webhook_choice.clone();
                            webhooks
                                .get()
                                .and_then(Result::ok)
                                .map(|list| {
                                    list.into_iter()
                                        .map(|w| {
                                            let id = w.id.to_string();
                                            let is = choice.as_deref() == Some(id.as_str());
                                            view! {
                                                <option value=id selected=is>
                                                    {w.url}
                                                </option>
                                            }
                                        })
                                        .collect_view()
                                })
                        }}
                    </Suspense>
                </select>
            </div>
        }
    });
    let clear = base.clone();
    view! {
        <form method="get" action=base class="filters card" aria-label="Filter the log">
            {webhook_filter}
            <div class="field">
                <label for="filter-outcome">"Outcome"</label>
                <select id="filter-outcome" name="outcome">
                    <option value="">"All outcomes"</option>
                    <option value="success" selected=selected("success", &outcome)>
                        "Succeeded"
                    </option>
                    <option value="failure" selected=selected("failure", &outcome)>
                        "Failed"
                    </option>
                </select>
            </div>
            <div class="field">
                <label for="filter-type">"Event type"</label>
                <select id="filter-type" name="eventType">
                    <option value="">"All event types"</option>
                    {types}
                </select>
            </div>
            <div class="field">
                <label for="filter-from">"From (UTC)"</label>
                <input id="filter-from" type="datetime-local" name="from" value=q.from.clone().unwrap_or_default() />
            </div>
            <div class="field">
                <label for="filter-to">"To (UTC)"</label>
                <input id="filter-to" type="datetime-local" name="to" value=q.to.clone().unwrap_or_default() />
            </div>
            <div class="filter-buttons">
                <button type="submit">"Apply filters"</button>
                <a class="button secondary" href=clear>
                    "Clear"
                </a>
            </div>
        </form>
    }
    .into_any()
}

fn outcome_words(row: &AttemptSummary) -> &'static str {
    match row.outcome {
        Outcome::Success => "Succeeded",
        Outcome::Failure => "Failed",
    }
}

fn origin_words(origin: Origin) -> Option<&'static str> {
    match origin {
        Origin::Event => None,
        Origin::Resend => Some("resend"),
        Origin::Replay => Some("replay"),
        Origin::Test => Some("test"),
    }
}

#[component]
fn LogTable(
    page: AttemptPage,
    query: LogQuery,
    base: String,
    names: Vec<WebhookView>,
    resend: ServerAction<ResendDelivery>,
) -> impl IntoView {
    if page.data.is_empty() {
        let words = if query.cursor.is_some() {
            "No older attempts."
        } else if query == (LogQuery { webhook: query.webhook.clone(), ..LogQuery::default() }) {
            "No attempts yet. Each request we send, and each test, shows up here: try Test Webhook on a webhook's page."
        } else {
            "No attempts match these filters."
        };
        return view! { <p class="empty card" data-testid="log-empty">{words}</p> }.into_any();
    }
    let with_webhook = !names.is_empty();
    let rows = page
        .data
        .into_iter()
        .map(|row| {
            let detail = format!("/webhooks/{}/logs/{}", row.webhook_id, row.id);
            let url = names.iter().find(|w| w.id == row.webhook_id).map(|w| w.url.clone()).unwrap_or_default();
            let class = if row.outcome == Outcome::Success { "outcome ok" } else { "outcome failed" };
            let delivery = row.delivery_id.clone().map(|d| d.to_string());
            view! {
                <tr data-testid="attempt-row">
                    <td data-label="Time">
                        <a href=detail>
                            <time datetime=machine_time(&row.created_at)>{format_seconds(&row.created_at)}</time>
                        </a>
                    </td>
                    {with_webhook.then(|| view! { <td class="url-cell" data-label="Webhook">{url}</td> })}
                    <td data-label="Event">
                        <code>{row.event_id.to_string()}</code>
                        {origin_words(row.origin).map(|o| view! { <span class="tag">{o}</span> })}
                    </td>
                    <td data-label="Type">{row.event_type.clone()}</td>
                    <td data-label="Attempt">{row.attempt}</td>
                    <td class=class data-label="Outcome">{outcome_words(&row)}</td>
                    <td data-label="Status">{row.status_code.map(|c| c.to_string()).unwrap_or_else(|| "–".into())}</td>
                    <td data-label="Latency">{format!("{} ms", row.latency_ms)}</td>
                    <td class="row-actions">
                        {delivery
                            .map(|d| {
                                view! {
                                    <ActionForm action=resend>
                                        <input type="hidden" name="delivery" value=d />
                                        <button
                                            type="submit"
                                            class="secondary small"
                                            aria-label=format!("Resend event {}", row.event_id)
                                        >
                                            "Resend"
                                        </button>
                                    </ActionForm>
                                }
                            })}
                    </td>
                </tr>
            }
            .into_any()
        })
        .collect_view();
    let older = page.next.map(|cursor| format!("{base}{}", query.with_cursor(Some(cursor)).to_query_string()));
    let newest = query.cursor.is_some().then(|| format!("{base}{}", query.with_cursor(None).to_query_string()));
    view! {
        <table class="list log">
            <caption class="visually-hidden">"Delivery attempts, newest first"</caption>
            <thead>
                <tr>
                    <th scope="col">"Time"</th>
                    {with_webhook.then(|| view! { <th scope="col">"Webhook"</th> })}
                    <th scope="col">"Event"</th>
                    <th scope="col">"Type"</th>
                    <th scope="col">"Attempt"</th>
                    <th scope="col">"Outcome"</th>
                    <th scope="col">"Status"</th>
                    <th scope="col">"Latency"</th>
                    <th scope="col">
                        <span class="visually-hidden">"Actions"</span>
                    </th>
                </tr>
            </thead>
            <tbody>{rows}</tbody>
        </table>
        <nav class="pager" aria-label="Log pages">
            {newest.map(|href| view! { <a href=href>"← Newest"</a> })}
            {older.map(|href| view! { <a href=href rel="next">"Older →"</a> })}
        </nav>
    }
    .into_any()
}

/// A log time to the second: attempts of one delivery are seconds apart.
fn format_seconds(time: &chrono::DateTime<chrono::Utc>) -> String {
    time.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// One attempt: what was sent, what came back, and Resend.
#[component]
pub fn AttemptPage() -> impl IntoView {
    let params = use_params_map();
    let id = params.read_untracked().get("attempt").unwrap_or_default();
    let webhook = params.read_untracked().get("id").unwrap_or_default();
    let attempt = Resource::new(move || id.clone(), load_attempt);
    let back = format!("/webhooks/{webhook}/logs");
    view! {
        <SignedIn title="Delivery attempt">
            <p class="crumbs">
                <a href=back>"← Back to the log"</a>
            </p>
            <Transition fallback=|| view! { <p>"Loading…"</p> }>
                <ErrorBoundary fallback=crate::components::error_list>
                    {move || attempt.get().map(|answer| answer.map(|a| view! { <AttemptView attempt=a /> }.into_any()))}
                </ErrorBoundary>
            </Transition>
        </SignedIn>
    }
}

#[component]
fn AttemptView(attempt: AttemptDetail) -> impl IntoView {
    let resend = ServerAction::<ResendDelivery>::new();
    let s = attempt.summary.clone();
    let headline = format!(
        "{} · attempt {} · {}",
        outcome_words(&s),
        s.attempt,
        s.status_code.map(|c| format!("HTTP {c}")).unwrap_or_else(|| "no answer".into())
    );
    let headers =
        attempt.request_headers.iter().map(|(name, value)| format!("{name}: {value}")).collect::<Vec<_>>().join("\n");
    let body = attempt.request_body.clone();
    let response = attempt.response_body.clone().filter(|b| !b.is_empty());
    let resent = move || {
        resend.value().get().map(|answer| match answer {
            Ok(id) => view! {
                <p class="notice" role="status">
                    {format!("Sent again as delivery {id}. ")}
                    <a href=format!("/webhooks/{}/logs", s.webhook_id)>"See it in the log"</a>
                </p>
            }
            .into_any(),
            Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
        })
    };
    let summary = attempt.summary.clone();
    let check_href = format!("/tools/signature?attempt={}", summary.id);
    let sent_something = !attempt.request_headers.is_empty();
    view! {
        <div class="page-head">
            <h1>{headline}</h1>
        </div>
        <dl class="settings card">
            <dt>"Time"</dt>
            <dd>
                <time datetime=machine_time(&summary.created_at)>{format_seconds(&summary.created_at)}</time>
            </dd>
            <dt>"Webhook"</dt>
            <dd>{attempt.webhook_url.clone()}</dd>
            <dt>"Event"</dt>
            <dd>
                <code>{summary.event_id.to_string()}</code>
                " (" {summary.event_type.clone()} ")"
            </dd>
            <dt>"Sent because"</dt>
            <dd>
                {match summary.origin {
                    Origin::Event => "the event was published",
                    Origin::Resend => "it was resent from the log",
                    Origin::Replay => "of \"Replay missed events\"",
                    Origin::Test => "of \"Test Webhook\" (not retried, not counted in health)",
                }}
            </dd>
            <dt>"Outcome"</dt>
            <dd data-testid="attempt-outcome">{outcome_words(&summary)}</dd>
            <dt>"Status code"</dt>
            <dd>{summary.status_code.map(|c| c.to_string()).unwrap_or_else(|| "–".into())}</dd>
            <dt>"Latency"</dt>
            <dd>{format!("{} ms", summary.latency_ms)}</dd>
            <dt>"Error"</dt>
            <dd data-testid="attempt-error">{summary.error.clone().unwrap_or_else(|| "–".into())}</dd>
            <dt>"Delivery"</dt>
            <dd>{summary.delivery_id.as_ref().map(|d| d.to_string()).unwrap_or_else(|| "– (test)".into())}</dd>
        </dl>
        {summary
            .delivery_id
            .clone()
            .map(|delivery| {
                view! {
                    <div class="actions">
                        <ActionForm action=resend>
                            <input type="hidden" name="delivery" value=delivery.to_string() />
                            <button type="submit" disabled=move || resend.pending().get()>
                                "Resend"
                            </button>
                        </ActionForm>
                        <span class="hint">"Sends the same event (same id) again, as a new delivery."</span>
                    </div>
                }
            })}
        <div aria-live="polite">{resent}</div>
        <section class="card stack" aria-labelledby="request-heading">
            <h2 id="request-heading">"Request"</h2>
            <h3>"Headers"</h3>
            <pre class="code" data-testid="request-headers">{headers}</pre>
            <h3>"Body (exactly as sent and signed)"</h3>
            <pre class="code" data-testid="request-body">{body}</pre>
            {sent_something
                .then(|| {
                    view! {
                        <p>
                            <a href=check_href>"Check this request's signatures"</a>
                        </p>
                    }
                })}
        </section>
        <section class="card stack" aria-labelledby="response-heading">
            <h2 id="response-heading">"Response"</h2>
            <p class="hint">"The first 4 KiB of the body your endpoint answered."</p>
            {match response {
                Some(text) => view! { <pre class="code" data-testid="response-body">{text}</pre> }.into_any(),
                None => view! { <p class="empty">"No body."</p> }.into_any(),
            }}
        </section>
    }
    .into_any()
}
