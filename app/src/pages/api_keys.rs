//! `/settings/api-keys`: create and revoke the keys of the REST API.

use leptos::prelude::*;

use crate::api::{CreateApiKey, RevokeApiKey, list_api_keys};
use crate::components::{EnvironmentField, ErrorAlert, RoleSelect, SignedIn, format_time, machine_time};
use crate::domain::ApiKeySummary;

/// Lists the partner's keys; a new key is shown once, right after it is made.
#[component]
pub fn ApiKeysPage() -> impl IntoView {
    let create = ServerAction::<CreateApiKey>::new();
    let revoke = ServerAction::<RevokeApiKey>::new();
    let keys = Resource::new(move || (create.version().get(), revoke.version().get()), |_| list_api_keys());
    let create_error = move || create.value().get().and_then(Result::err).map(|e| e.to_string());
    let revoke_error = move || revoke.value().get().and_then(Result::err).map(|e| e.to_string());

    view! {
        <SignedIn title="API keys">
            <h1>"API keys"</h1>
            <p class="lead">
                "Your backend uses an API key to manage webhooks through the REST API: send it as "
                <code>"Authorization: Bearer <key>"</code> "."
            </p>
            <ActionForm action=create attr:class="card inline-form" attr:aria-label="Create API key">
                <EnvironmentField />
                <div class="field">
                    <label for="key-name">"Key name"</label>
                    <input id="key-name" name="name" maxlength="100" placeholder="Backend" required />
                </div>
                <RoleSelect id="key-role" label="Key role" />
                <button type="submit" disabled=move || create.pending().get()>
                    "Create API key"
                </button>
            </ActionForm>
            <ErrorAlert message=create_error />
            {move || {
                create
                    .value()
                    .get()
                    .and_then(Result::ok)
                    .map(|created| {
                        view! {
                            <div class="notice card" role="status">
                                <p>
                                    <strong>"Copy your new key now."</strong>
                                    " It is stored hashed and can't be shown again."
                                </p>
                                <label for="new-key">{format!("Key “{}”", created.summary.name)}</label>
                                <input id="new-key" class="secret" readonly value=created.key data-testid="new-key" />
                            </div>
                        }
                    })
            }}
            <ErrorAlert message=revoke_error />
            <Transition fallback=|| view! { <p>"Loading keys…"</p> }>
                <ErrorBoundary fallback=|errors| {
                    view! {
                        <p class="error" role="alert">
                            {move || errors.get().into_iter().map(|(_, e)| e.to_string()).collect::<Vec<_>>().join(" ")}
                        </p>
                    }
                }>
                    {move || keys.get().map(|answer| answer.map(|keys| view! { <KeyTable keys revoke /> }))}
                </ErrorBoundary>
            </Transition>
        </SignedIn>
    }
}

/// The keys, or a line saying there are none.
#[component]
fn KeyTable(keys: Vec<ApiKeySummary>, revoke: ServerAction<RevokeApiKey>) -> impl IntoView {
    if keys.is_empty() {
        return view! {
            <section class="empty-state card">
                <h2>"No API keys yet"</h2>
                <p>
                    "An API key lets your own systems manage webhooks and read delivery logs through the REST API. Name one above and create it; it is shown once, so copy it then."
                </p>
            </section>
        }
            .into_any();
    }
    let rows = keys
        .into_iter()
        .map(|key| {
            let status = if key.revoked_at.is_some() { "Revoked" } else { "Active" };
            let last_used = key.last_used_at.as_ref().map(format_time).unwrap_or_else(|| "Never".into());
            view! {
                <tr>
                    <td data-label="Name">{key.name.clone()}</td>
                    <td data-label="Role">{key.role.as_str()}</td>
                    <td data-label="Key">
                        <code>{format!("{}…", key.prefix)}</code>
                    </td>
                    <td data-label="Created">
                        <time datetime=machine_time(&key.created_at)>{format_time(&key.created_at)}</time>
                    </td>
                    <td data-label="Created by">{key.created_by.clone().unwrap_or_else(|| "–".into())}</td>
                    <td data-label="Last used">{last_used}</td>
                    <td data-label="Status">
                        <span class=if key.revoked_at.is_some() { "badge grey" } else { "badge green" }>{status}</span>
                    </td>
                    <td class="row-actions">
                        {key
                            .revoked_at
                            .is_none()
                            .then(|| {
                                view! {
                                    <ActionForm action=revoke>
                                        <input type="hidden" name="id" value=key.id.to_string() />
                                        <button
                                            type="submit"
                                            class="danger"
                                            aria-label=format!("Revoke key {}", key.name)
                                        >
                                            "Revoke"
                                        </button>
                                    </ActionForm>
                                }
                            })}
                    </td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <table class="list">
            <caption class="visually-hidden">"Your API keys"</caption>
            <thead>
                <tr>
                    <th scope="col">"Name"</th>
                    <th scope="col">"Role"</th>
                    <th scope="col">"Key"</th>
                    <th scope="col">"Created"</th>
                    <th scope="col">"Created by"</th>
                    <th scope="col">"Last used"</th>
                    <th scope="col">"Status"</th>
                    <th scope="col">
                        <span class="visually-hidden">"Actions"</span>
                    </th>
                </tr>
            </thead>
            <tbody>{rows}</tbody>
        </table>
    }
    .into_any()
}
