//! A button that copies a text to the clipboard and says, for screen readers too, whether it
//! could.

use leptos::prelude::*;

/// "Copy" (or `label`): copies `text`, then says "Copied to the clipboard." or, when the browser
/// refuses, to select and copy by hand.
#[component]
pub fn CopyButton(
    /// What is copied.
    text: String,
    /// What the button says to assistive technology ("Copy the Node.js code").
    label: String,
    /// The button's `data-testid`.
    testid: String,
) -> impl IntoView {
    let (copied, set_copied) = signal(None::<bool>);
    let copy = move |_| {
        #[cfg(feature = "hydrate")]
        {
            let promise = window().navigator().clipboard().write_text(&text);
            leptos::task::spawn_local(async move {
                let written = wasm_bindgen_futures::JsFuture::from(promise).await.is_ok();
                set_copied.set(Some(written));
            });
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = (&text, set_copied);
    };
    view! {
        <span class="copy">
            <button type="button" class="secondary" on:click=copy data-testid=testid aria-label=label>
                "Copy"
            </button>
            <span class="hint" role="status">
                {move || match copied.get() {
                    Some(true) => "Copied to the clipboard.",
                    Some(false) => "The browser did not allow copying: select the text and copy it.",
                    None => "",
                }}
            </span>
        </span>
    }
}
