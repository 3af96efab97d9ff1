//! `/settings/account`: the signed-in user's own account (change the password), and
//! `/set-password`: the page a one-time link opens.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::PRODUCT_NAME;
use crate::api::{AppError, ChangePassword, SetPassword, current_user, password_link_email};
use crate::components::{ErrorAlert, FieldErrorText, SignedIn};
use crate::domain::{MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS};

/// Who you are, and a form to change your password: the current one first.
#[component]
pub fn AccountPage() -> impl IntoView {
    let change = ServerAction::<ChangePassword>::new();
    let user = Resource::new(|| (), |_| current_user());
    let error = move || change.value().get().and_then(Result::err);
    let field_error = move |field: &'static str| move || error().and_then(|e| e.field_error(field).map(str::to_owned));
    let general_error = move || {
        error().filter(|e| !matches!(e, AppError::Invalid(_) | AppError::InvalidFields(_))).map(|e| e.to_string())
    };
    view! {
        <SignedIn title="Your account">
            <h1>"Your account"</h1>
            <Transition fallback=|| ()>
                {move || {
                    user.get()
                        .and_then(Result::ok)
                        .flatten()
                        .map(|user| {
                            view! {
                                <dl class="facts card">
                                    <dt>"Email"</dt>
                                    <dd data-testid="account-email">{user.email}</dd>
                                    <dt>"Role"</dt>
                                    <dd>{user.role.as_str()}</dd>
                                    <dt>"Partner"</dt>
                                    <dd>{user.partner_name}</dd>
                                </dl>
                            }
                        })
                }}
            </Transition>
            <h2 id="password-heading">"Change your password"</h2>
            <ActionForm action=change attr:class="card stack" attr:aria-labelledby="password-heading">
                <PasswordField id="current" label="Current password" autocomplete="current-password" error=field_error("current") />
                <NewPasswordFields field_error />
                <ErrorAlert message=general_error />
                <button type="submit" disabled=move || change.pending().get()>
                    "Change password"
                </button>
            </ActionForm>
            <Show when=move || change.value().get().is_some_and(|r| r.is_ok())>
                <p class="notice card" role="status">
                    "Your password is changed. You are still signed in here; every other session of yours has ended."
                </p>
            </Show>
        </SignedIn>
    }
}

/// The page a one-time link opens: set your password (twice), and you are signed in.
#[component]
pub fn SetPasswordPage() -> impl IntoView {
    let query = use_query_map();
    let token = move || query.read().get("token").unwrap_or_default();
    let email = Resource::new(token, password_link_email);
    let set = ServerAction::<SetPassword>::new();
    let error = move || set.value().get().and_then(Result::err);
    let field_error = move |field: &'static str| move || error().and_then(|e| e.field_error(field).map(str::to_owned));
    let general_error = move || {
        error()
            .filter(|e| !matches!(e, AppError::Invalid(_) | AppError::InvalidFields(_)))
            .map(|e| if e == AppError::NotFound { SPENT.to_owned() } else { e.to_string() })
    };
    view! {
        <Title text="Set your password" />
        <main id="main" class="auth">
            <h1>{PRODUCT_NAME}</h1>
            <Suspense fallback=|| view! { <p>"Checking your link…"</p> }>
                {move || {
                    email
                        .get()
                        .map(|answer| match answer {
                            Ok(email) => {
                                view! {
                                    <p class="lead">
                                        "Choose the password you will sign in with as " <strong>{email}</strong> "."
                                    </p>
                                    <ActionForm action=set attr:class="card stack" attr:aria-label="Set your password">
                                        <input type="hidden" name="token" value=token() />
                                        <NewPasswordFields field_error />
                                        <ErrorAlert message=general_error />
                                        <button type="submit" disabled=move || set.pending().get()>
                                            "Set password and sign in"
                                        </button>
                                    </ActionForm>
                                }
                                    .into_any()
                            }
                            Err(AppError::NotFound) => view! { <p class="error" role="alert">{SPENT}</p> }.into_any(),
                            Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                        })
                }}
            </Suspense>
        </main>
    }
}

/// What a spent, replaced or expired link says.
const SPENT: &str = "This link no longer works: it was used already, a newer one was made, or it ran out. Ask an \
                     admin of your team (or the portal's operator) for a new one.";

/// "New password" and "Confirm new password", with their rules and errors.
#[component]
fn NewPasswordFields<F, G>(field_error: F) -> impl IntoView
where
    F: Fn(&'static str) -> G + Copy + Send + Sync + 'static,
    G: Fn() -> Option<String> + Send + Sync + 'static,
{
    view! {
        <PasswordField id="password" label="New password" autocomplete="new-password" error=field_error("password") />
        <p class="hint" id="password-hint">
            {format!("{MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters; a few words you will remember are fine.")}
        </p>
        <PasswordField id="confirm" label="Confirm new password" autocomplete="new-password" error=field_error("confirm") />
    }
}

/// A labelled password input whose error shows under it.
#[component]
fn PasswordField(
    id: &'static str,
    label: &'static str,
    autocomplete: &'static str,
    error: impl Fn() -> Option<String> + Send + Sync + 'static,
) -> impl IntoView {
    let error_id = format!("{id}-error");
    view! {
        <div class="field">
            <label for=id>{label}</label>
            <input
                id=id
                name=id
                type="password"
                autocomplete=autocomplete
                required
                maxlength=(MAX_PASSWORD_CHARS * 4).to_string()
                aria-describedby=error_id.clone()
            />
            <FieldErrorText id=error_id message=error />
        </div>
    }
}
