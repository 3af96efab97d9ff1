//! The frame of every signed-in page: the header with the partner's name, the navigation and
//! the logout button.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::{A, Redirect};

use crate::PRODUCT_NAME;
use crate::api::{AppError, Logout, current_user};

/// Wraps a signed-in page. Sends the browser to `/login` when no one is signed in (the server
/// already does so for a page load; this covers a session that ends while the page is open).
#[component]
pub fn SignedIn(
    /// The page's title, for the tab and the heading's context.
    #[prop(into)]
    title: String,
    children: Children,
) -> impl IntoView {
    let user = Resource::new(|| (), |_| current_user());
    let logout = ServerAction::<Logout>::new();
    view! {
        <Title text=title />
        <a class="skip-link" href="#main">
            "Skip to content"
        </a>
        <header class="topbar">
            <a class="brand" href="/webhooks">
                {PRODUCT_NAME}
            </a>
            <nav aria-label="Main">
                <A href="/webhooks">"Webhooks"</A>
                <A href="/logs">"Delivery logs"</A>
                <A href="/settings/api-keys">"API keys"</A>
            </nav>
            <div class="account">
                <Transition fallback=|| ()>
                    {move || {
                        user.get()
                            .map(|answer| match answer {
                                Ok(Some(user)) => {
                                    view! {
                                        <span class="partner-name" data-testid="partner-name">
                                            {user.partner_name}
                                        </span>
                                        <span class="user-email">{user.email}</span>
                                    }
                                        .into_any()
                                }
                                Ok(None) | Err(AppError::Unauthorized) => {
                                    view! { <Redirect path="/login" /> }.into_any()
                                }
                                Err(e) => view! { <span class="error">{e.to_string()}</span> }.into_any(),
                            })
                    }}
                </Transition>
                <ActionForm action=logout attr:class="logout">
                    <button type="submit" class="secondary">
                        "Log out"
                    </button>
                </ActionForm>
            </div>
        </header>
        <main id="main" class="page">
            {children()}
        </main>
    }
}
