//! `/webhooks/{id}/integrate`: how to receive and verify this webhook's deliveries, with code
//! for the partner's stack, filled in for this webhook.

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

use crate::api::get_webhook;
use crate::components::{CopyButton, SignedIn};
use crate::domain::{GuideFor, Snippet, WebhookView, snippets};

/// The steps, then a receiver in each language.
#[component]
pub fn IntegrationGuidePage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let webhook = Resource::new(id, get_webhook);
    view! {
        <SignedIn title="Integration guide">
            <Transition fallback=|| view! { <p>"Loading…"</p> }>
                <ErrorBoundary fallback=crate::components::error_list>
                    {move || webhook.get().map(|answer| answer.map(|w| view! { <Guide webhook=w /> }))}
                </ErrorBoundary>
            </Transition>
        </SignedIn>
    }
}

#[component]
fn Guide(webhook: WebhookView) -> impl IntoView {
    let auth_header = webhook.auth_header.as_ref().map(|h| h.name.clone());
    let guide = GuideFor::new(&webhook.url, auth_header.as_deref(), webhook.event_types.as_deref());
    let back = format!("/webhooks/{}", webhook.id);
    let route_note = (guide.path == crate::domain::FALLBACK_PATH).then(|| {
        view! {
            <p class="hint">
                "The code serves " <code>{crate::domain::FALLBACK_PATH}</code>
                ": change the route to the path of your webhook's URL."
            </p>
        }
    });
    let auth_step = auth_header.map(|name| {
        view! {
            <li>
                "Check the " <code>{name}</code>
                " header: it carries the value you gave the webhook. The code reads it from "
                <code>"WEBHOOK_AUTH_VALUE"</code> "."
            </li>
        }
    });
    let all = snippets(&guide);
    let contents = all
        .iter()
        .map(|s| {
            let href = format!("#{}", s.key);
            view! {
                <li>
                    <a href=href>{s.label}</a>
                </li>
            }
        })
        .collect_view();
    let cards = all.into_iter().map(|snippet| view! { <SnippetCard snippet /> }).collect_view();
    view! {
        <h1>"Integration guide"</h1>
        <p class="lead">"How to receive and verify the deliveries to " <code class="wrap">{webhook.url.clone()}</code> "."</p>
        <section class="card stack" aria-labelledby="steps-heading">
            <h2 id="steps-heading">"What your endpoint does"</h2>
            <ol class="steps">
                <li>
                    "Read the raw body. Both signatures are over those exact bytes: parse the JSON only after checking them."
                </li>
                {auth_step}
                <li>
                    "Check " <code>"x-webhook-signature"</code>
                    ": the hex HMAC-SHA256 of the body, keyed with the whole signing secret ("
                    <code>"whsec_"</code> " included). Compare in constant time. For 24 hours after a secret is rotated it stays signed with the old secret: accept either during that time."
                </li>
                <li>
                    "Or check the Standard Webhooks headers (" <code>"webhook-id"</code> ", "
                    <code>"webhook-timestamp"</code> ", " <code>"webhook-signature"</code>
                    ") with that project's library: it also refuses a request sent more than 5 minutes before or after your clock. Right after a secret is rotated, "
                    <code>"webhook-signature"</code> " carries a signature with each secret, and either passes."
                </li>
                <li>
                    "Answer with a 2xx within 10 seconds, then do the work: a slow answer counts as a failure and is retried."
                </li>
                <li>
                    "Drop duplicates: a retried event can arrive again, always with the same "
                    <code>"webhook-id"</code> " (the event's " <code>"id"</code> ")."
                </li>
            </ol>
            <p>
                "The secret is never in the code: reveal it on " <a href=back.clone()>"the webhook's page"</a>
                " and give it to your receiver in " <code>"WEBHOOK_SECRET"</code>
                ". Each receiver below checks both signatures, the auth header if there is one, and handles the event types this webhook takes."
            </p>
            {route_note}
            <nav aria-label="Languages">
                <ul class="inline-list">{contents}</ul>
            </nav>
        </section>
        {cards}
        <p>
            <a href=back>"Back to the webhook"</a>
        </p>
    }
}

/// One language's code, with a button that copies it.
#[component]
fn SnippetCard(snippet: Snippet) -> impl IntoView {
    let heading = format!("{}-heading", snippet.key);
    let labelled_by = heading.clone();
    let copy_id = format!("copy-{}", snippet.key);
    let code_id = format!("snippet-{}", snippet.key);
    let copy_label = format!("Copy the {} code", snippet.label);
    view! {
        <section class="card stack" id=snippet.key aria-labelledby=labelled_by>
            <div class="page-head">
                <h2 id=heading>{snippet.label}</h2>
                <CopyButton text=snippet.code.clone() label=copy_label testid=copy_id />
            </div>
            <p class="hint">
                <code>{snippet.file}</code>
            </p>
            <pre class="code" tabindex="0" data-testid=code_id>
                {snippet.code}
            </pre>
        </section>
    }
}
