//! `/webhooks/new` and `/webhooks/{id}/edit`: one form for both.

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

use crate::api::{AppError, SaveWebhook, get_webhook, preview_template};
use crate::components::{EnvironmentField, ErrorAlert, FieldErrorText, SignedIn};
use crate::domain::{EventType, WebhookView};

/// `/webhooks/new`
#[component]
pub fn NewWebhookPage() -> impl IntoView {
    view! {
        <SignedIn title="Create Webhook">
            <h1>"Create Webhook"</h1>
            <WebhookForm existing=None />
        </SignedIn>
    }
}

/// `/webhooks/{id}/edit`
#[component]
pub fn EditWebhookPage() -> impl IntoView {
    let params = use_params_map();
    let webhook = Resource::new(move || params.read().get("id").unwrap_or_default(), get_webhook);
    view! {
        <SignedIn title="Edit webhook">
            <h1>"Edit webhook"</h1>
            <Transition fallback=|| view! { <p>"Loading…"</p> }>
                <ErrorBoundary fallback=crate::components::error_list>
                    {move || webhook.get().map(|answer| answer.map(|w| view! { <WebhookForm existing=Some(w) /> }))}
                </ErrorBoundary>
            </Transition>
        </SignedIn>
    }
}

/// The fields "Advanced configuration" holds, as errors name them.
const ADVANCED_FIELDS: [&str; 5] =
    ["authHeader.name", "authHeader.value", "payloadTemplate", "rateLimit", "maxConcurrentRequests"];

