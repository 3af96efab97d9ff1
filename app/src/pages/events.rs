//! `/events`: the partner's events in the session's environment, newest first, found by the
//! event's id or a `verificationId` / `sessionId` a customer quotes, filtered by type and time.
//! `/events/{id}`: one event, its data, and per webhook its delivery and attempts.

use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};

use crate::api::{load_event, search_events};
use crate::components::{SignedIn, format_time, machine_time};
use crate::domain::{EventDetail, EventPage, EventQuery, EventType, Outcome};

/// The search and the list.
#[component]
pub fn EventsPage() -> impl IntoView {
    let query_map = use_query_map();
    let query = Memo::new(move |_| {
        let params = query_map.read();
        EventQuery {
            event_type: params.get("type"),
            since: params.get("since"),
            until: params.get("until"),
            search: params.get("search"),
            cursor: params.get("cursor"),
        }
    });
    let page = Resource::new(move || query.get(), search_events);
    view! {
        <SignedIn title="Events">
            <div class="page-head">
                <h1>"Events"</h1>
            </div>
            <SearchForm query=query.get_untracked() />
            <Transition fallback=|| view! { <p>"Searching…"</p> }>
                <ErrorBoundary fallback=crate::components::error_list>
                    {move || {
                        page.get().map(|answer| answer.map(|page| view! { <EventTable page query=query.get() /> }))
                    }}
                </ErrorBoundary>
            </Transition>
        </SignedIn>
    }
}

/// A GET form, so a search is a URL to bookmark and share.
#[component]
fn SearchForm(query: EventQuery) -> impl IntoView {
    let chosen = query.event_type.clone();
    let types = EventType::ALL
        .iter()
        .map(|t| {
            let name = t.as_str();
            view! {
                <option value=name selected=chosen.as_deref() == Some(name)>
                    {name}
                </option>
            }
        })
        .collect_view();
    view! {
        <form method="get" action="/events" class="filters card" role="search" aria-label="Find events">
            <div class="field wide">
                <label for="event-search">"Event id, verificationId or sessionId"</label>
                <input
                    id="event-search"
                    type="search"
                    name="search"
                    value=query.search.clone().unwrap_or_default()
                    placeholder="evt_…, ver_…, ses_…"
                    autocomplete="off"
                />
            </div>
            <div class="field">
                <label for="event-type">"Event type"</label>
                <select id="event-type" name="type">
                    <option value="">"All event types"</option>
                    {types}
                </select>
            </div>
            <div class="field">
                <label for="event-since">"Since (UTC)"</label>
                <input id="event-since" type="datetime-local" name="since" value=query.since.clone().unwrap_or_default() />
            </div>
            <div class="field">
                <label for="event-until">"Until (UTC)"</label>
                <input id="event-until" type="datetime-local" name="until" value=query.until.clone().unwrap_or_default() />
            </div>
            <div class="filter-buttons">
                <button type="submit">"Find events"</button>
                <a class="button secondary" href="/events">
                    "Clear"
                </a>
            </div>
        </form>
    }
}

#[component]
fn EventTable(page: EventPage, query: EventQuery) -> impl IntoView {
    if page.data.is_empty() {
        let words = if query.cursor.is_some() {
            "No older events."
        } else if query == EventQuery::default() {
            "No events yet in this environment. Events the platform publishes for you are listed here, newest first."
        } else {
            "No event matches. Check the id, or widen the time and type."
        };
        return view! { <p class="empty card" data-testid="events-empty">{words}</p> }.into_any();
    }
    let rows = page
        .data
        .into_iter()
        .map(|event| {
            let href = format!("/events/{}", urlencoding(&event.id.to_string()));
            view! {
                <tr data-testid="event-row">
                    <td data-label="Time">
                        <time datetime=machine_time(&event.created_at)>{format_time(&event.created_at)}</time>
                    </td>
                    <td data-label="Event">
                        <a href=href>
                            <code>{event.id.to_string()}</code>
                        </a>
                    </td>
                    <td data-label="Type">{event.event_type}</td>
                    <td data-label="Status">{event.status}</td>
                    <td class="url-cell" data-label="verificationId">{event.verification_id.unwrap_or_default()}</td>
                    <td class="url-cell" data-label="sessionId">{event.session_id.unwrap_or_default()}</td>
                </tr>
            }
        })
        .collect_view();
    let older = page.next.map(|cursor| format!("/events{}", query.with_cursor(Some(cursor)).to_query_string()));
    let newest = query.cursor.is_some().then(|| format!("/events{}", query.with_cursor(None).to_query_string()));
    view! {
        <table class="list">
            <caption class="visually-hidden">"Events, newest first"</caption>
            <thead>
                <tr>
                    <th scope="col">"Time"</th>
                    <th scope="col">"Event"</th>
                    <th scope="col">"Type"</th>
                    <th scope="col">"Status"</th>
                    <th scope="col">"verificationId"</th>
                    <th scope="col">"sessionId"</th>
                </tr>
            </thead>
            <tbody>{rows}</tbody>
        </table>
        <nav class="pager" aria-label="Event pages">
            {newest.map(|href| view! { <a href=href>"← Newest"</a> })}
            {older.map(|href| view! { <a href=href rel="next">"Older →"</a> })}
        </nav>
    }
    .into_any()
}

