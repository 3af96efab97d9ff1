//! The frame of every signed-in page: the header with the partner's name, the navigation and
//! the logout button.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::{A, Redirect};

use crate::PRODUCT_NAME;
use crate::api::{AppError, DismissAlert, Logout, current_user, open_alerts};

/// Bumped when a webhook is switched on or off, so the deactivation banners look again.
#[derive(Clone, Copy, Debug)]
pub struct AlertsRefresh(pub RwSignal<usize>);

impl AlertsRefresh {
    /// Makes the banners look again (a page that switched a webhook on calls this).
    pub fn bump() {
        if let Some(refresh) = use_context::<Self>() {
            refresh.0.update(|n| *n += 1);
        }
    }
}

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
                <A href="/event-types">"Event types"</A>
                <A href="/tools/signature">"Signature checker"</A>
                <A href="/inspectors">"Request inspector"</A>
                <A href="/settings/api-keys">"API keys"</A>
                <A href="/settings/team">"Team"</A>
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
                                        <span class="badge grey" data-testid="role">{user.role.as_str()}</span>
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
            <DeactivationBanners can_dismiss=Signal::derive(move || {
                matches!(user.get(), Some(Ok(Some(user))) if user.role.can_change())
            }) />
            {children()}
        </main>
    }
}

/// One banner per webhook the dispatcher switched off, until an admin dismisses it or the
/// webhook is active again.
#[component]
fn DeactivationBanners(
    /// Whether the signed-in user may dismiss banners (admins).
    can_dismiss: Signal<bool>,
) -> impl IntoView {
    let refresh = use_context::<AlertsRefresh>().map(|r| r.0);
    let dismiss = ServerAction::<DismissAlert>::new();
    let alerts = Resource::new(move || (refresh.map(|r| r.get()), dismiss.version().get()), |_| open_alerts());
    view! {
        <Transition fallback=|| ()>
            {move || {
                alerts
                    .get()
                    .and_then(Result::ok)
                    .map(|alerts| {
                        alerts
                            .into_iter()
                            .map(|alert| {
                                let href = format!("/webhooks/{}", alert.webhook_id);
                                let at = crate::components::format_time(&alert.deactivated_at);
                                let alert_id = alert.id.to_string();
                                view! {
                                    <div class="banner card" role="alert" data-testid="deactivation-banner">
                                        <p>
                                            <strong>"Webhook deactivated: "</strong>
                                            <a href=href>{alert.url}</a>
                                            {format!(" was switched off on {at} after its deliveries kept failing. ")}
                                            <span class="reason">{alert.reason}</span>
                                        </p>
                                        {move || {
                                            let alert_id = alert_id.clone();
                                            can_dismiss
                                                .get()
                                                .then(|| {
                                                    view! {
                                                        <ActionForm action=dismiss>
                                                            <input type="hidden" name="id" value=alert_id />
                                                            <button type="submit" class="secondary">
                                                                "Dismiss"
                                                            </button>
                                                        </ActionForm>
                                                    }
                                                })
                                        }}
                                    </div>
                                }
                            })
                            .collect_view()
                    })
            }}
        </Transition>
    }
    .into_any()
}