/// The settings form. Each refused field shows its error next to it; what was typed stays.
#[component]
fn WebhookForm(existing: Option<WebhookView>) -> impl IntoView {
    let save = ServerAction::<SaveWebhook>::new();
    let error = move || save.value().get().and_then(Result::err);
    let field_error = move |field: &'static str| move || error().and_then(|e| e.field_error(field).map(str::to_owned));
    // An error that belongs to no field (not signed in, not found, server trouble).
    let general_error = move || {
        error().filter(|e| !matches!(e, AppError::Invalid(_) | AppError::InvalidFields(_))).map(|e| e.to_string())
    };

    let id = existing.as_ref().map(|w| w.id.to_string()).unwrap_or_default();
    let url = existing.as_ref().map(|w| w.url.clone()).unwrap_or_default();
    let active = existing.as_ref().is_none_or(|w| w.active);
    let header = existing.as_ref().and_then(|w| w.auth_header.clone());
    let selected = existing.as_ref().and_then(|w| w.event_types.clone());
    let template = RwSignal::new(existing.as_ref().and_then(|w| w.payload_template.clone()).unwrap_or_default());
    let only_some = RwSignal::new(selected.is_some());
    let rate_limit = existing.as_ref().and_then(|w| w.rate_limit).map(|n| n.to_string()).unwrap_or_default();
    let max_concurrent =
        existing.as_ref().and_then(|w| w.max_concurrent_requests).map(|n| n.to_string()).unwrap_or_default();
    let is_edit = existing.is_some();
    // Seed 004's "Advanced Configuration (Optional)": open when the webhook uses any of it, or
    // when one of its fields was refused.
    let uses_advanced = header.is_some()
        || !rate_limit.is_empty()
        || !max_concurrent.is_empty()
        || existing.as_ref().is_some_and(|w| w.payload_template.is_some());
    // Opened, never closed, by a refusal: a partner who opened it keeps it open.
    let advanced = NodeRef::<leptos::html::Details>::new();
    Effect::new(move |_| {
        let refused = error().is_some_and(|e| ADVANCED_FIELDS.iter().any(|f| e.field_error(f).is_some()));
        if let (true, Some(details)) = (refused, advanced.get()) {
            let _ = details.set_attribute("open", "");
        }
    });
    let cancel_href = if is_edit { format!("/webhooks/{id}") } else { "/webhooks".to_owned() };

    // The preview follows the template as it is typed (once the page is interactive).
    let preview = Resource::new(move || template.get(), preview_template);

    let type_boxes = EventType::ALL
        .into_iter()
        .map(|t| {
            let name = format!("type_{}", t.as_str().replace('.', "_"));
            let checked = selected.as_ref().is_none_or(|s| s.iter().any(|n| n == t.as_str()));
            let input_id = name.clone();
            let label_for = name.clone();
            view! {
                <label class="check" for=label_for>
                    <input type="checkbox" id=input_id name=name checked=checked />
                    <code>{t.as_str()}</code>
                </label>
            }
        })
        .collect_view();

    view! {
        <ActionForm action=save attr:class="card stack webhook-form" attr:aria-label="Webhook settings">
            <input type="hidden" name="id" value=id />
            <EnvironmentField />
            <div class="field">
                <label for="url">"Webhook URL"</label>
                <input
                    id="url"
                    name="url"
                    type="url"
                    inputmode="url"
                    value=url
                    placeholder="https://your-domain.com/webhook"
                    required
                    aria-describedby="url-error"
                />
                <FieldErrorText id="url-error" message=field_error("url") />
            </div>
            <div class="field">
                <label class="check" for="active">
                    <input type="checkbox" id="active" name="active" checked=active />
                    "Active"
                </label>
                <p class="hint">"An inactive webhook receives no events until you activate it."</p>
            </div>
            <fieldset class="stack">
                <legend>"Event types"</legend>
                <label class="check" for="event-types-all">
                    <input
                        type="radio"
                        id="event-types-all"
                        name="event_types_mode"
                        value="all"
                        checked=move || !only_some.get()
                        on:change=move |_| only_some.set(false)
                    />
                    "All event types"
                </label>
                <label class="check" for="event-types-selected">
                    <input
                        type="radio"
                        id="event-types-selected"
                        name="event_types_mode"
                        value="selected"
                        checked=move || only_some.get()
                        on:change=move |_| only_some.set(true)
                    />
                    "Only these:"
                </label>
                <div class="checks">{type_boxes}</div>
                <FieldErrorText id="event-types-error" message=field_error("eventTypes") />
            </fieldset>
            <details class="advanced" node_ref=advanced open=uses_advanced>
                <summary>"Advanced configuration (optional)"</summary>
                <div class="stack">
                    <fieldset class="stack">
                        <legend>"Webhook authentication header"</legend>
                        <p class="hint">"We add this header to every request, so your endpoint can check it."</p>
                        <div class="field">
                            <label for="auth-header-name">"Header name"</label>
                            <input
                                id="auth-header-name"
                                name="auth_header_name"
                                value=header.as_ref().map(|h| h.name.clone()).unwrap_or_default()
                                placeholder="Authorization"
                                autocomplete="off"
                                aria-describedby="auth-header-name-error"
                            />
                            <FieldErrorText id="auth-header-name-error" message=field_error("authHeader.name") />
                        </div>
                        <div class="field">
                            <label for="auth-header-value">"Header value"</label>
                            <input
                                id="auth-header-value"
                                name="auth_header_value"
                                type="password"
                                autocomplete="new-password"
                                placeholder=header
                                    .as_ref()
                                    .map(|h| format!("{} (saved; leave empty to keep it)", h.value))
                                    .unwrap_or_else(|| "Bearer your-secret".into())
                                aria-describedby="auth-header-value-error"
                            />
                            <FieldErrorText id="auth-header-value-error" message=field_error("authHeader.value") />
                            {is_edit.then(|| view! { <p class="hint">"Clear both fields to remove the header."</p> })}
                        </div>
                    </fieldset>
                    <div class="field">
                        <label for="payload-template">"Payload template (optional)"</label>
                        <p class="hint" id="payload-template-hint">
                            "Reshape the JSON body with a Jinja template. It sees " <code>"id"</code> ", " <code>"type"</code> ", "
                            <code>"status"</code> ", " <code>"createdAt"</code> ", " <code>"data"</code> " and " <code>"event"</code>
                            "; write values with " <code>"{{ data.verificationId|tojson }}"</code>
                            ". Leave it empty to send the event as it is."
                        </p>
                        <textarea
                            id="payload-template"
                            name="payload_template"
                            rows="8"
                            spellcheck="false"
                            aria-describedby="payload-template-hint payload-template-error"
                            prop:value=move || template.get()
                            on:input=move |ev| template.set(event_target_value(&ev))
                        >
                            {template.get_untracked()}
                        </textarea>
                        <FieldErrorText id="payload-template-error" message=field_error("payloadTemplate") />
                        <div class="preview">
                            <h3>"Preview for a sample " <code>"verification.completed"</code> " event"</h3>
                            <p class="hint">"The exact bytes sent and signed: compact JSON, keys in your template's order."</p>
                            <Transition fallback=|| view! { <p>"…"</p> }>
                                {move || {
                                    preview
                                        .get()
                                        .map(|answer| match answer {
                                            Ok(body) => view! { <pre class="wrap" data-testid="template-preview">{body}</pre> }.into_any(),
                                            Err(e) => {
                                                view! { <p class="error" data-testid="template-preview-error">{e.to_string()}</p> }
                                                    .into_any()
                                            }
                                        })
                                }}
                            </Transition>
                        </div>
                    </div>
                    <WholeNumberField
                        id="rate-limit"
                        name="rate_limit"
                        label="Rate limit (optional)"
                        hint="Most requests per second we send to this URL, from 1 to 1000. Events over the limit wait their turn; waiting never counts as a failure. Leave it empty for no limit."
                        max=crate::domain::MAX_RATE_LIMIT
                        value=rate_limit
                        error=field_error("rateLimit")
                    />
                    <WholeNumberField
                        id="max-concurrent"
                        name="max_concurrent_requests"
                        label="Max concurrent requests (optional)"
                        hint="Most requests we have under way to this URL at once, from 1 to 64. Without it we start at 4 and adapt: more while your endpoint answers quickly, fewer when it slows down, times out or answers 429 or 5xx. Leave it empty to let us adapt up to 64."
                        max=crate::domain::MAX_CONCURRENT_REQUESTS
                        value=max_concurrent
                        error=field_error("maxConcurrentRequests")
                    />
                </div>
            </details>
            <ErrorAlert message=general_error />
            <Show when=move || matches!(error(), Some(AppError::Invalid(_) | AppError::InvalidFields(_)))>
                <p class="error" role="alert">
                    "Nothing was saved: please correct the fields marked above."
                </p>
            </Show>
            <div class="actions">
                <button type="submit" disabled=move || save.pending().get()>
                    "Save Webhook"
                </button>
                <a href=cancel_href class="button secondary">
                    "Cancel"
                </a>
            </div>
        </ActionForm>
    }
}

/// An optional whole number from 1 to `max`, with its hint and its error tied to it.
#[component]
fn WholeNumberField(
    id: &'static str,
    name: &'static str,
    label: &'static str,
    hint: &'static str,
    max: u32,
    value: String,
    error: impl Fn() -> Option<String> + Send + Sync + 'static,
) -> impl IntoView {
    let hint_id = format!("{id}-hint");
    let error_id = format!("{id}-error");
    view! {
        <div class="field">
            <label for=id>{label}</label>
            <p class="hint" id=hint_id.clone()>
                {hint}
            </p>
            <input
                id=id
                name=name
                type="number"
                min="1"
                max=max.to_string()
                step="1"
                inputmode="numeric"
                value=value
                aria-describedby=format!("{hint_id} {error_id}")
            />
            <FieldErrorText id=error_id message=error />
        </div>
    }
}
