//! The browser's entry point: hydrate the server-rendered page, nothing else.

use wasm_bindgen::prelude::wasm_bindgen;

/// Called by the generated JS once the wasm has loaded.
#[wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
    // From here on the page's controls work; browser tests and CSS can tell by this mark.
    if let Some(root) = leptos::prelude::document().document_element() {
        let _ = root.set_attribute("data-hydrated", "true");
    }
}
