//! `/event-types`: the event catalog. What the platform sends, when, and in what shape.

use leptos::prelude::*;

use crate::components::SignedIn;
use crate::domain::catalog;

/// Each event type: when it fires, an example body and its JSON Schema.
#[component]
pub fn EventTypesPage() -> impl IntoView {
    let pretty = |value: &serde_json::Value| serde_json::to_string_pretty(value).unwrap_or_default();
    let entries = catalog()
        .into_iter()
        .map(|doc| {
            let anchor = doc.event_type.replace('.', "-");
            let heading = format!("{anchor}-heading");
            let labelled_by = heading.clone();
            let example_id = format!("example-{anchor}");
            let schema_id = format!("schema-{anchor}");
            view! {
                <section class="card stack" id=anchor aria-labelledby=labelled_by>
                    <h2 id=heading>
                        <code>{doc.event_type.clone()}</code>
                    </h2>
                    <p>{doc.description}</p>
                    <h3>"Example"</h3>
                    <pre class="code" tabindex="0" data-testid=example_id>
                        {pretty(&doc.example)}
                    </pre>
                    <details>
                        <summary>"JSON Schema of the body"</summary>
                        <pre class="code" tabindex="0" data-testid=schema_id>
                            {pretty(&doc.schema)}
                        </pre>
                    </details>
                </section>
            }
        })
        .collect_view();
    view! {
        <SignedIn title="Event types">
            <h1>"Event types"</h1>
            <p class="lead">
                "What the platform sends to your webhooks: a " <code>"POST"</code>
                " with a JSON body of this shape, signed in " <code>"x-webhook-signature"</code> " and "
                <code>"webhook-signature"</code>
                ". Answer with a 2xx within 10 seconds and do the work afterwards; use the event's "
                <code>"id"</code>
                " (also in " <code>"webhook-id"</code>
                ") to drop a repeated delivery. New fields may appear; none is removed or changes type."
            </p>
            <p class="hint">
                "The same catalog is at " <code>"GET /api/v1/event-types"</code> " and in the "
                <a href="/api/v1/openapi.json">"OpenAPI document"</a> "'s " <code>"webhooks"</code> " section."
            </p>
            {entries}
        </SignedIn>
    }
}
