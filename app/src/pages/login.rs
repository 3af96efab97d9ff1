//! `/login`: email and password.

use leptos::prelude::*;

use crate::components::ErrorAlert;
use leptos_meta::Title;

use crate::PRODUCT_NAME;
use crate::api::Login;

/// The sign-in form. Works as a plain HTML form before the wasm loads; after it, the password
/// can be shown while typing.
#[component]
pub fn LoginPage() -> impl IntoView {
    let login = ServerAction::<Login>::new();
    let error = move || login.value().get().and_then(Result::err).map(|e| e.to_string());
    let show_password = RwSignal::new(false);
    view! {
        <Title text="Log in" />
        <main id="main" class="auth">
            <h1 class="brand-title">
                <crate::components::Mark />
                {PRODUCT_NAME}
            </h1>
            <p class="lead">"Log in to manage your webhooks."</p>
            <ActionForm action=login attr:class="card stack" attr:aria-label="Log in">
                <div class="field">
                    <label for="email">"Email"</label>
                    <input id="email" name="email" type="email" autocomplete="username" required />
                </div>
                <div class="field">
                    <label for="password">"Password"</label>
                    <div class="with-button">
                        <input
                            id="password"
                            name="password"
                            type=move || if show_password.get() { "text" } else { "password" }
                            autocomplete="current-password"
                            required
                        />
                        <button
                            type="button"
                            class="secondary"
                            aria-controls="password"
                            aria-pressed=move || show_password.get().to_string()
                            on:click=move |_| show_password.update(|shown| *shown = !*shown)
                        >
                            {move || if show_password.get() { "Hide password" } else { "Show password" }}
                        </button>
                    </div>
                </div>
                <ErrorAlert message=error />
                <button type="submit" disabled=move || login.pending().get()>
                    "Log in"
                </button>
            </ActionForm>
        </main>
    }
}
