//! `/webhooks/{id}`: one webhook's settings and actions.

use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};

use crate::api::{
    DeleteWebhook, EndSecretOverlap, PlanRecovery, PlanReplay, RevealSigningSecret, RotateSigningSecret,
    SetWebhookActive, StartRecovery, StartReplay, TestWebhook, get_webhook, recovery_progress, replay_progress,
    webhook_hourly,
};
use crate::components::{ErrorAlert, HealthBadge, HourlyChart, SignedIn, format_time};
use crate::domain::WebhookView;

/// Settings, signing secret, and Activate/Deactivate, Edit, Delete.
#[component]
pub fn WebhookDetailPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let set_active = ServerAction::<SetWebhookActive>::new();
    let webhook = Resource::new(move || (id(), set_active.version().get()), |(id, _)| get_webhook(id));
    let action_error = move || set_active.value().get().and_then(Result::err).map(|e| e.to_string());
    // What saving did, in seed 004's words (the form sends the browser here with `?saved=`),
    // until the webhook is switched here.
    let query = use_query_map();
    let saved = move || {
        let said = match query.read().get("saved").as_deref() {
            Some("active") => "Your webhook is active and ready to receive notifications.",
            Some("inactive") => "Your webhook is saved, inactive: it receives no events until you activate it.",
            _ => return None,
        };
        (set_active.version().get() == 0)
            .then(|| view! { <p class="notice card" role="status" data-testid="saved">{said}</p> })
    };
    // Switching it on or off may end (or, never, start) a deactivation banner.
    Effect::new(move |_| {
        if set_active.version().get() > 0 {
            crate::components::AlertsRefresh::bump();
        }
    });
    view! {
        <SignedIn title="Webhook">
            {saved}
            <Transition fallback=|| view! { <p>"Loading…"</p> }>
                <ErrorBoundary fallback=crate::components::error_list>
                    {move || webhook.get().map(|answer| answer.map(|w| view! { <Detail webhook=w set_active /> }))}
                </ErrorBoundary>
            </Transition>
            <ErrorAlert message=action_error />
        </SignedIn>
    }
}

#[component]
fn Detail(webhook: WebhookView, set_active: ServerAction<SetWebhookActive>) -> impl IntoView {
    let id = webhook.id.to_string();
    let events = webhook.event_types.clone().map(|t| t.join(", ")).unwrap_or_else(|| "All event types".into());
    let header =
        webhook.auth_header.clone().map(|h| format!("{}: {}", h.name, h.value)).unwrap_or_else(|| "None".into());
    let deactivation = match (&webhook.deactivated_reason, &webhook.deactivated_at, webhook.active) {
        (Some(reason), Some(at), false) => {
            Some(format!("Deactivated by the dispatcher on {}: {reason}", format_time(at)))
        }
        (None, Some(at), false) => Some(format!("Deactivated on {}.", format_time(at))),
        _ => None,
    };
    let (toggle_label, toggle_to) = if webhook.active { ("Deactivate", "false") } else { ("Activate", "true") };
    let url = webhook.url.clone();
    let toggle_id = id.clone();
    let edit_href = format!("/webhooks/{id}/edit");
    let secret_id = id.clone();
    let test_id = id.clone();
    let logs_href = format!("/webhooks/{id}/logs");
    let guide_href = format!("/webhooks/{id}/integrate");
    let replay_id = id.clone();
    let recover_id = id.clone();
    let chart_id = id.clone();
    let delete_webhook = ServerAction::<DeleteWebhook>::new();
    view! {
        <div class="page-head">
            <h1 class="url-title">{webhook.url.clone()}</h1>
            <HealthBadge webhook=webhook.clone() />
        </div>
        {deactivation.map(|text| view! { <p class="notice card">{text}</p> })}
        <div class="actions">
            <ActionForm action=set_active>
                <input type="hidden" name="id" value=toggle_id />
                <input type="hidden" name="active" value=toggle_to />
                <button type="submit" class=if webhook.active { "secondary" } else { "" }>
                    {toggle_label}
                </button>
            </ActionForm>
            <a class="button secondary" href=edit_href>
                "Edit"
            </a>
            <a class="button secondary" href=logs_href>
                "View Logs"
            </a>
            <a class="button secondary" href=guide_href>
                "Integration guide"
            </a>
        </div>
        {webhook.active.then(|| view! { <ReplayPanel id=replay_id /> }.into_any())}
        {view! { <RecoverPanel id=recover_id /> }.into_any()}
        {view! { <TestWebhookPanel id=test_id /> }.into_any()}
        <dl class="settings card">
            <dt>"Status"</dt>
            <dd data-testid="status">{if webhook.active { "Active" } else { "Inactive" }}</dd>
            <dt>"Event types"</dt>
            <dd>{events}</dd>
            <dt>"Webhook authentication header"</dt>
            <dd data-testid="auth-header">{header}</dd>
            <dt>"Payload template"</dt>
            <dd>
                {webhook
                    .payload_template
                    .clone()
                    .map(|t| view! { <pre>{t}</pre> }.into_any())
                    .unwrap_or_else(|| "None: the event is sent as it is".into_any())}
            </dd>
            <dt>"Rate limit"</dt>
            <dd data-testid="rate-limit">
                {webhook.rate_limit.map(|n| format!("{n} requests per second")).unwrap_or_else(|| "None".into())}
            </dd>
            <dt>"Max concurrent requests"</dt>
            <dd data-testid="max-concurrent-requests">
                {webhook
                    .max_concurrent_requests
                    .map(|n| format!("{n} at once"))
                    .unwrap_or_else(|| "Adapts to the endpoint, up to 64".into())}
            </dd>
            <dt>"Created"</dt>
            <dd>{format_time(&webhook.created_at)}</dd>
            <dt>"Last delivery"</dt>
            <dd data-testid="last-delivery">{crate::components::last_delivery(&webhook)}</dd>
            <dt>"Success rate (24 h)"</dt>
            <dd>{webhook.success_rate.map(|r| format!("{r:.1} %")).unwrap_or_else(|| "–".into())}</dd>
        </dl>
        {view! { <Chart id=chart_id /> }.into_any()}
        {view! { <SigningSecret id=secret_id old_until=webhook.old_secret_signs_until /> }.into_any()}
        {view! { <DeleteWebhookForm id url delete=delete_webhook /> }.into_any()}
    }
}