/// An event id in a path (ids may hold `:` and `.`).
fn urlencoding(id: &str) -> String {
    url::form_urlencoded::byte_serialize(id.as_bytes()).collect()
}

/// One event.
#[component]
pub fn EventPage() -> impl IntoView {
    let params = use_params_map();
    let id = params.read_untracked().get("id").unwrap_or_default();
    let event = Resource::new(move || id.clone(), load_event);
    view! {
        <SignedIn title="Event">
            <p class="crumbs">
                <a href="/events">"← All events"</a>
            </p>
            <Transition fallback=|| view! { <p>"Loading the event…"</p> }>
                <ErrorBoundary fallback=crate::components::error_list>
                    {move || event.get().map(|answer| answer.map(|event| view! { <EventView event /> }))}
                </ErrorBoundary>
            </Transition>
        </SignedIn>
    }
}

#[component]
fn EventView(event: EventDetail) -> impl IntoView {
    let data = serde_json::to_string_pretty(&event.data).unwrap_or_default();
    let summary = event.event;
    let deliveries = if event.deliveries.is_empty() {
        view! {
            <p class="empty card">"It was sent to no webhook: none was active for its type when it was published."</p>
        }
        .into_any()
    } else {
        event
            .deliveries
            .into_iter()
            .map(|delivery| {
                let attempts = delivery
                    .attempts
                    .into_iter()
                    .map(|a| {
                        let href = format!("/webhooks/{}/logs/{}", a.webhook_id, a.id);
                        let (class, words) = match a.outcome {
                            Outcome::Success => ("outcome ok", "Succeeded"),
                            Outcome::Failure => ("outcome failed", "Failed"),
                        };
                        view! {
                            <tr data-testid="event-attempt">
                                <td data-label="Attempt">
                                    <a href=href>{format!("#{}", a.attempt)}</a>
                                </td>
                                <td data-label="Time">
                                    <time datetime=machine_time(&a.created_at)>{format_time(&a.created_at)}</time>
                                </td>
                                <td class=class data-label="Outcome">{words}</td>
                                <td data-label="Status">{a.status_code.map(|c| c.to_string()).unwrap_or_else(|| "–".into())}</td>
                                <td data-label="Why">{a.error.unwrap_or_default()}</td>
                            </tr>
                        }
                    })
                    .collect_view();
                let webhook = format!("/webhooks/{}", delivery.webhook_id);
                view! {
                    <section class="card" data-testid="event-delivery">
                        <h3>
                            <a href=webhook class="url-cell">{delivery.webhook_url}</a>
                        </h3>
                        <p>{format!("Delivery {}: {}", delivery.id, delivery.state)}</p>
                        <table class="list">
                            <caption class="visually-hidden">"Its attempts, oldest first"</caption>
                            <thead>
                                <tr>
                                    <th scope="col">"Attempt"</th>
                                    <th scope="col">"Time"</th>
                                    <th scope="col">"Outcome"</th>
                                    <th scope="col">"Status"</th>
                                    <th scope="col">"Why"</th>
                                </tr>
                            </thead>
                            <tbody>{attempts}</tbody>
                        </table>
                    </section>
                }
            })
            .collect_view()
            .into_any()
    };
    view! {
        <div class="page-head">
            <h1>
                "Event "
                <code data-testid="event-id">{summary.id.to_string()}</code>
            </h1>
        </div>
        <dl class="facts card">
            <dt>"Type"</dt>
            <dd>{summary.event_type}</dd>
            <dt>"Status"</dt>
            <dd>{summary.status}</dd>
            <dt>"Published"</dt>
            <dd>
                <time datetime=machine_time(&summary.created_at)>{format_time(&summary.created_at)}</time>
            </dd>
        </dl>
        <h2>"Deliveries"</h2>
        {deliveries}
        <h2>"Data"</h2>
        <pre class="payload" tabindex="0" aria-label="The event's data">{data}</pre>
    }
}
