//! `/webhooks`: the partner's webhooks.

use leptos::prelude::*;

use crate::components::SignedIn;

/// The webhooks list. Until webhooks can be created (the webhook management work), it shows
/// what a webhook is and what the portal will send.
#[component]
pub fn WebhooksPage() -> impl IntoView {
    view! {
        <SignedIn title="Webhooks">
            <h1>"Webhooks"</h1>
            <section class="empty-state card">
                <h2>"No webhooks yet"</h2>
                <p>
                    "A webhook is a URL on your server. When a verification is completed, fails, "
                    "expires, or a manual review is completed, we send the result there at once "
                    "as an HTTP POST with a JSON body, signed so you can check it came from us."
                </p>
            </section>
        </SignedIn>
    }
}