/// Every two seconds, while `running` says a run (a replay, a recovery) still has deliveries
/// waiting, `refetch` its progress; stops with the component.
fn poll_while(running: impl Fn() -> bool + Clone + 'static, refetch: impl Fn() + Clone + 'static) {
    Effect::new(move |_| {
        let (running, refetch) = (running.clone(), refetch.clone());
        if let Ok(handle) = set_interval_with_handle(
            move || {
                if running() {
                    refetch();
                }
            },
            std::time::Duration::from_secs(2),
        ) {
            on_cleanup(move || handle.clear());
        }
    });
}

/// "Recover failed deliveries": after an outage on the partner's side, every delivery of this
/// webhook that failed since a time is sent again: a count first, then progress while it runs.
#[component]
fn RecoverPanel(id: String) -> impl IntoView {
    let plan = ServerAction::<PlanRecovery>::new();
    let start = ServerAction::<StartRecovery>::new();
    let progress_id = id.clone();
    let progress = Resource::new(move || (progress_id.clone(), start.version().get()), |(id, _)| recovery_progress(id));
    // While deliveries of the recovery are waiting, look again every two seconds.
    poll_while(
        move || progress.get_untracked().and_then(Result::ok).flatten().is_some_and(|r| r.waiting > 0),
        move || progress.refetch(),
    );
    let plan_id = id.clone();
    let planned = move || {
        let id = id.clone();
        plan.value().get().map(|answer| match answer {
            Ok(p) => {
                let noun = if p.count == 1 { "delivery" } else { "deliveries" };
                let words = format!("{} {noun} failed from {} until {}.", p.count, p.since, p.until);
                view! {
                    <p data-testid="recover-count">{words}</p>
                    <ActionForm action=start>
                        <input type="hidden" name="webhook" value=id />
                        <input type="hidden" name="since" value=p.since />
                        <input type="hidden" name="until" value=p.until />
                        <button type="submit" disabled=p.count == 0>
                            {format!("Recover {} {noun}", p.count)}
                        </button>
                    </ActionForm>
                }
                .into_any()
            }
            Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
        })
    };
    let start_error = move || start.value().get().and_then(Result::err).map(|e| e.to_string());
    let shown = move || {
        progress.get().and_then(Result::ok).flatten().map(|r| {
            let state = if r.waiting > 0 { "running" } else { "finished" };
            view! {
                <p data-testid="recover-progress">
                    {format!(
                        "Recovery of the failures from {} ({state}): {} of {} delivered, {} failed again, {} waiting.",
                        format_time(&r.since),
                        r.delivered,
                        r.total,
                        r.failed,
                        r.waiting,
                    )}
                </p>
                <progress max=r.total.max(1) value=r.delivered + r.failed aria-label="Recovery progress"></progress>
            }
        })
    };
    view! {
        <details class="card">
            <summary>"Recover failed deliveries"</summary>
            <p class="hint">
                "Fixed your endpoint after an outage? Activate the webhook, then send again every delivery that failed since a time you pick. Each keeps its event's id, so receivers can drop repeats."
            </p>
            <ActionForm action=plan attr:class="inline-form">
                <input type="hidden" name="webhook" value=plan_id />
                <div class="field">
                    <label for="recover-since">"Failed since (UTC)"</label>
                    <input id="recover-since" type="datetime-local" name="since" required />
                </div>
                <button type="submit" class="secondary">
                    "Count failed deliveries"
                </button>
            </ActionForm>
            <div role="status" aria-live="polite">
                {planned}
                <ErrorAlert message=start_error />
                <Transition fallback=|| ()>{shown}</Transition>
            </div>
        </details>
    }
}

