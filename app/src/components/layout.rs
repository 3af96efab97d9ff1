//! The frame of every signed-in page: the header with the partner's name, the navigation and
//! the logout button.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::{A, Redirect};

use crate::PRODUCT_NAME;
use crate::api::{AppError, DismissAlert, Logout, SwitchEnvironment, current_user, open_alerts};
use crate::domain::Environment;

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
    let switch = ServerAction::<SwitchEnvironment>::new();
    // The environment the page is drawn for, for the forms that create something in it.
    provide_context(DrawnEnvironment(Signal::derive(move || {
        user.get().and_then(|answer| answer.ok().flatten()).map(|user| user.environment)
    })));
    // On a phone the navigation and the account fold into "Menu" (see the stylesheet).
    let menu_open = RwSignal::new(false);
    view! {
        <Title text=title />
        <a class="skip-link" href="#main">
            "Skip to content"
        </a>
        <Transition fallback=|| ()>
            {move || {
                matches!(user.get(), Some(Ok(Some(ref u))) if u.environment == Environment::Sandbox)
                    .then(|| {
                        view! {
                            <div class="sandbox-band" role="note" data-testid="sandbox-band">
                                <strong>"Sandbox"</strong>
                                " · test webhooks, keys and events, kept apart from production. Nothing here reaches your customers."
                            </div>
                        }
                    })
            }}
        </Transition>
        <header class="topbar">
            <a class="brand" href="/webhooks">
                <Mark />
                {PRODUCT_NAME}
            </a>
            <button
                type="button"
                class="secondary nav-toggle"
                aria-controls="topbar-menu"
                aria-expanded=move || menu_open.get().to_string()
                on:click=move |_| menu_open.update(|open| *open = !*open)
            >
                "Menu"
            </button>
            <div id="topbar-menu" class="topbar-menu" class:open=move || menu_open.get()>
            <nav aria-label="Main">
                <A href="/webhooks">"Webhooks"</A>
                <A href="/logs">"Delivery logs"</A>
                <A href="/events">"Events"</A>
                <A href="/event-types">"Event types"</A>
                <A href="/tools/signature">"Signature checker"</A>
                <A href="/inspectors">"Request inspector"</A>
                <A href="/settings/api-keys">"API keys"</A>
                <A href="/settings/team">"Team"</A>
                <A href="/settings/audit">"Audit log"</A>
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
                                        <a class="user-email" href="/settings/account" title="Your account">
                                            {user.email}
                                        </a>
                                        <span class="badge grey" data-testid="role">{user.role.as_str()}</span>
                                        <EnvironmentSwitch current=user.environment switch />
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

/// The environment a signed-in page was drawn for (provided by [`SignedIn`]).
#[derive(Clone, Copy, Debug)]
pub struct DrawnEnvironment(pub Signal<Option<Environment>>);

/// A hidden `environment` field naming the environment the page was drawn for: a form that
/// creates something carries it, and the server refuses the form if the session has switched
/// environment since (`require_admin_in`).
#[component]
pub fn EnvironmentField() -> impl IntoView {
    let drawn = use_context::<DrawnEnvironment>().map(|d| d.0);
    view! {
        <input
            type="hidden"
            name="environment"
            value=move || drawn.and_then(|d| d.get()).map(|e| e.as_str()).unwrap_or_default()
        />
    }
}

/// Production | Sandbox: two buttons, the current one pressed. Switching sends the browser to
/// the other environment's webhooks.
#[component]
fn EnvironmentSwitch(current: Environment, switch: ServerAction<SwitchEnvironment>) -> impl IntoView {
    // Everything on the page belongs to the environment it was drawn for: once switched, the
    // browser loads the other's webhooks afresh (the server function also redirects there,
    // for a browser without JavaScript).
    Effect::new(move |_| {
        if matches!(switch.value().get(), Some(Ok(()))) {
            let _ = window().location().set_href("/webhooks");
        }
    });
    let buttons = Environment::ALL
        .into_iter()
        .map(|env| {
            let pressed = env == current;
            view! {
                <ActionForm action=switch>
                    <input type="hidden" name="environment" value=env.as_str() />
                    <button
                        type="submit"
                        class="env-option"
                        class:sandbox=env == Environment::Sandbox
                        aria-pressed=pressed.to_string()
                        disabled=pressed
                    >
                        {env.label()}
                    </button>
                </ActionForm>
            }
        })
        .collect_view();
    view! {
        <div class="env-switch" role="group" aria-label="Environment" data-testid="environment-switch">
            {buttons}
        </div>
    }
}

/// The portal's mark: a signed envelope on its way (a rounded square, a check, an arrow out).
/// Decorative: the product's name is written beside it.
#[component]
pub fn Mark() -> impl IntoView {
    view! {
        <svg class="mark" viewBox="0 0 32 32" width="28" height="28" aria-hidden="true" focusable="false">
            <rect x="2" y="6" width="22" height="20" rx="5" class="mark-body" />
            <path d="M8 16l4 4 7-8" class="mark-check" fill="none" stroke-width="3" stroke-linecap="round" stroke-linejoin="round" />
            <path d="M24 12h6m-3-3l3 3-3 3" class="mark-arrow" fill="none" stroke-width="2.5" stroke-linecap="round" stroke-linejoin="round" />
        </svg>
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