/// The last 24 hours per hour, from the counters.
#[component]
fn Chart(id: String) -> impl IntoView {
    let bars = Resource::new(move || id.clone(), webhook_hourly);
    view! {
        <Suspense fallback=|| ()>
            {move || bars.get().and_then(Result::ok).map(|bars| view! { <HourlyChart bars /> }.into_any())}
        </Suspense>
    }
}

/// "Replay missed events": count first, then send, then show progress while it runs.
#[component]
fn ReplayPanel(id: String) -> impl IntoView {
    let plan = ServerAction::<PlanReplay>::new();
    let start = ServerAction::<StartReplay>::new();
    let progress_id = id.clone();
    let progress = Resource::new(move || (progress_id.clone(), start.version().get()), |(id, _)| replay_progress(id));
    // While a replay has deliveries waiting, look again every two seconds.
    poll_while(
        move || progress.get_untracked().and_then(Result::ok).flatten().is_some_and(|r| r.waiting > 0),
        move || progress.refetch(),
    );
    let plan_id = id.clone();
    let planned = move || {
        let id = id.clone();
        plan.value().get().map(|answer| match answer {
            Ok(p) => {
                let words = format!(
                    "{} {} of its types since {} {} never sent to this webhook.",
                    p.count,
                    if p.count == 1 { "event" } else { "events" },
                    p.since,
                    if p.count == 1 { "was" } else { "were" }
                );
                let button = format!("Replay {} {}", p.count, if p.count == 1 { "event" } else { "events" });
                view! {
                    <p data-testid="replay-count">{words}</p>
                    <ActionForm action=start>
                        <input type="hidden" name="webhook" value=id />
                        <input type="hidden" name="since" value=p.since />
                        <button type="submit" disabled=p.count == 0>
                            {button}
                        </button>
                    </ActionForm>
                }
                .into_any()
            }
            Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
        })
    };
    let start_error = move || start.value().get().and_then(Result::err).map(|e| e.to_string());
    let shown = move || {
        progress.get().and_then(Result::ok).flatten().map(|r| {
            let state = if r.waiting > 0 { "running" } else { "finished" };
            view! {
                <p data-testid="replay-progress">
                    {format!(
                        "Replay from {} ({state}): {} of {} delivered, {} failed, {} waiting.",
                        format_time(&r.since),
                        r.delivered,
                        r.total,
                        r.failed,
                        r.waiting,
                    )}
                </p>
                <progress max=r.total.max(1) value=r.delivered + r.failed></progress>
            }
        })
    };
    view! {
        <details class="card">
            <summary>"Replay missed events"</summary>
            <p class="hint">
                "Sends every event of this webhook's types created since a time (by default, when it was "
                "last deactivated) that was never sent to it. Each keeps its id, so receivers can drop repeats."
            </p>
            <ActionForm action=plan attr:class="inline-form">
                <input type="hidden" name="webhook" value=plan_id />
                <div class="field">
                    <label for="replay-since">"Since (UTC, optional)"</label>
                    <input id="replay-since" type="datetime-local" name="since" />
                </div>
                <button type="submit" class="secondary">
                    "Count missed events"
                </button>
            </ActionForm>
            <div role="status" aria-live="polite">
                {planned}
                <ErrorAlert message=start_error />
                <Transition fallback=|| ()>{shown}</Transition>
            </div>
        </details>
    }
}

/// "Test Webhook": sends an event of the type picked, with its example data or the partner's
/// edit of it, and shows the answer in place, in seed 004's words.
#[component]
fn TestWebhookPanel(id: String) -> impl IntoView {
    use crate::domain::EventType;
    let test = ServerAction::<TestWebhook>::new();
    let chosen = RwSignal::new(EventType::VerificationCompleted);
    let example = move |t: EventType| serde_json::to_string_pretty(&t.example().data).unwrap_or_default();
    let outcome = move || {
        test.value().get().map(|answer| match answer {
            Ok(result) => {
                let headline = crate::components::test_headline(&result);
                let class = if result.success { "test-result ok" } else { "test-result failed" };
                view! {
                    <div class=class data-testid="test-result">
                        <p>
                            <strong>{headline}</strong>
                        </p>
                        {result.error.map(|e| view! { <p class="error">{e}</p> })}
                        {result
                            .response_body
                            .filter(|b| !b.is_empty())
                            .map(|b| {
                                view! {
                                    <p class="hint">"Start of the response body:"</p>
                                    <pre>{b.chars().take(1024).collect::<String>()}</pre>
                                }
                            })}
                    </div>
                }
                .into_any()
            }
            Err(e) => view! { <p class="error">{e.to_string()}</p> }.into_any(),
        })
    };
    view! {
        <section class="card stack" aria-labelledby="test-heading">
            <h2 id="test-heading">"Test your endpoint"</h2>
            <p class="hint">
                "Sends an event of the type you pick now, with its example data or your edit of it, signed as usual, even while the webhook is inactive. It is logged as a test and never retried. "
                <a href="/event-types">"Every event type, its schema and example"</a>
            </p>
            <ActionForm action=test attr:class="stack">
                <input type="hidden" name="id" value=id />
                <div class="field">
                    <label for="test-type">"Event type"</label>
                    <select
                        id="test-type"
                        name="event_type"
                        aria-describedby="test-type-hint"
                        on:change=move |ev| {
                            if let Ok(t) = EventType::parse(&event_target_value(&ev)) {
                                chosen.set(t);
                            }
                        }
                    >
                        {EventType::ALL
                            .into_iter()
                            .map(|t| {
                                view! {
                                    <option value=t.as_str() selected=t == EventType::VerificationCompleted>
                                        {t.as_str()}
                                    </option>
                                }
                            })
                            .collect_view()}
                    </select>
                    <p class="hint" id="test-type-hint">
                        {move || chosen.get().description()}
                    </p>
                </div>
                <details>
                    <summary>"Edit the example data"</summary>
                    <div class="field">
                        <label for="test-data">"The event's data (a JSON object)"</label>
                        <textarea
                            id="test-data"
                            name="data"
                            rows="10"
                            spellcheck="false"
                            prop:value=move || example(chosen.get())
                        >
                            {example(EventType::VerificationCompleted)}
                        </textarea>
                    </div>
                </details>
                <div>
                    <button type="submit" disabled=move || test.pending().get()>
                        {move || if test.pending().get() { "Sending…" } else { "Test Webhook" }}
                    </button>
                </div>
            </ActionForm>
            <div role="status" aria-live="polite">
                {outcome}
            </div>
        </section>
    }
}

/// The signing secret: hidden until "Reveal"; "Rotate" makes a new one.
#[component]
fn SigningSecret(
    id: String,
    /// Until when the rotated-out secret still signs, while a rotation's overlap is in force.
    old_until: Option<chrono::DateTime<chrono::Utc>>,
) -> impl IntoView {
    let reveal = ServerAction::<RevealSigningSecret>::new();
    let rotate = ServerAction::<RotateSigningSecret>::new();
    let end_overlap = ServerAction::<EndSecretOverlap>::new();
    // The overlap in force: the newest rotation's, else the one the page loaded with; none
    // once ended here.
    let overlap = move || {
        if end_overlap.value().get().is_some_and(|r| r.is_ok()) {
            return None;
        }
        rotate.value().get().and_then(Result::ok).map(|r| r.old_signs_until).or(old_until)
    };
    let shown = move || {
        let revealed = reveal.value().get().and_then(Result::ok);
        let rotated = rotate.value().get().and_then(Result::ok).map(|r| r.secret);
        // The newest answer wins: a rotation after a reveal shows the new secret.
        if rotate.version().get() > 0 && rotated.is_some() { rotated } else { revealed }
    };
    let error = move || {
        reveal
            .value()
            .get()
            .and_then(Result::err)
            .or_else(|| rotate.value().get().and_then(Result::err))
            .or_else(|| end_overlap.value().get().and_then(Result::err))
            .map(|e| e.to_string())
    };
    let reveal_id = id.clone();
    let overlap_id = id.clone();
    view! {
        <section class="card stack" aria-labelledby="secret-heading">
            <h2 id="secret-heading">"Signing secret"</h2>
            <p class="hint">
                "Each request carries " <code>"x-webhook-signature"</code>
                ": the hex HMAC-SHA256 of the body, keyed with this secret (the whole text, "
                <code>"whsec_"</code> " included), and the Standard Webhooks headers."
            </p>
            <div class="with-button">
                <label for="signing-secret" class="visually-hidden">
                    "Signing secret"
                </label>
                <input
                    id="signing-secret"
                    class="secret"
                    readonly
                    data-testid="signing-secret"
                    prop:value=move || shown().unwrap_or_else(|| "whsec_••••••••••••••••••••••••".into())
                />
                <ActionForm action=reveal>
                    <input type="hidden" name="id" value=reveal_id />
                    <button type="submit" class="secondary">
                        "Reveal"
                    </button>
                </ActionForm>
                <ActionForm action=rotate>
                    <input type="hidden" name="id" value=id />
                    <button type="submit" class="secondary">
                        "Rotate"
                    </button>
                </ActionForm>
            </div>
            {move || {
                overlap()
                    .map(|until| {
                        let until = format_time(&until);
                        let fresh = rotate.value().get().is_some_and(|r| r.is_ok());
                        let id = overlap_id.clone();
                        view! {
                            <div class="notice card stack" role="status" data-testid="rotation-notice">
                                <p>
                                    {if fresh { "New secret made. " } else { "A rotation is in progress. " }} "Until "
                                    {until.clone()} ", " <code>"x-webhook-signature"</code>
                                    " stays signed with the old secret, and " <code>"webhook-signature"</code>
                                    " carries a signature by each; from then on only the new secret signs. Until "
                                    {until} ", have your receiver accept either secret."
                                </p>
                                <details class="danger-zone">
                                    <summary class="link danger">"End the overlap now"</summary>
                                    <p>
                                        "If the old secret leaked, stop it signing at once. Receivers that still check with it will refuse every request until they use the new one."
                                    </p>
                                    <ActionForm action=end_overlap>
                                        <input type="hidden" name="id" value=id />
                                        <button type="submit" class="danger">
                                            "Yes, stop the old secret now"
                                        </button>
                                    </ActionForm>
                                </details>
                            </div>
                        }
                    })
            }}
            <ErrorAlert message=error />
        </section>
    }
}

/// "Delete", then a confirmation that names the URL. Built on `<details>`, so it works
/// without JavaScript and with a keyboard.
#[component]
pub(crate) fn DeleteWebhookForm(
    id: String,
    url: String,
    /// The action to submit; the page that shows the form decides what follows.
    delete: ServerAction<DeleteWebhook>,
    /// Inside a row's menu (a link-like "Delete") rather than on the webhook's page.
    #[prop(optional)]
    in_menu: bool,
) -> impl IntoView {
    let error = move || delete.value().get().and_then(Result::err).map(|e| e.to_string());
    view! {
        <details class=if in_menu { "danger-zone" } else { "danger-zone card" }>
            <summary class=if in_menu { "link danger" } else { "button danger" }>"Delete"</summary>
            <p>
                "Delete the webhook for " <strong>{url.clone()}</strong>
                "? Events stop going there and its delivery log is removed. This can't be undone."
            </p>
            <ActionForm action=delete>
                <input type="hidden" name="id" value=id />
                <button type="submit" class="danger" aria-label=format!("Delete the webhook for {url}")>
                    "Yes, delete"
                </button>
            </ActionForm>
            // In a menu, the list shows what went wrong above itself, once.
            {(!in_menu).then(|| view! { <ErrorAlert message=error /> })}
        </details>
    }
}
